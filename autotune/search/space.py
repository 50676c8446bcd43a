"""The search space of one study and the named baselines measured first.

Thread settings (`omp_num_threads`, `intra_op_parallelism`, `inter_op_parallelism`)
range over [1, physical cores], or fewer under a CPU quota (the tuner's cgroup's, or
`--cpus`: `HostFacts.cpu_budget`); `--max-threads` moves that bound, so oversubscription
is measured rather than assumed bad. Right-sizing (`--target-qps`) adds `cpus`, the
CPU limit the server runs under: whole CPUs up to the host's, and halves below 2. The
extended space adds the OpenMP knobs
`KMP_BLOCKTIME` and `KMP_AFFINITY` and a `cpuset` (both launchers pin: Docker with
`--cpuset-cpus`, the local one with `taskset`). A mode that searches batching (server
mode) adds TF Serving's batching knobs (their choices: autotune.search.batching_space); its
baselines run without batching. A mode that searches instances (batch and server mode)
adds `instances`: several servers, each pinned to its own share of whole cores
(autotune.host.cpusets), the thread settings then holding per instance and the load spread
over them; online is one request at a time, which one instance serves, so there it is
not searched. `cpuset` is asked only of single-instance trials (a conditional param):
the instances' shares are their pinning. Params are the knobs of
`autotune.launch.settings.KNOBS`; a new knob is a row there plus its choices here.

Baselines are the settings a user would try without a tuner: the NCF tutorial's
recommendation for the mode (`tutorial`) and the serving image's own ENV defaults
(`image-defaults`: `Launcher.image_env()`, the ENV of the image the Docker launcher
runs, else of the project's image, see autotune.launch.image). A default of 0 means
"TensorFlow/OpenMP decide", which they resolve to every schedulable logical CPU, so 0
maps to the usable logical CPUs, clipped into the space. Knobs a baseline does not set
take the image's values. Under a CPU quota the baselines keep the node's thread counts
(the space does not): that is how a pod is sized without a tuner.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Iterator, Mapping

import optuna

from autotune.host.cgroups import format_cpu_list
from autotune.host.cpusets import instance_counts
from autotune.host.facts import HostFacts
from autotune.launch.settings import KNOBS, KNOBS_BY_PARAM, NO_CPUSET, ServerSettings, env_params
from autotune.modes import Mode, get_mode
from autotune.record.schema import instances_of
from autotune.search.batching_space import BatchingChoices

THREAD_PARAMS = tuple(knob.param for knob in KNOBS if knob.kind == "threads")
KMP_BLOCKTIME_CHOICES = (0, 1, 10, 200)
#: KMP_AFFINITY by its short name; the values are the full strings the server gets
KMP_AFFINITY_CHOICES = {
    "compact": "granularity=fine,compact,1,0",
    "scatter": "granularity=fine,scatter",
    "none": "none",
}
#: short column labels for tables and progress lines
PARAM_LABELS = {knob.param: knob.label for knob in KNOBS}


@dataclass(frozen=True)
class SearchSpace:
    """Every value each param may take; an empty optional tuple means "not searched"."""

    max_threads: int
    kmp_blocktime: tuple[int, ...] = ()
    kmp_affinity: tuple[str, ...] = ()
    cpuset: tuple[str, ...] = ()
    batching: BatchingChoices | None = None
    #: server instance counts (autotune.host.cpusets); empty: one instance
    instances: tuple[int, ...] = ()
    #: CPU limits (right-sizing); empty: not searched
    cpus: tuple[float, ...] = ()

    def choices(self) -> dict[str, tuple[object, ...]]:
        """Param name -> its values, thread params first; optional knobs only when searched."""
        threads = tuple(range(1, self.max_threads + 1))
        knobs = {"cpus": self.cpus, "instances": self.instances,
                 "kmp_blocktime": self.kmp_blocktime, "kmp_affinity": self.kmp_affinity,
                 "cpuset": self.cpuset}
        return {**{name: threads for name in THREAD_PARAMS},
                **{name: values for name, values in knobs.items() if values}}

    @property
    def size(self) -> int:
        """The number of distinct configurations (`cpuset` only with one instance)."""
        choices = self.choices()
        cpusets = len(choices.pop("cpuset", (None,)))
        counts = choices.pop("instances", (1,))
        per_layout = math.prod(len(values) for values in choices.values())
        batching = self.batching.size if self.batching else 1
        return per_layout * sum(cpusets if count == 1 else 1 for count in counts) * batching

    def configurations(self) -> Iterator[dict[str, object]]:
        """Every configuration once, in a stable order."""
        choices = self.choices()
        batching = list(self.batching.configurations()) if self.batching else [{}]
        for values in itertools.product(*choices.values()):
            params = dict(zip(choices, values, strict=True))
            if instances_of(params) == 1 or params.pop("cpuset", NO_CPUSET) == NO_CPUSET:
                for knobs in batching:
                    yield {**params, **knobs}

    def suggest(self, trial: optuna.Trial) -> dict[str, object]:
        """Ask the trial for one value per param (enqueued trials get their fixed values)."""
        params: dict[str, object] = {}
        for name, values in self.choices().items():
            if KNOBS_BY_PARAM[name].kind == "threads":
                with warnings.catch_warnings():  # a baseline sized to the node, beyond a quota
                    warnings.filterwarnings("ignore", "Fixed parameter", UserWarning)
                    params[name] = trial.suggest_int(name, 1, self.max_threads)
            elif name != "cpuset" or instances_of(params) == 1:
                params[name] = trial.suggest_categorical(name, list(values))
        if self.batching:
            params.update(self.batching.suggest(trial))
        return params


@dataclass(frozen=True)
class Baseline:
    """A named configuration every study measures before it searches."""

    name: str
    params: dict[str, object]


def build_space(host: HostFacts, max_threads: int | None = None,
                extended: bool = False, batching: bool = False,
                instances: bool = False, cpu_limits: bool = False) -> SearchSpace:
    """The space for `host`: threads up to `max_threads` (default: the physical cores, or
    the CPU quota's CPUs, `HostFacts.cpu_budget`).

    `extended` adds the OpenMP knobs, and CPU pinning when the host has a strict subset
    of CPUs worth pinning to; `batching` (`Mode.searches_batching`) the batching knobs;
    `instances` (`Mode.searches_instances`) the instance counts, when there are several;
    `cpu_limits` (right-sizing) the CPU limits (`cpu_limit_choices`).
    """
    limit = max_threads or host.cpu_budget
    knobs = BatchingChoices.for_cores(host.cpu_budget) if batching else None
    counts = instance_counts(host) if instances else ()
    limits = cpu_limit_choices(host) if cpu_limits else ()
    if not extended:
        return SearchSpace(max_threads=limit, batching=knobs, instances=_several(counts),
                           cpus=limits)
    return SearchSpace(
        max_threads=limit,
        kmp_blocktime=KMP_BLOCKTIME_CHOICES,
        kmp_affinity=tuple(KMP_AFFINITY_CHOICES.values()),
        cpuset=cpuset_choices(host),
        batching=knobs,
        instances=_several(counts),
        cpus=limits,
    )


def cpu_limit_choices(host: HostFacts) -> tuple[float, ...]:
    """The CPU limits right-sizing tries: halves below 2, then whole CPUs up to the host's
    (its quota, else its usable CPUs): 0.5, 1, 1.5, 2 on a 2-CPU host."""
    most = host.cpu_limit if host.cpu_limit is not None else float(len(host.usable_cpus))
    halves = [0.5, 1.0, 1.5]
    return tuple(value for value in (*halves, *map(float, range(2, math.floor(most) + 1)))
                 if value <= most) or (most,)


def _several(counts: tuple[int, ...]) -> tuple[int, ...]:
    """The instance counts worth searching: none when one instance is all there is."""
    return counts if len(counts) > 1 else ()


def cpuset_choices(host: HostFacts) -> tuple[str, ...]:
    """No pinning, or one logical CPU per physical core over the first half or all cores.

    A pinned set equal to every usable CPU is the same as no pinning and is left out, so
    on a small host without SMT the choice is "none" vs half the cores (the other half
    then stays free for the load generator).
    """
    sizes = sorted({max(1, host.physical_cores // 2), host.physical_cores})
    pinned = [host.core_leaders[:size] for size in sizes]
    lists = [format_cpu_list(cpus) for cpus in pinned if set(cpus) != set(host.usable_cpus)]
    return (NO_CPUSET, *dict.fromkeys(lists)) if lists else ()


def describe_params(params: Mapping[str, object]) -> str:
    """Params in one short line: `omp=2 intra=2 inter=1 ...`."""
    return " ".join(f"{PARAM_LABELS.get(name, name)}={value}" for name, value in params.items())


def settings_from_params(params: Mapping[str, object]) -> ServerSettings:
    """The server settings a trial's params stand for (`ServerSettings.from_params`)."""
    return ServerSettings.from_params(params)


def baselines(space: SearchSpace, host: HostFacts, mode: Mode | str,
              image_env: Mapping[str, str]) -> list[Baseline]:
    """The tutorial's settings for `mode`, then the image's defaults, mapped into `space`."""
    image = _params_from_env(space, host, image_env)
    tutorial_threads = get_mode(mode).tutorial_threads(host.physical_cores)
    clipped = (_clip(v, space, host) for v in tutorial_threads)
    tutorial = {**image, **dict(zip(THREAD_PARAMS, clipped, strict=True))}
    return [Baseline("tutorial", tutorial), Baseline("image-defaults", image)]


def _params_from_env(space: SearchSpace, host: HostFacts,
                     env: Mapping[str, str]) -> dict[str, object]:
    """Params for an image env; 0 or unset threads mean every usable logical CPU."""
    given = env_params(env)
    params: dict[str, object] = {}
    for name in THREAD_PARAMS:
        value = int(given.get(name, 0))
        params[name] = _clip(value if value > 0 else host.logical_cpus, space, host)
    if space.kmp_blocktime:
        blocktime = int(given.get("kmp_blocktime", 200))  # 200 ms is OpenMP's own default
        params["kmp_blocktime"] = min(space.kmp_blocktime,
                                      key=lambda choice: abs(choice - blocktime))
    if space.kmp_affinity:
        params["kmp_affinity"] = _affinity_choice(str(given.get("kmp_affinity", "none")))
    if space.instances:
        params["instances"] = 1
    if space.cpus:
        params["cpus"] = max(space.cpus)  # the user's first guess: the whole host
    if space.cpuset:
        params["cpuset"] = NO_CPUSET
    if space.batching:
        params.update(next(space.batching.configurations()))  # batching off
    return params


def _affinity_choice(value: str) -> str:
    """The space's KMP_AFFINITY string of the same kind (`verbose` and the like dropped)."""
    kinds = [kind for kind in ("compact", "scatter") if kind in value.split(",")]
    return KMP_AFFINITY_CHOICES[kinds[0] if kinds else "none"]


def _clip(threads: int, space: SearchSpace, host: HostFacts) -> int:
    """A baseline's thread count within the space, or within the node's cores under a
    CPU quota: a user in a pod sizes threads to the node (which is what goes wrong),
    so that is measured, though the search stays within the quota."""
    most = max(space.max_threads, host.physical_cores if host.cpu_limit else 0)
    return min(max(threads, 1), most)
