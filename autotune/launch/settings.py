"""The knobs a study tunes and the settings of one server: the knob table, in one place.

`KNOBS` has one row per knob (its param name, label, kind, env variable and/or
`tensorflow_model_server` flag, parse); `ServerSettings` holds one configuration and
derives from the rows its container env (`env()`), its flags (`server_args()`) and its
params (`params()`). A new knob is a row here and its choices in autotune.search.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable, Literal, Mapping

from autotune.serving.batching_config import BatchingParameters


@dataclass(frozen=True)
class Knob:
    """One server setting a study can tune, by every name it goes by.

    `kind` says how a search space offers its values (autotune.search.space): `threads` ranges
    over 1..max threads, `choice` over a listed set of values, `cpuset` over CPU lists
    (or `NO_CPUSET`), `batching` over TF Serving's batching knobs (autotune.search.batching_space),
    `instances` over server counts (autotune.host.cpusets; `InstanceGroup` starts them),
    `limit` over CPU limits (right-sizing, `--target-qps`: the launcher applies it as
    a CFS quota, like `--cpus`).
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
    kind: Literal["threads", "choice", "cpuset", "batching", "instances", "limit"]
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
#: plus its choices in autotune.search.space
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
    Knob("cpus", "cpus", "limit", parse=float),
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
    `InstanceGroup` (autotune.launch.group) starts several. `cpus` is the CFS quota the
    server runs under, in CPUs, and `memory_mb` its memory limit (None: none; Docker's
    `--cpus`/`--memory`, the local launcher's own cgroup, autotune.launch.server_cgroup).
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
    cpus: float | None = None
    memory_mb: float | None = None

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
                                      else knob.parse(str(value)) if knob.kind == "limit"
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
            elif knob.kind == "limit":
                if getattr(self, knob.param) is not None:
                    params[knob.param] = getattr(self, knob.param)
            elif hasattr(self, knob.param):
                params[knob.param] = getattr(self, knob.param)
            elif knob.env and knob.env in self.extra_env:
                params[knob.param] = knob.parse(self.extra_env[knob.env])
            elif knob.flag and knob.flag in self.extra_flags:
                params[knob.param] = knob.parse(self.extra_flags[knob.flag])
        return params

    def instance_share(self) -> ServerSettings:
        """The limits of one of `instances` servers: an even share of the CPU and memory
        limits (the whole for one)."""
        count = self.instances
        return replace(self, cpus=None if self.cpus is None else self.cpus / count,
                       memory_mb=None if self.memory_mb is None else self.memory_mb / count)

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


@dataclass(frozen=True)
class DeployLimits:
    """The limits every trial server runs under, as the deployment will (`--cpus`,
    `--cpuset-cpus`, `--memory`; None: none): a pod's `resources.limits`, `docker run`'s
    flags. `InstanceGroup` applies them to each start (`apply`); a searched CPU limit
    (the `cpus` param) wins over `--cpus`."""

    cpus: float | None = None
    cpuset_cpus: str | None = None
    memory_mb: float | None = None

    def apply(self, settings: ServerSettings) -> ServerSettings:
        """`settings` with these limits where they set none; the cpuset only for one
        unpinned instance (several take their shares of it from the host split)."""
        cpuset = (self.cpuset_cpus if settings.cpuset is None and settings.instances == 1
                  else settings.cpuset)
        return replace(settings, cpus=settings.cpus if settings.cpus is not None else self.cpus,
                       memory_mb=settings.memory_mb if settings.memory_mb is not None
                       else self.memory_mb, cpuset=cpuset)

    def as_dict(self) -> dict[str, object]:
        """The study attr `limits` (autotune.record.schema.StudyAttr.LIMITS)."""
        return {"cpus": self.cpus, "cpuset_cpus": self.cpuset_cpus, "memory_mb": self.memory_mb}

    @classmethod
    def from_dict(cls, stored: Mapping[str, object] | None) -> DeployLimits:
        """The limits a study recorded (none for a study from before they were)."""
        stored = stored or {}
        return cls(**{name: stored.get(name) for name in ("cpus", "cpuset_cpus", "memory_mb")})

    def __bool__(self) -> bool:
        return any(value is not None for value in self.as_dict().values())


def _batching_from_params(params: Mapping[str, object]) -> BatchingParameters | None:
    """The batching parameters a trial's params stand for; None when batching is off."""
    if not params.get(BATCHING_SWITCH):
        return None
    return BatchingParameters(**{name: int(params[name]) for name in BATCHING_PARAMS},
                              max_enqueued_batches=MAX_ENQUEUED_BATCHES)
