"""The serving image, run the way the NCF tutorial runs TF Serving's MKL image:
`docker run` with the tutorial's environment, the model mounted at /models/ncf and a
port argument, answered for a plain tensorflow-serving-api client, with the real NCF
model. Also: what the image holds, its TF Serving defaults, and the builder's error
when there is no engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest

from autotune.launch import ModelLocation
from autotune.launch._ports import free_port
from autotune.launch.docker import OWNER, OWNER_LABEL, PID_LABEL, DockerLauncher
from autotune.launch.image import UPSTREAM_MKL_ENV, image_default_env
from serving.fixtures import START_DEADLINE_S, PlainClient, reported_settings
from serving.tiny_model import in_process_scores


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True,
                          timeout=120).stdout


def _container_log(name: str) -> str:
    """What the server wrote (it logs to stderr, so both streams)."""
    return subprocess.run(["docker", "logs", name], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60).stdout


def _wait_available(client: PlainClient, container: str) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        try:
            client.status()
            return
        except grpc.RpcError:
            state = json.loads(_docker("inspect", container))[0]["State"]
            if not state["Running"] or time.monotonic() > deadline:
                pytest.fail(f"server not AVAILABLE ({state['Status']}):\n"
                            + _container_log(container))
            time.sleep(0.2)


@pytest.mark.docker
def test_docker_run_with_the_tutorial_arguments_serves_the_ncf_model(small_assets,
                                                                      serving_image: str) -> None:
    port = free_port()
    name = f"autotune-test-{uuid.uuid4().hex[:8]}"
    # labelled like the launcher's containers, so a killed test run's one gets reaped too
    _docker("run", "-d", "--name", name, "--network", "host",
            "--label", f"{OWNER_LABEL}={OWNER}", "--label", f"{PID_LABEL}={os.getpid()}",
            "-e", "MODEL_NAME=ncf", "-e", "OMP_NUM_THREADS=2",
            "-e", "TENSORFLOW_INTER_OP_PARALLELISM=1", "-e", "TENSORFLOW_INTRA_OP_PARALLELISM=2",
            "-v", f"{Path(small_assets.model_dir).resolve()}:/models/ncf:ro",
            serving_image, f"--port={port}")
    client = PlainClient(f"127.0.0.1:{port}")
    try:
        _wait_available(client, name)
        reported = reported_settings(_container_log(name))
        assert (reported["omp_num_threads"], reported["intra_op"], reported["inter_op"],
                reported["kmp_blocktime"], reported["version"]) == (
                   "2", "2", "1", "1", str(small_assets.model_card["version"]))
        with np.load(small_assets.eval_path) as eval_set:
            items = eval_set["items"][:3].ravel()
            users = np.repeat(eval_set["users"][:3], eval_set["items"].shape[1])
        expected = in_process_scores(small_assets.version_dir, users, items).ravel()
        np.testing.assert_allclose(client.scores(users, items).ravel(), expected,
                                   rtol=1e-5, atol=1e-6)
    finally:
        client.close()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


@pytest.mark.docker
def test_image_holds_the_server_and_nothing_of_the_tuner(serving_image: str) -> None:
    listing = _docker("run", "--rm", "--network", "none", "--entrypoint", "python3", serving_image,
                      "-c", "import autotune, pkgutil; "
                            "print(sorted(m.name for m in "
                            "pkgutil.iter_modules(autotune.__path__)))")
    assert listing.strip() == "['serving']"


@pytest.mark.docker
def test_image_defaults_are_tf_serving_mkl_ones(serving_image: str) -> None:
    config = json.loads(_docker("image", "inspect", serving_image))[0]["Config"]
    env = dict(entry.split("=", 1) for entry in config["Env"])
    assert {name: env[name] for name in ("MODEL_BASE_PATH", "KMP_BLOCKTIME", "KMP_SETTINGS",
                                         "KMP_AFFINITY", "OMP_NUM_THREADS",
                                         "TENSORFLOW_INTRA_OP_PARALLELISM",
                                         "TENSORFLOW_INTER_OP_PARALLELISM")} == {
        "MODEL_BASE_PATH": "/models", "KMP_BLOCKTIME": "1", "KMP_SETTINGS": "1",
        "KMP_AFFINITY": "granularity=fine,verbose,compact,1,0", "OMP_NUM_THREADS": "2",
        "TENSORFLOW_INTRA_OP_PARALLELISM": "2", "TENSORFLOW_INTER_OP_PARALLELISM": "2"}
    assert "8500/tcp" in config["ExposedPorts"]
    launcher = DockerLauncher(ModelLocation(Path("/nonexistent")), image=serving_image)
    assert launcher.image_env() == env  # the image-defaults baseline of the image run


def test_image_env_is_read_from_the_dockerfile(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\nENV MODEL_NAME=model \\\n    OMP_NUM_THREADS=4 \\\n"
                          "    KMP_AFFINITY=granularity=fine,verbose,scatter\n"
                          "ENV TENSORFLOW_INTRA_OP_PARALLELISM 3\n")
    env = image_default_env(dockerfile)
    assert env["OMP_NUM_THREADS"] == "4" and env["TENSORFLOW_INTRA_OP_PARALLELISM"] == "3"
    assert env["KMP_AFFINITY"] == "granularity=fine,verbose,scatter"
    assert env["TENSORFLOW_INTER_OP_PARALLELISM"] == "0"  # not set there: TF Serving's default
    assert image_default_env(tmp_path / "missing") == UPSTREAM_MKL_ENV


def test_build_without_an_engine_is_one_clear_line(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-m", "autotune", "image", "build", "--offline"],
                              env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    [line] = finished.stderr.strip().splitlines()
    assert line.startswith("autotune: error: cannot reach the Docker engine")
    assert line.endswith("start dockerd first")
