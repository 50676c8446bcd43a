"""Every way of running the model server, behind one small interface.

    model = ModelLocation(Path.home() / ".cache/autotune/models/synthetic/ncf")
    launcher = make_launcher("local", model)
    with launcher:
        address = launcher.start(ServerSettings(omp_num_threads=4, intra_op_parallelism=4,
                                                inter_op_parallelism=1))
        launcher.wait_until_available(deadline_s=120)
        ...  # gRPC to `address`

`docker` runs a serving image (autotune.launch.docker), `local` a process on this host
(autotune.launch.local), `auto` the docker one when `docker_ready(image)`, else the
local one. `autotune.measure.running.running_server` is one server's life for one
measurement. A new way of running a server is a `Launcher` subclass and a kind here.
`watched_folder` is a temporary folder removed even when the tuner is killed, as a
launcher's own is (autotune.launch.watchdog).
"""

from __future__ import annotations

from typing import Literal, get_args

from autotune.launch.base import Launcher, LauncherUnavailableError, ModelLocation
from autotune.launch.settings import ServerSettings
from autotune.launch.watchdog import watched_folder
from autotune.paths import DEFAULT_IMAGE

LauncherKind = Literal["auto", "docker", "local"]
#: the `--server` choices
LAUNCHER_KINDS: tuple[str, ...] = get_args(LauncherKind)

__all__ = ["LAUNCHER_KINDS", "Launcher", "LauncherKind",
           "LauncherUnavailableError", "ModelLocation", "ServerSettings", "docker_ready",
           "make_launcher", "watched_folder"]


def make_launcher(kind: LauncherKind, model: ModelLocation,
                  image: str = DEFAULT_IMAGE, rest: bool = False) -> Launcher:
    """The launcher of `kind` for `model`; `image` matters for docker (and auto) only;
    `rest` serves TF Serving's REST API too (`Launcher.rest_address`).

    `auto` is docker when an engine answers and `image` is there, else local. Raises
    `LauncherUnavailableError` (exit 2) when docker cannot run here.
    """
    if kind == "auto":
        kind = "docker" if docker_ready(image) else "local"
    if kind == "docker":
        from autotune.launch.docker import DockerLauncher

        return DockerLauncher(model, image=image, rest=rest)
    if kind == "local":
        from autotune.launch.local import LocalLauncher

        return LocalLauncher(model, rest=rest)
    raise ValueError(f"unknown launcher kind {kind!r}: expected one of {LAUNCHER_KINDS}")


def docker_ready(image: str = DEFAULT_IMAGE) -> bool:
    """Whether a Docker engine is reachable and `image` is present on it."""
    from autotune.launch.docker import docker_ready as ready

    return ready(image)
