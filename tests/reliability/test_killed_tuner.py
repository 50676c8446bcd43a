"""A tuner killed (SIGKILL) mid-trial leaves no server, process, container or temporary
file behind for more than a few seconds, and the next run marks its trial FAIL ("tuner
died") before it starts; Ctrl-C after completed trials writes their report and says
where."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from autotune.record.schema import RETRY_HISTORY, TrialAttr
from autotune.tuning.recovery import TUNER_DIED
from autotune.tuning.run import run_tuning

from .faults import WhenMeasuring, container, local_server
from .leftovers import containers_of, serving_processes_of, wait_until

DRIVER = Path(__file__).parents[1] / "tuning" / "tuner_driver.py"
#: how long a dead tuner's server or container may outlive it
CLEANUP_S = 10.0
FIND_SERVER_S = 240


def _study(storage: str) -> optuna.Study:
    (name,) = optuna.study.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def _lines_until(stream, text: str) -> str:
    """The lines read from `stream` up to and with the first that holds `text` (or all,
    at its end)."""
    lines = []
    for line in stream:
        lines.append(line)
        if text in line:
            break
    return "".join(lines)


def _tuner(storage: str, assets, *flags: str, path: str | None = None,
           scratch: Path | None = None) -> subprocess.Popen:
    """The driver's tuner; `path` puts a folder first on its PATH, `scratch` is its
    temporary folder (TMPDIR)."""
    env = dict(os.environ)
    if path:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    if scratch:
        scratch.mkdir()
        env["TMPDIR"] = str(scratch)
    return subprocess.Popen([sys.executable, str(DRIVER), storage, str(assets.eval_path),
                             str(assets.model_dir), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def tf_serving_binary(folder: Path) -> Path:
    """A `tensorflow_model_server` for PATH, standing in for TF Serving's binary: the real
    embedded server, run as that binary is (it takes the same flags), and like it blind
    to its parent: it does not get the tuner's pid (kept for the test's eyes only)."""
    folder.mkdir()
    binary = folder / "tensorflow_model_server"
    binary.write_text(f"""#!/bin/sh
export AUTOTUNE_TEST_TUNER_PID="$AUTOTUNE_SERVING_PARENT_PID"
unset AUTOTUNE_SERVING_PARENT_PID
exec {shlex.quote(sys.executable)} -m autotune.serving "$@"
""")
    binary.chmod(0o755)
    return folder


@pytest.mark.parametrize("server", ["local", "tf-serving-binary",
                                    pytest.param("docker", marks=pytest.mark.docker)])
def test_a_killed_tuner_leaves_nothing_and_its_trial_fails_on_resume(
        server, request, tmp_path, small_assets, tuning_options):
    """tf-serving-binary: issue 27, item 7 (only the embedded server watched its parent,
    so TF Serving's own binary outlived the tuner, listening, and the resume left it)."""
    image = request.getfixturevalue("serving_image") if server == "docker" else "unused"
    storage = f"sqlite:///{tmp_path}/studies.db"
    binary = tf_serving_binary(tmp_path / "bin") if server == "tf-serving-binary" else None
    server = "local" if binary else server
    scratch = tmp_path / "tmp"
    tuner = _tuner(storage, small_assets, "--server", server, "--image", image, path=binary,
                   scratch=scratch)
    find = local_server if server == "local" else container
    fault = WhenMeasuring(lambda: find(tuner.pid), lambda _server: tuner.kill())
    fault.start()
    try:
        fault.wait_acted(FIND_SERVER_S)
    finally:
        fault.cancel()
        tuner.kill()
    assert tuner.wait(30) == -signal.SIGKILL

    def nothing_left() -> bool:
        """no server process, container or temporary file of the killed tuner"""
        return not serving_processes_of(tuner.pid) and not any(scratch.iterdir()) and (
            server == "local" or not containers_of(tuner.pid))
    wait_until(nothing_left, CLEANUP_S)

    (running,) = _study(storage).get_trials(states=(TrialState.RUNNING,))
    assert running.user_attrs[TrialAttr.WORKER] == f"{socket.gethostname()}:{tuner.pid}"
    resumed = tuning_options("online", storage=storage, server=server, image=image, trials=1,
                             confirm_budget=0)
    assert run_tuning(resumed, assets=small_assets) == 0
    study = _study(storage)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    died = study.trials[running.number]
    assert died.state == TrialState.FAIL and died.user_attrs["failure"] == TUNER_DIED
    (retry,) = [t for t in study.trials if running.number in t.system_attrs.get(RETRY_HISTORY, [])]
    assert retry.state == TrialState.COMPLETE and retry.params == died.params
    assert "failure" not in retry.user_attrs  # issue 27: it kept its predecessor's
    assert "running" not in (tmp_path / "reports" / f"{study.study_name}.md").read_text().lower()


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_after_completed_trials_writes_the_report_and_says_where(tmp_path, small_assets,
                                                                       presses):
    """presses 2: Ctrl-C again as soon as the report is being written (issue 27: a second
    Ctrl-C 0.3 s after the first cut the stop short and the .html was never written)."""
    storage = f"sqlite:///{tmp_path}/studies.db"
    tuner = _tuner(storage, small_assets, "--measure-seconds", "1", "--trials", "20")

    def one_trial_complete() -> bool:
        """a trial completed"""
        if not (tmp_path / "studies.db").exists():
            return False
        try:
            names = optuna.study.get_all_study_names(storage)
        except (sqlalchemy.exc.IntegrityError,  # both wrote the new file's schema version
                sqlalchemy.exc.OperationalError):  # or both made its tables ("already exists")
            return False
        return bool(names) and bool(_study(storage).get_trials(states=(TrialState.COMPLETE,)))
    try:
        wait_until(one_trial_complete, FIND_SERVER_S, interval_s=0.5)
    finally:
        tuner.send_signal(signal.SIGINT)
    first_lines = _lines_until(tuner.stderr, "writing the report of the")
    if presses == 2:
        tuner.send_signal(signal.SIGINT)
    stdout, stderr = tuner.communicate(timeout=60)
    stderr = first_lines + stderr
    assert tuner.returncode == 130, stderr[-2000:]
    study = _study(storage)
    report = tmp_path / "reports" / f"{study.study_name}.json"
    assert "writing the report of the" in stderr
    assert str(report) in stdout.replace("\n", "")
    assert report.with_suffix(".html").read_text().endswith("</html>\n")
    assert report.is_file() and '"COMPLETE"' in report.read_text()
    assert not serving_processes_of(tuner.pid)
