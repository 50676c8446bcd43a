"""Every way of running the model server, behind one small interface.

    model = ModelLocation(Path.home() / ".cache/autotune/models/synthetic/ncf")
    launcher = make_launcher("local", model)
    with launcher:
        address = launcher.start(ServerSettings(omp_num_threads=4, intra_op_parallelism=4,
                                                inter_op_parallelism=1))
        launcher.wait_until_available(deadline_s=120)
        ...  # gRPC to `address`

`docker` runs a serving image (autotune.launch.docker), `local` a process on this host
(autotune.launch.local). `docker_ready(image)` tells whether the docker one can run.
"""

from __future__ import annotations

from typing import Literal

from autotune.launch.base import (
    DEFAULT_IMAGE,
    Launcher,
    LauncherUnavailableError,
    ModelLocation,
    ServerSettings,
)

__all__ = ["DEFAULT_IMAGE", "Launcher", "LauncherUnavailableError", "ModelLocation",
           "ServerSettings", "docker_ready", "make_launcher"]


def make_launcher(kind: Literal["docker", "local"], model: ModelLocation,
                  image: str = DEFAULT_IMAGE) -> Launcher:
    """The launcher of `kind` for `model`; `image` matters for docker only.

    Raises `LauncherUnavailableError` (exit 2) when docker cannot run here.
    """
    if kind == "docker":
        from autotune.launch.docker import DockerLauncher

        return DockerLauncher(model, image=image)
    if kind == "local":
        from autotune.launch.local import LocalLauncher

        return LocalLauncher(model)
    raise ValueError(f"unknown launcher kind {kind!r}: expected 'docker' or 'local'")


def docker_ready(image: str = DEFAULT_IMAGE) -> bool:
    """Whether a Docker engine is reachable and `image` is present on it."""
    from autotune.launch.docker import docker_ready as ready

    return ready(image)
