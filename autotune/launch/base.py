"""The one interface every way of running a model server implements.

A launcher starts a TF-Serving-compatible server with a set of thread settings, waits
until the model is AVAILABLE, and stops it with nothing left behind. The tuner sees
only this interface; it never knows whether a trial ran in a container or a process.

Waiting is the same for every launcher (poll `GetModelStatus`, give up early when the
server has exited, stop it on any failure or interrupt), so it lives here; a launcher
supplies only how to start, stop, read logs and tell whether its server has exited.

Every launcher asks its server to listen on loopback only. Once the model is AVAILABLE
the socket table is read: a server that listens on every interface anyway (a foreign
image in host networking, which does not know the request) is named in the log and in
`exposure`, which the study stores for the report.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Literal, Mapping

from autotune.errors import ServerStartError, UsageError
from autotune.launch._ports import free_port
from autotune.paths import MODEL_NAME
from autotune.serving.batching_config import BatchingParameters
from autotune.serving.options import LOOPBACK

#: log lines quoted in a `ServerStartError`
ERROR_LOG_LINES = 25
LOG = logging.getLogger("autotune.launch")


class LauncherUnavailableError(UsageError):
    """This way of launching cannot work on this host (no engine, no image, ...); the
    message says what to do instead. Exit code 2."""


@dataclass(frozen=True)
class Knob:
    """One server setting a study can tune, by every name it goes by.

    `kind` says how a search space offers its values (autotune.space): `threads` ranges
    over 1..max threads, `choice` over a listed set of values, `cpuset` over CPU lists
    (or `NO_CPUSET`), `batching` over TF Serving's batching knobs (autotune.batching_space),
    `instances` over server counts (autotune.cpusets; `InstanceGroup` starts them).
    A knob reaches the server as its `env` variable and/or its `flag` (a
    `tensorflow_model_server` flag); `cpuset` is applied by the launcher; `batching`
    knobs travel together as `ServerSettings.batching`, the batching parameters file
    (autotune.launch.batching_file): `enable_batching` switches it on, the others are
    the `BatchingParameters` fields of their name.
    """

    #: the Optuna param name (the lower-case env or flag name, as the dashboard shows it)
    param: str
    #: short column label for tables and progress lines
    label: str
    kind: Literal["threads", "choice", "cpuset", "batching", "instances"]
    env: str | None = None
    flag: str | None = None
    #: an env value as the param's value (`"0"` -> 0)
    parse: Callable[[str], object] = str


#: the param value that means "not pinned"
NO_CPUSET = "none"
#: the param that turns server-side batching on (TF Serving's `--enable_batching`)
BATCHING_SWITCH = "enable_batching"
#: batches a server queues, not searched: generous, so an overloaded run shows as latency
#: over the bound rather than as refusals
MAX_ENQUEUED_BATCHES = 100


def _parse_bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")

#: every knob, in the order params, env and flags are listed; a new knob is one row here
#: plus its choices in autotune.space
KNOBS: tuple[Knob, ...] = (
    Knob("omp_num_threads", "omp", "threads", env="OMP_NUM_THREADS", parse=int),
    Knob("intra_op_parallelism", "intra", "threads", env="TENSORFLOW_INTRA_OP_PARALLELISM",
         flag="--tensorflow_intra_op_parallelism", parse=int),
    Knob("inter_op_parallelism", "inter", "threads", env="TENSORFLOW_INTER_OP_PARALLELISM",
         flag="--tensorflow_inter_op_parallelism", parse=int),
    Knob("kmp_blocktime", "blocktime", "choice", env="KMP_BLOCKTIME", parse=int),
    Knob("kmp_affinity", "affinity", "choice", env="KMP_AFFINITY"),
    Knob("cpuset", "cpuset", "cpuset"),
    Knob("instances", "instances", "instances", parse=int),
    Knob(BATCHING_SWITCH, "batching", "batching", parse=_parse_bool),
    Knob("max_batch_size", "max_batch", "batching", parse=int),
    Knob("batch_timeout_micros", "timeout_us", "batching", parse=int),
    Knob("num_batch_threads", "batch_threads", "batching", parse=int),
)
KNOBS_BY_PARAM: dict[str, Knob] = {knob.param: knob for knob in KNOBS}
#: the batching knobs that are `BatchingParameters` fields (all but the switch)
BATCHING_PARAMS = tuple(knob.param for knob in KNOBS
                        if knob.kind == "batching" and knob.param != BATCHING_SWITCH)


def env_params(env: Mapping[str, str]) -> dict[str, object]:
    """The params an environment sets (by each knob's `env`), parsed; others left out."""
    return {knob.param: knob.parse(env[knob.env]) for knob in KNOBS
            if knob.env and env.get(knob.env, "").strip()}


@dataclass(frozen=True)
class ServerSettings:
    """The settings of one server start, as TF Serving's MKL image takes them.

    The thread knobs are fields; every other knob of `KNOBS` travels by its name:
    `extra_env` holds the env-carried ones (`KMP_BLOCKTIME`, `KMP_AFFINITY`, ...; an
    entry here wins over a field's variable), `extra_flags` the flag-only ones
    (`--flag` -> value); `cpuset` pins the server to CPUs (`"0-3"`, `"0,2"`) and
    `cpuset_mems` its memory to NUMA nodes (Docker only); `batching` turns on
    server-side batching with these parameters (see autotune.launch.batching_file for
    how a launcher passes them). `instances` is how many servers with these settings
    run side by side, each pinned to its own cores: a launcher starts one;
    `InstanceGroup` (autotune.launch.group) starts several.
    """

    omp_num_threads: int
    intra_op_parallelism: int
    inter_op_parallelism: int
    extra_env: Mapping[str, str] = field(default_factory=dict)
    cpuset: str | None = None
    extra_flags: Mapping[str, str] = field(default_factory=dict)
    batching: BatchingParameters | None = None
    cpuset_mems: str | None = None
    instances: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> ServerSettings:
        """The settings a trial's params stand for (params -> settings, by `KNOBS`)."""
        own = {f.name for f in fields(cls)}
        values: dict[str, object] = {}
        extra_env: dict[str, str] = {}
        extra_flags: dict[str, str] = {}
        for knob in KNOBS:
            if knob.param not in params or knob.kind == "batching":
                continue
            value = params[knob.param]
            if knob.kind == "cpuset":
                values["cpuset"] = None if value in (None, NO_CPUSET) else str(value)
            elif knob.param in own:
                values[knob.param] = (int(value) if knob.kind in ("threads", "instances")
                                      else value)
            else:
                if knob.env:
                    extra_env[knob.env] = str(value)
                if knob.flag:
                    extra_flags[knob.flag] = str(value)
        return cls(**values, extra_env=extra_env, extra_flags=extra_flags,
                   batching=_batching_from_params(params))

    def params(self) -> dict[str, object]:
        """The params these settings stand for (settings -> params); unset knobs left out."""
        params: dict[str, object] = {}
        for knob in KNOBS:
            if knob.kind == "batching":
                if self.batching is not None:
                    params[knob.param] = (True if knob.param == BATCHING_SWITCH
                                          else getattr(self.batching, knob.param))
            elif knob.kind == "cpuset":
                if self.cpuset is not None:
                    params[knob.param] = self.cpuset
            elif knob.kind == "instances":
                if self.instances != 1:
                    params[knob.param] = self.instances
            elif hasattr(self, knob.param):
                params[knob.param] = getattr(self, knob.param)
            elif knob.env and knob.env in self.extra_env:
                params[knob.param] = knob.parse(self.extra_env[knob.env])
            elif knob.flag and knob.flag in self.extra_flags:
                params[knob.param] = knob.parse(self.extra_flags[knob.flag])
        return params

    def env(self) -> dict[str, str]:
        """The container environment that carries these settings."""
        return {
            **{knob.env: str(getattr(self, knob.param)) for knob in KNOBS
               if knob.env and hasattr(self, knob.param)},
            **{name: str(value) for name, value in self.extra_env.items()},
        }

    def server_args(self) -> list[str]:
        """The `tensorflow_model_server` flags that carry settings (the parallelism)."""
        return [*(f"{knob.flag}={getattr(self, knob.param)}" for knob in KNOBS
                  if knob.flag and hasattr(self, knob.param)),
                *(f"{flag}={value}" for flag, value in self.extra_flags.items())]


def _batching_from_params(params: Mapping[str, object]) -> BatchingParameters | None:
    """The batching parameters a trial's params stand for; None when batching is off."""
    if not params.get(BATCHING_SWITCH):
        return None
    return BatchingParameters(**{name: int(params[name]) for name in BATCHING_PARAMS},
                              max_enqueued_batches=MAX_ENQUEUED_BATCHES)


@dataclass(frozen=True)
class ModelLocation:
    """A model on the host: `base_path` holds numeric version folders."""

    base_path: Path
    name: str = MODEL_NAME


class Launcher(abc.ABC):
    """Start, wait, stop: one running server at a time per launcher.

    Use as a context manager, or call `stop()` in a `finally`: a launcher always
    removes what it started, also after a failed start or an interrupt.
    """

    #: short name shown in reports and stored in the study (`docker`, `local`)
    kind: str = ""

    def __init__(self, model: ModelLocation, rest: bool = False) -> None:
        """`rest`: the server also serves TF Serving's REST API, on a port of its own
        (else it is started with `--rest_api_port=0`)."""
        self.model = model
        self.rest = rest
        self._address: str | None = None
        #: set when a started server listened on every interface (module docstring)
        self.exposure: str | None = None
        self._rest_address: str | None = None

    @property
    def address(self) -> str | None:
        """The gRPC address (`host:port`) of the started server, None when stopped."""
        return self._address

    @property
    def rest_address(self) -> str | None:
        """The REST address (`host:port`) of the started server when `rest`, else None."""
        return self._rest_address if self._address else None

    def _rest_port(self, grpc_port: int) -> int:
        """The `--rest_api_port` of the next start: a free port other than `grpc_port`
        when `rest`, else 0 (off)."""
        port = 0
        while self.rest and port in (0, grpc_port):
            port = free_port()
        self._rest_address = f"{LOOPBACK}:{port}" if port else None
        return port

    @property
    def addresses(self) -> list[str]:
        """Every started server's gRPC address (one here; several for an `InstanceGroup`)."""
        return [self._address] if self._address else []

    @property
    def rest_addresses(self) -> list[str]:
        """Every started server's REST address when `rest` (one here; several for a group)."""
        return [self.rest_address] if self.rest_address else []

    def rss_mb(self) -> float | None:
        """Resident memory of the running server(s) in MiB; None when unknown or stopped."""
        return None

    @abc.abstractmethod
    def start(self, settings: ServerSettings) -> str:
        """Start a server with `settings` (stopping any running one); return its gRPC address."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the server and remove it; safe to call when nothing runs."""

    @abc.abstractmethod
    def logs(self, lines: int = 50) -> str:
        """The last `lines` lines the server wrote (kept after `stop()` until the next start)."""

    @abc.abstractmethod
    def _exit_reason(self) -> str | None:
        """None while the server runs; else how it ended (`exited with code 1`)."""

    def wait_until_available(self, deadline_s: float) -> None:
        """Block until the model is AVAILABLE, else raise `ServerStartError` with the log tail.

        Fails as soon as the server exits, not at the deadline. On any failure or
        interrupt (KeyboardInterrupt) the server is stopped before the error propagates.
        """
        # Imported here: the serving protos pull in TensorFlow, which `import
        # autotune.launch` should not.
        from autotune.launch._model_status import ServerNotAvailable, poll_until_available

        if self._address is None:
            raise RuntimeError("wait_until_available() called before start()")
        try:
            poll_until_available(self._address, self.model.name, deadline_s, self._exit_reason)
        except ServerNotAvailable as failure:
            message = (f"{self.describe()}: model '{self.model.name}' did not become AVAILABLE: "
                       f"{failure}\n--- last server log lines ---\n{self.logs(ERROR_LOG_LINES)}")
            self.stop()
            raise ServerStartError(message) from None
        except BaseException:
            self.stop()
            raise
        self._check_listening()

    def _check_listening(self) -> None:
        """Record (and log, once) a server that listens beyond this host, on its gRPC
        port or its REST port."""
        from autotune.launch._listening import exposed_addresses

        for address in filter(None, (self._address, self.rest_address)):
            port = int(address.rsplit(":", 1)[1])
            exposed = exposed_addresses(port)
            if exposed and self.exposure is None:
                self.exposure = (f"{self.describe()} listens on {', '.join(exposed)} port "
                                 f"{port}, reachable from other hosts while it runs (the "
                                 "image does not honour the loopback request)")
                LOG.warning("warning: %s", self.exposure)

    def describe(self) -> str:
        """One line for reports: the launcher and what it runs."""
        return self.kind

    def image_env(self) -> dict[str, str]:
        """The environment its servers start with before any setting (`image-defaults`).

        By default the project image's ENV (autotune.image.image_default_env); a launcher
        that runs an image reads that image's own.
        """
        from autotune.image import image_default_env

        return image_default_env()

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
