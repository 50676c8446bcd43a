"""The local launcher with real server processes: start, restart, stop with nothing
left, failures reported with the server's own words, interrupts, pinning, and
TF Serving's binary taking precedence when it is on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from autotune.errors import ServerStartError
from autotune.launch import ModelLocation, ServerSettings, make_launcher
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from reliability.leftovers import wait_until
from serving.fixtures import START_DEADLINE_S, PlainClient, reported_settings, sample_ids


def _group_members(group_id: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group_id:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def test_start_restart_and_stop_leave_nothing_behind(tiny_model: ModelLocation) -> None:
    launcher = LocalLauncher(tiny_model, program=EMBEDDED_SERVER)
    assert launcher.describe() == "local (embedded server)"
    with launcher:
        started_at = time.monotonic()
        first_address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        print(f"local start-to-AVAILABLE: {time.monotonic() - started_at:.1f}s")
        first_pid = launcher.pid
        assert reported_settings(launcher.logs())["intra_op"] == "1"

        second_address = launcher.start(ServerSettings(2, 2, 2))
        assert not psutil.pid_exists(first_pid) and not _group_members(first_pid)
        launcher.wait_until_available(START_DEADLINE_S)
        assert second_address != first_address
        assert reported_settings(launcher.logs())["intra_op"] == "2"
        client = PlainClient(second_address)
        assert client.scores(*sample_ids(2)).shape == (2, 1)
        client.close()
        second_pid = launcher.pid
    assert launcher.address is None
    assert not psutil.pid_exists(second_pid) and not _group_members(second_pid)
    assert "autotune-serving: stopped" in launcher.logs(), "kept after stop, graceful"
    assert not launcher.log_path.parent.exists(), "its watchdog removed the log's folder"


def test_bad_model_path_fails_promptly_with_the_server_error(tmp_path: Path) -> None:
    launcher = LocalLauncher(ModelLocation(tmp_path / "missing"), program=EMBEDDED_SERVER)
    started_at = time.monotonic()
    launcher.start(ServerSettings(1, 1, 1))
    pid = launcher.pid
    with pytest.raises(ServerStartError) as failed:
        launcher.wait_until_available(START_DEADLINE_S)
    assert time.monotonic() - started_at < 30
    assert "exited with code 1" in str(failed.value)
    assert f"model base path {tmp_path / 'missing'} does not exist" in str(failed.value)
    assert not psutil.pid_exists(pid)


def test_server_exiting_at_once_fails_at_once(tiny_model: ModelLocation) -> None:
    launcher = LocalLauncher(tiny_model, program=EMBEDDED_SERVER)
    started_at = time.monotonic()
    launcher.start(ServerSettings(1, -1, 1))
    with pytest.raises(ServerStartError, match="--tensorflow_intra_op_parallelism must be >= 0"):
        launcher.wait_until_available(START_DEADLINE_S)
    assert time.monotonic() - started_at < 10


def test_server_that_never_answers_fails_at_the_deadline_and_is_ended(
        tiny_model: ModelLocation) -> None:
    never_ready = (sys.executable, "-c", "import time; print('warming up forever', flush=True); "
                                         "time.sleep(600)")
    launcher = LocalLauncher(tiny_model, program=never_ready)
    launcher.start(ServerSettings(1, 1, 1))
    pid = launcher.pid
    with pytest.raises(ServerStartError) as failed:
        launcher.wait_until_available(2)
    assert "still not AVAILABLE after 2s" in str(failed.value)
    assert "warming up forever" in str(failed.value)
    assert not psutil.pid_exists(pid)


def test_ctrl_c_during_wait_leaves_no_process(tiny_model: ModelLocation, ctrl_c_after) -> None:
    launcher = LocalLauncher(tiny_model, program=EMBEDDED_SERVER)
    launcher.start(ServerSettings(1, 1, 1))
    pid = launcher.pid
    ctrl_c_after(0.3)  # sooner than TensorFlow alone imports, so within the wait
    with pytest.raises(KeyboardInterrupt):
        launcher.wait_until_available(START_DEADLINE_S)
    assert not psutil.pid_exists(pid) and not _group_members(pid)


def test_server_stops_by_itself_when_the_tuner_is_killed(tiny_model: ModelLocation,
                                                         tmp_path: Path) -> None:
    tuner = subprocess.Popen([sys.executable, "-c", f"""
from pathlib import Path
from autotune.launch import ModelLocation, ServerSettings
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
model = ModelLocation(Path({str(tiny_model.base_path)!r}))
launcher = LocalLauncher(model, program=EMBEDDED_SERVER)
launcher.start(ServerSettings(1, 1, 1))
launcher.wait_until_available({START_DEADLINE_S})
print(launcher.pid, flush=True)
input()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
       env={**os.environ, "TMPDIR": str(tmp_path)})  # the killed tuner's log folder lands here
    server = psutil.Process(int(tuner.stdout.readline()))
    tuner.kill()
    tuner.wait()
    server.wait(timeout=30)


def test_a_launcher_killed_before_its_first_start_leaves_no_folder(tiny_model: ModelLocation,
                                                                   tmp_path: Path) -> None:
    """Its folder and its watchdog are made together (a check killed while one of its
    side-by-side launchers had not started yet left that launcher's folder)."""
    tuner = subprocess.Popen([sys.executable, "-c", f"""
from pathlib import Path
from autotune.launch import ModelLocation
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
launcher = LocalLauncher(ModelLocation(Path({str(tiny_model.base_path)!r})),
                         program=EMBEDDED_SERVER)
print(launcher.log_path.parent, flush=True)
input()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
       env={**os.environ, "TMPDIR": str(tmp_path)})
    folder = Path(tuner.stdout.readline().strip())
    assert folder.parent == tmp_path and folder.is_dir()
    tuner.kill()
    tuner.wait()

    def removed() -> bool:
        """the killed launcher's folder is gone"""
        return not folder.exists()
    wait_until(removed, 10)


def test_cpuset_pins_the_server(tiny_model: ModelLocation) -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    with LocalLauncher(tiny_model, program=EMBEDDED_SERVER) as launcher:
        launcher.start(ServerSettings(1, 1, 1, cpuset=str(cpu)))
        launcher.wait_until_available(START_DEADLINE_S)
        assert psutil.Process(launcher.pid).cpu_affinity() == [cpu]


def test_tensorflow_model_server_on_path_is_preferred_and_gets_tf_serving_flags(
        tiny_model: ModelLocation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `tensorflow_model_server` (which records its command line and hands
    over to the embedded server) shows the binary is picked and what it is given."""
    binary = tmp_path / "tensorflow_model_server"
    binary.write_text(f'#!/bin/sh\necho "tensorflow_model_server $*"\n'
                      f'exec {sys.executable} -m autotune.serving "$@"\n')
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with make_launcher("local", tiny_model) as launcher:
        assert launcher.describe() == f"local ({binary})"
        address = launcher.start(ServerSettings(1, 2, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        port = address.rsplit(":", 1)[1]
        assert (f"tensorflow_model_server --port={port} --rest_api_port=0 --model_name=ncf "
                f"--model_base_path={tiny_model.base_path.resolve()} "
                f"--tensorflow_intra_op_parallelism=2 --tensorflow_inter_op_parallelism=1"
                in launcher.logs())
