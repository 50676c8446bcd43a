"""The docker launcher with real containers of the serving image: start, restart, stop
with no container left, failures with the container's own words, Ctrl-C, reaping what a
killed tuner left behind, and one clear error when docker cannot be used."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import docker
import psutil
import pytest

from autotune.errors import ServerStartError, UsageError
from autotune.launch import (
    LauncherUnavailableError,
    ModelLocation,
    ServerSettings,
    docker_ready,
    make_launcher,
)
from autotune.launch.docker import OWNER, OWNER_LABEL, PID_LABEL, DockerLauncher
from serving.fixtures import START_DEADLINE_S, PlainClient, reported_settings, sample_ids


def _our_containers() -> list[str]:
    client = docker.from_env()
    return [container.name for container in client.containers.list(
        all=True, filters={"label": f"{PID_LABEL}={os.getpid()}"})]


@pytest.mark.docker
def test_start_restart_and_stop_leave_no_container(tiny_model: ModelLocation,
                                                   serving_image: str) -> None:
    launcher = make_launcher("docker", tiny_model, image=serving_image)
    assert launcher.describe() == f"docker ({serving_image})"
    with launcher:
        started_at = time.monotonic()
        launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        print(f"docker start-to-AVAILABLE: {time.monotonic() - started_at:.1f}s")
        first = launcher.container_name
        assert _our_containers() == [first]
        assert reported_settings(launcher.logs())["intra_op"] == "1"

        address = launcher.start(ServerSettings(3, 2, 1, extra_env={"KMP_BLOCKTIME": "0"},
                                                cpuset="0"))
        launcher.wait_until_available(START_DEADLINE_S)
        assert _our_containers() == [launcher.container_name] != [first]
        reported = reported_settings(launcher.logs())
        assert (reported["omp_num_threads"], reported["intra_op"], reported["inter_op"],
                reported["kmp_blocktime"], reported["model"]) == ("3", "2", "1", "0", "ncf")
        container = docker.from_env().containers.get(launcher.container_name)
        assert container.attrs["HostConfig"]["CpusetCpus"] == "0"
        assert psutil.Process(container.attrs["State"]["Pid"]).cpu_affinity() == [0]
        client = PlainClient(address)
        assert client.scores(*sample_ids(3)).shape == (3, 1)
        client.close()
    assert _our_containers() == []
    assert "autotune-serving: stopped" in launcher.logs(), "kept after removal, graceful"


@pytest.mark.docker
def test_model_folder_without_versions_fails_with_the_server_error(tmp_path: Path,
                                                                   serving_image: str) -> None:
    (tmp_path / "ncf").mkdir()
    launcher = DockerLauncher(ModelLocation(tmp_path / "ncf"), image=serving_image)
    launcher.start(ServerSettings(1, 1, 1))
    with pytest.raises(ServerStartError) as failed:
        launcher.wait_until_available(START_DEADLINE_S)
    assert "container exited with code 1" in str(failed.value)
    assert "no version to serve under /models/ncf" in str(failed.value)
    assert _our_containers() == []


@pytest.mark.docker
def test_missing_model_folder_is_refused_by_the_engine(tmp_path: Path, serving_image: str) -> None:
    launcher = DockerLauncher(ModelLocation(tmp_path / "missing"), image=serving_image)
    with pytest.raises(ServerStartError, match="bind source path does not exist"):
        launcher.start(ServerSettings(1, 1, 1))
    assert _our_containers() == []


@pytest.mark.docker
def test_server_exiting_at_once_fails_at_once(tiny_model: ModelLocation,
                                              serving_image: str) -> None:
    launcher = DockerLauncher(tiny_model, image=serving_image)
    started_at = time.monotonic()
    launcher.start(ServerSettings(1, 1, -1))
    with pytest.raises(ServerStartError, match="--tensorflow_inter_op_parallelism must be >= 0"):
        launcher.wait_until_available(START_DEADLINE_S)
    assert time.monotonic() - started_at < 20
    assert _our_containers() == []


@pytest.mark.docker
def test_image_that_is_no_model_server_fails_promptly_with_its_own_words(
        tiny_model: ModelLocation, serving_image: str) -> None:
    client = docker.from_env()
    not_a_server, _ = client.images.build(fileobj=io.BytesIO(
        f'FROM {serving_image}\nENTRYPOINT ["python3", "-c", '
        f'"import sys; sys.exit(\'not a model server, args: \' + sys.argv[1])"]\n'.encode()),
        tag="autotune/test-not-a-server:latest", rm=True)
    try:
        launcher = DockerLauncher(tiny_model, image="autotune/test-not-a-server:latest")
        started_at = time.monotonic()
        launcher.start(ServerSettings(1, 1, 1))
        with pytest.raises(ServerStartError) as failed:
            launcher.wait_until_available(START_DEADLINE_S)
        assert time.monotonic() - started_at < 20
        assert "container exited with code 1" in str(failed.value)
        assert "not a model server, args: --tensorflow_intra_op_parallelism=1" in str(failed.value)
        assert _our_containers() == []
    finally:
        client.images.remove(not_a_server.id, force=True)


@pytest.mark.docker
def test_missing_image_is_one_clear_usage_error(tiny_model: ModelLocation,
                                                serving_image: str) -> None:
    assert not docker_ready("autotune/no-such-image:1")
    with pytest.raises(LauncherUnavailableError) as refused:
        make_launcher("docker", tiny_model, image="autotune/no-such-image:1")
    assert isinstance(refused.value, UsageError) and refused.value.exit_code == 2
    assert "autotune image build" in str(refused.value) and "--server local" in str(refused.value)


@pytest.mark.docker
def test_ctrl_c_during_wait_leaves_no_container(tiny_model: ModelLocation, serving_image: str,
                                                ctrl_c_after) -> None:
    launcher = DockerLauncher(tiny_model, image=serving_image)
    launcher.start(ServerSettings(1, 1, 1))
    ctrl_c_after(0.3)  # sooner than TensorFlow alone imports, so within the wait
    with pytest.raises(KeyboardInterrupt):
        launcher.wait_until_available(START_DEADLINE_S)
    assert _our_containers() == []


@pytest.mark.docker
def test_containers_of_a_killed_tuner_are_reaped_at_the_next_start(
        tiny_model: ModelLocation, serving_image: str) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    client = docker.from_env()
    stale = client.containers.run(serving_image, entrypoint=["sleep", "600"], detach=True,
                                  labels={OWNER_LABEL: OWNER, PID_LABEL: str(finished.pid)},
                                  network_mode="none")
    try:
        with DockerLauncher(tiny_model, image=serving_image) as launcher:
            launcher.start(ServerSettings(1, 1, 1))
            with pytest.raises(docker.errors.NotFound):
                client.containers.get(stale.id)
    finally:
        try:
            stale.remove(force=True)
        except docker.errors.NotFound:
            pass


def test_unreachable_engine_is_one_clear_usage_error(tiny_model: ModelLocation,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert not docker_ready()
    with pytest.raises(LauncherUnavailableError, match="cannot reach the Docker engine") as refused:
        make_launcher("docker", tiny_model)
    assert refused.value.exit_code == 2 and "--server local" in str(refused.value)


@pytest.mark.docker
def test_batching_settings_reach_the_container_as_tf_servings_file_and_flags(
        tiny_model: ModelLocation, serving_image: str) -> None:
    from autotune.serving.batching_config import BatchingParameters

    batching = BatchingParameters(max_batch_size=16, batch_timeout_micros=2000, num_batch_threads=1)
    with make_launcher("docker", tiny_model, image=serving_image) as launcher:
        address = launcher.start(ServerSettings(1, 1, 1, batching=batching))
        launcher.wait_until_available(START_DEADLINE_S)
        container = docker.from_env().containers.get(launcher.container_name)
        assert container.attrs["Args"][-2:] == [
            "--enable_batching=true", "--batching_parameters_file=/config/batching_parameters.txt"]
        assert reported_settings(launcher.logs())["batching"].startswith(
            "max_batch_size=16,batch_timeout_micros=2000,num_batch_threads=1")
        client = PlainClient(address)
        assert client.scores(*sample_ids(3)).shape == (3, 1)
        client.close()
