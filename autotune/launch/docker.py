"""Run the model server in a container of a serving image, with the Docker SDK.

Any image that follows TF Serving's contract works: `autotune/serving:mkl` (the
default, see `autotune image build`), `tensorflow/serving`, an MKL build of it. The
settings go in as environment and as the two parallelism arguments appended to the
image's entrypoint, with `--port=<free port>` and `--rest_api_port=0` (another free port
when `rest`). The model folder is mounted read-only at `/models/<name>`; with batching
on, the batching parameters file is mounted read-only at
`/config/batching_parameters.txt` and named by TF Serving's batching flags. A CPU or
memory limit (`ServerSettings.cpus`, `memory_mb`) is the container's `--cpus`
(`NanoCpus`) and `--memory`.

Reachable from this host only: where the engine has a `bridge` network the container
runs on it and its ports (gRPC, and REST when `rest`) are published on 127.0.0.1 alone;
where it has none (an engine started with `--bridge=none`) the container shares the
host's network, with no NAT between client and server, and is asked to listen on
127.0.0.1 (`$AUTOTUNE_SERVING_BIND_ADDRESS`): the project's image does, a foreign image
may not, and the launcher's listening check (autotune.launch.base) names it then.

Every container carries the labels `autotune.owner=autotune` and `autotune.pid=<tuner
pid>`. A container is removed by `stop()`, on a failed or interrupted start, and, if
the tuner is killed before it can, by the tuner's watchdog process within a second or
two (autotune.launch.watchdog); the next start on this host also removes labelled
containers whose tuner process is gone.

The same container as a ready `docker run` line (the report's) is `docker_run_command`:
this module knows the mounts, the environment and the CPU pinning. The `image-defaults`
baseline is the ENV of the image actually run (`DockerLauncher.image_env`).
"""

from __future__ import annotations

import os
import shlex
import uuid
from pathlib import Path
from typing import Sequence

import docker
import docker.errors
import docker.types
import psutil
from docker.models.containers import Container

from autotune.errors import ServerStartError
from autotune.host.load import tree_cpu_s
from autotune.launch._ports import free_port
from autotune.launch.base import (
    KEPT_LOG_LINES,
    Launcher,
    LauncherUnavailableError,
    ModelLocation,
    last_lines,
)
from autotune.launch.batching_file import (
    CONTAINER_FOLDER,
    CONTAINER_PATH,
    FILE_NAME,
    batching_args,
    write_batching_file,
)
from autotune.launch.image import image_env
from autotune.launch.settings import ServerSettings
from autotune.launch.watchdog import Watchdog
from autotune.paths import DEFAULT_IMAGE, MODEL_NAME
from autotune.protocols import GRPC, PROTOCOL_PORTS
from autotune.serving.options import BIND_ADDRESS_ENV, LOOPBACK

OWNER_LABEL = "autotune.owner"
OWNER = "autotune"
PID_LABEL = "autotune.pid"
#: one per launcher: its watchdog removes that launcher's containers only
LAUNCHER_LABEL = "autotune.launcher"
MODELS_IN_CONTAINER = "/models"
ENGINE_TIMEOUT_S = 10
BRIDGE_NETWORK = "bridge"


def container_env(settings: ServerSettings, model_name: str) -> dict[str, str]:
    """The environment of a serving container: the model's name, then the settings."""
    return {"MODEL_NAME": model_name, **settings.env()}


def container_limits(settings: ServerSettings) -> dict[str, object]:
    """The Docker SDK's arguments of the settings' CPU and memory limits (`--cpus`,
    `--memory`), none where there is no limit."""
    limits: dict[str, object] = {}
    if settings.cpus is not None:
        limits["nano_cpus"] = round(settings.cpus * 1e9)
    if settings.memory_mb is not None:
        limits["mem_limit"] = f"{int(settings.memory_mb)}m"
    return limits


def docker_run_command(settings: ServerSettings, model_dir: str, image: str,
                       model_name: str = MODEL_NAME,
                       batching_file: Path = Path(FILE_NAME), protocol: str = GRPC,
                       cpusets: Sequence[str] | None = None,
                       cpuset_mems: Sequence[str] | None = None) -> str:
    """A ready `docker run` of `image` with `settings`, in the NCF tutorial's style,
    publishing the image's port of `protocol` (8500 gRPC, 8501 REST).

    The model folder is mounted where TF Serving's images look for it, the settings go
    in as environment (as `start()` passes them), the CPU pinning as `--cpuset-cpus` and
    the limits as `--cpus` and `--memory` (each instance's share, as `start()` got them);
    with batching on, `batching_file` (the parameters, on the host) is mounted read-only
    where `start()` mounts it and named by TF Serving's batching flags. Several
    instances (their `cpusets`, and `cpuset_mems` on a NUMA host) give one line each,
    published on consecutive host ports from the protocol's (8500, 8501, ... for gRPC).
    """
    port = PROTOCOL_PORTS[protocol]
    lines = []
    for index, cpuset in enumerate(cpusets or [settings.cpuset]):
        words = ["docker", "run", "-d", "-p", f"{port + index}:{port}",
                 "-v", f"{model_dir}:{MODELS_IN_CONTAINER}/{model_name}"]
        if settings.batching is not None:
            words += ["-v", f"{Path(batching_file).resolve()}:{CONTAINER_PATH}:ro"]
        for name, value in container_env(settings, model_name).items():
            words += ["-e", f"{name}={value}"]
        if settings.cpus is not None:
            words.append(f"--cpus={settings.cpus:g}")
        if settings.memory_mb is not None:
            words.append(f"--memory={int(settings.memory_mb)}m")
        if cpuset:
            words.append(f"--cpuset-cpus={cpuset}")
        if cpuset_mems:
            words.append(f"--cpuset-mems={cpuset_mems[index]}")
        words.append(image)
        if settings.batching is not None:
            words += batching_args(CONTAINER_PATH)
        lines.append(shlex.join(words))
    return "\n".join(lines)


def _missing_image(image: str) -> LauncherUnavailableError:
    return LauncherUnavailableError(
        f"image {image} is not on this host: build it with `autotune image build` (add "
        f"--offline where no registry is reachable) or `docker pull` it, "
        f"or run with --server local")


def connect() -> docker.DockerClient:
    """A client of the engine the environment names (DOCKER_HOST, else the local socket).

    `LauncherUnavailableError` when no engine answers.
    """
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT_S)
        client.ping()
    except docker.errors.DockerException as error:
        raise LauncherUnavailableError(
            f"cannot reach the Docker engine ({error}); start it (dockerd), "
            f"or run with --server local") from None
    return client


def require_image(client: docker.DockerClient, image: str) -> None:
    """`LauncherUnavailableError` unless `image` is present on the engine (never pulled)."""
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise _missing_image(image) from None
    except docker.errors.APIError as error:
        raise LauncherUnavailableError(f"cannot inspect image {image}: {error}") from None


def docker_ready(image: str = DEFAULT_IMAGE) -> bool:
    """Whether an engine is reachable and `image` is present (`--server auto` asks this)."""
    try:
        require_image(connect(), image)
    except LauncherUnavailableError:
        return False
    return True


def _tuner_gone(container: Container) -> bool:
    pid = container.labels.get(PID_LABEL, "")
    return not (pid.isdigit() and psutil.pid_exists(int(pid)))


def _labelled(client: docker.DockerClient, labels: dict[str, str]) -> list[Container]:
    # ignore_removed: a container another tuner (or a watchdog) removes while this one
    # lists them is simply gone, not an error
    return client.containers.list(
        all=True, filters={"label": [f"{key}={value}" for key, value in labels.items()]},
        ignore_removed=True)


def _remove(containers: list[Container]) -> list[str]:
    removed = []
    for container in containers:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as error:
            if error.status_code == 409:  # "removal already in progress": someone else's
                continue
            raise
        removed.append(container.name)
    return removed


def remove_labelled(client: docker.DockerClient, labels: dict[str, str]) -> list[str]:
    """Remove every container carrying all of `labels`; return their names."""
    return _remove(_labelled(client, labels))


def reap_stale_containers(client: docker.DockerClient) -> list[str]:
    """Remove the labelled containers whose tuner process is gone; return their names."""
    return _remove([container for container in _labelled(client, {OWNER_LABEL: OWNER})
                    if _tuner_gone(container)])


def has_bridge(client: docker.DockerClient) -> bool:
    """Whether the engine has a bridge network to publish ports from."""
    return bool(client.networks.list(names=[BRIDGE_NETWORK]))


class DockerLauncher(Launcher):
    """A server container per start, on a free host port of 127.0.0.1 (module docstring)."""

    kind = "docker"

    def __init__(self, model: ModelLocation, image: str = DEFAULT_IMAGE,
                 stop_grace_s: float = 5.0, client: docker.DockerClient | None = None,
                 rest: bool = False) -> None:
        super().__init__(model, rest)
        self.image = image
        self.stop_grace_s = stop_grace_s
        self._client = client or connect()
        require_image(self._client, image)
        self.host_network = not has_bridge(self._client)
        self._container: Container | None = None
        self._stopped_cpu_s = 0.0
        self._kept_logs = ""
        self._launcher_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._watchdog = Watchdog("docker", "autotune-docker-config-", self._launcher_id)

    def describe(self) -> str:
        return f"docker ({self.image})"

    def image_env(self) -> dict[str, str]:
        """The ENV of the image this launcher runs (its `Config.Env`), whatever image it is."""
        return image_env(self._client, self.image)

    @property
    def container_name(self) -> str | None:
        """The running container's name, while one was started."""
        return self._container.name if self._container else None

    def start(self, settings: ServerSettings) -> str:
        self.stop()
        reap_stale_containers(self._client)
        self._watchdog.watch()
        port = free_port()
        name = f"autotune-serving-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        rest_port = self._rest_port(port)
        command = [*settings.server_args(), f"--port={port}", f"--rest_api_port={rest_port}"]
        mounts = [docker.types.Mount(target=f"{MODELS_IN_CONTAINER}/{self.model.name}",
                                     source=str(os.path.abspath(self.model.base_path)),
                                     type="bind", read_only=True)]
        if settings.batching is not None:
            folder = self._watchdog.folder
            write_batching_file(settings.batching, folder)
            command += batching_args(CONTAINER_PATH)
            mounts.append(docker.types.Mount(target=CONTAINER_FOLDER, source=str(folder),
                                             type="bind", read_only=True))
        environment = container_env(settings, self.model.name)
        if self.host_network:
            network: dict[str, object] = {"network_mode": "host"}
            environment[BIND_ADDRESS_ENV] = LOOPBACK
        else:
            network = {"ports": {f"{published}/tcp": (LOOPBACK, published)
                                 for published in (port, rest_port) if published}}
        try:
            self._container = self._client.containers.create(
                self.image,
                command=command,
                name=name,
                environment=environment,
                mounts=mounts,
                cpuset_cpus=settings.cpuset,
                cpuset_mems=settings.cpuset_mems,
                **container_limits(settings),
                labels={OWNER_LABEL: OWNER, PID_LABEL: str(os.getpid()),
                        LAUNCHER_LABEL: self._launcher_id},
                **network,
            )
            self._container.start()
        except docker.errors.ImageNotFound:
            self._remove_named(name)
            raise _missing_image(self.image) from None
        except docker.errors.APIError as error:
            self._remove_named(name)
            raise ServerStartError(f"{self.describe()}: the engine refused the container: "
                                   f"{error.explanation or error}") from None
        except BaseException:
            # An interrupt between create and start must not leave the container behind.
            self._remove_named(name)
            raise
        self._address = f"{LOOPBACK}:{port}"
        return self._address

    def _remove_named(self, name: str) -> None:
        self._container = None
        try:
            self._client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass

    def server_pids(self) -> list[int]:
        """The container's first process, as the host sees it (0 while it is not running)."""
        if self._container is None:
            return []
        try:
            self._container.reload()
        except docker.errors.APIError:
            return []
        pid = self._container.attrs.get("State", {}).get("Pid", 0)
        return [pid] if pid else []

    def rss_mb(self) -> float | None:
        """The container's memory as `docker stats` counts it: cgroup usage minus page cache."""
        if self._container is None:
            return None
        try:
            memory = self._container.stats(stream=False, one_shot=True).get("memory_stats", {})
        except docker.errors.APIError:
            return None
        if "usage" not in memory:
            return None
        stats = memory.get("stats", {})
        cache = stats.get("inactive_file", stats.get("total_inactive_file", 0))
        return (memory["usage"] - cache) / 2**20

    def _exit_reason(self) -> str | None:
        if self._container is None:
            return "was stopped"
        try:
            self._container.reload()
        except docker.errors.NotFound:
            return "container disappeared"
        if self._container.status in ("exited", "dead"):
            return f"container exited with code {self._container.attrs['State']['ExitCode']}"
        return None

    def stopped_cpu_s(self) -> float:
        return self._stopped_cpu_s

    def stop(self) -> None:
        self._stopped_cpu_s += tree_cpu_s(self.server_pids())  # before its processes go
        container, self._container = self._container, None
        self._address = None
        if container is None:
            return
        try:
            container.reload()
            if container.status != "paused":  # a paused (hung) server is killed at once
                try:
                    container.stop(timeout=max(1, round(self.stop_grace_s)))
                except docker.errors.APIError as error:  # removed by force below
                    if isinstance(error, docker.errors.NotFound):
                        raise
            self._kept_logs = container.logs(tail=KEPT_LOG_LINES).decode(errors="replace")
            container.remove(force=True)
        except docker.errors.NotFound:
            pass

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server, then let the watchdog go: it finds no container left to
        remove, and removes the batching file's folder."""
        self.stop()
        self._watchdog.close()

    def logs(self, lines: int = 50) -> str:
        if self._container is None:
            return last_lines(self._kept_logs, lines)
        try:
            return self._container.logs(tail=lines).decode(errors="replace")
        except docker.errors.NotFound:
            return ""
