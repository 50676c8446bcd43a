"""The search space of one study and the named baselines measured first.

Thread settings (`omp_num_threads`, `intra_op_parallelism`, `inter_op_parallelism`)
range over [1, physical cores]; `--max-threads` moves that bound, so oversubscription
is measured rather than assumed bad. The extended space adds the OpenMP knobs
`KMP_BLOCKTIME` and `KMP_AFFINITY` and a `cpuset` (both launchers pin: Docker with
`--cpuset-cpus`, the local one with `taskset`). Server mode adds TF Serving's batching
knobs (autotune.batching_space); its baselines run without batching.
Params are named by their lower-case env or flag name, as the dashboard shows them.

Baselines are the settings a user would try without a tuner: the NCF tutorial's
recommendation for the mode (`tutorial`) and the serving image's own ENV defaults
(`image-defaults`, read from docker/Dockerfile when the source tree has it, else TF
Serving's Dockerfile.mkl values). A default of 0 means "TensorFlow/OpenMP decide",
which they resolve to every schedulable logical CPU, so 0 maps to the usable logical
CPUs, clipped into the space. Knobs a baseline does not set take the image's values.
"""

from __future__ import annotations

import itertools
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import optuna

from autotune.batching_space import LABELS as BATCHING_LABELS
from autotune.batching_space import BatchingChoices, batching_from_params
from autotune.host import HostFacts
from autotune.launch.base import ServerSettings

THREAD_PARAMS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")
KMP_BLOCKTIME_CHOICES = (0, 1, 10, 200)
#: KMP_AFFINITY by its short name; the values are the full strings the server gets
KMP_AFFINITY_CHOICES = {
    "compact": "granularity=fine,compact,1,0",
    "scatter": "granularity=fine,scatter",
    "none": "none",
}
NO_CPUSET = "none"
#: short column labels for tables and progress lines
PARAM_LABELS = {"omp_num_threads": "omp", "intra_op_parallelism": "intra",
                "inter_op_parallelism": "inter", "kmp_blocktime": "blocktime",
                "kmp_affinity": "affinity", "cpuset": "cpuset", **BATCHING_LABELS}

#: the env of the project's image, where the source tree has it
IMAGE_DOCKERFILE = Path(__file__).resolve().parents[1] / "docker" / "Dockerfile"
#: TF Serving's tensorflow_serving/tools/docker/Dockerfile.mkl, for an installed package
UPSTREAM_MKL_ENV = {
    "OMP_NUM_THREADS": "2",
    "KMP_BLOCKTIME": "1",
    "KMP_AFFINITY": "granularity=fine,verbose,compact,1,0",
    "TENSORFLOW_INTRA_OP_PARALLELISM": "0",
    "TENSORFLOW_INTER_OP_PARALLELISM": "0",
}


@dataclass(frozen=True)
class SearchSpace:
    """Every value each param may take; an empty optional tuple means "not searched"."""

    max_threads: int
    kmp_blocktime: tuple[int, ...] = ()
    kmp_affinity: tuple[str, ...] = ()
    cpuset: tuple[str, ...] = ()
    batching: BatchingChoices | None = None

    def choices(self) -> dict[str, tuple[object, ...]]:
        """Param name -> its values, thread params first; optional knobs only when searched."""
        threads = tuple(range(1, self.max_threads + 1))
        knobs = {"kmp_blocktime": self.kmp_blocktime, "kmp_affinity": self.kmp_affinity,
                 "cpuset": self.cpuset}
        return {**{name: threads for name in THREAD_PARAMS},
                **{name: values for name, values in knobs.items() if values}}

    @property
    def size(self) -> int:
        """The number of distinct configurations."""
        batching = self.batching.size if self.batching else 1
        return math.prod(len(values) for values in self.choices().values()) * batching

    def configurations(self) -> Iterator[dict[str, object]]:
        """Every configuration once, in a stable order."""
        choices = self.choices()
        batching = list(self.batching.configurations()) if self.batching else [{}]
        for values in itertools.product(*choices.values()):
            for knobs in batching:
                yield {**dict(zip(choices, values, strict=True)), **knobs}

    def suggest(self, trial: optuna.Trial) -> dict[str, object]:
        """Ask the trial for one value per param (enqueued trials get their fixed values)."""
        params: dict[str, object] = {}
        for name, values in self.choices().items():
            if name in THREAD_PARAMS:
                params[name] = trial.suggest_int(name, 1, self.max_threads)
            else:
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
                extended: bool = False, batching: bool = False) -> SearchSpace:
    """The space for `host`: threads up to `max_threads` (default: physical cores).

    `extended` adds the OpenMP knobs, and CPU pinning when the host has a strict subset
    of CPUs worth pinning to; `batching` (server mode) the batching knobs.
    """
    limit = max_threads or host.physical_cores
    knobs = BatchingChoices.for_cores(host.physical_cores) if batching else None
    if not extended:
        return SearchSpace(max_threads=limit, batching=knobs)
    return SearchSpace(
        max_threads=limit,
        kmp_blocktime=KMP_BLOCKTIME_CHOICES,
        kmp_affinity=tuple(KMP_AFFINITY_CHOICES.values()),
        cpuset=cpuset_choices(host),
        batching=knobs,
    )


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


def format_cpu_list(cpus: tuple[int, ...]) -> str:
    """CPU ids as a kernel/Docker CPU list, e.g. (0, 1, 2, 5) -> "0-2,5"."""
    parts = []
    for _, run in itertools.groupby(enumerate(sorted(cpus)), key=lambda pair: pair[1] - pair[0]):
        ids = [cpu for _, cpu in run]
        parts.append(str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}")
    return ",".join(parts)


def describe_params(params: Mapping[str, object]) -> str:
    """Params in one short line: `omp=2 intra=2 inter=1 ...`."""
    return " ".join(f"{PARAM_LABELS.get(name, name)}={value}" for name, value in params.items())


def settings_from_params(params: Mapping[str, object]) -> ServerSettings:
    """The server settings a trial's params stand for."""
    extra_env = {name.upper(): str(params[name]) for name in ("kmp_blocktime", "kmp_affinity")
                 if name in params}
    cpuset = params.get("cpuset")
    return ServerSettings(
        omp_num_threads=int(params["omp_num_threads"]),
        intra_op_parallelism=int(params["intra_op_parallelism"]),
        inter_op_parallelism=int(params["inter_op_parallelism"]),
        extra_env=extra_env,
        cpuset=None if cpuset in (None, NO_CPUSET) else str(cpuset),
        batching=batching_from_params(params),
    )


def image_default_env(dockerfile: Path = IMAGE_DOCKERFILE) -> dict[str, str]:
    """The serving image's ENV defaults: from `dockerfile` when present, else TF Serving's."""
    if not dockerfile.is_file():
        return dict(UPSTREAM_MKL_ENV)
    parsed = _dockerfile_env(dockerfile.read_text())
    return {name: parsed.get(name, value) for name, value in UPSTREAM_MKL_ENV.items()}


def _dockerfile_env(text: str) -> dict[str, str]:
    """Every `ENV` of a Dockerfile (both `ENV K=V K2=V2` and `ENV K V`), later ones winning."""
    env: dict[str, str] = {}
    for line in text.replace("\\\n", " ").splitlines():
        words = line.strip().split(None, 1)
        if len(words) != 2 or words[0].upper() != "ENV":
            continue
        tokens = shlex.split(words[1], comments=True)
        if tokens and "=" not in tokens[0]:
            env[tokens[0]] = " ".join(tokens[1:])
            continue
        env.update(token.split("=", 1) for token in tokens if "=" in token)
    return env


def baselines(space: SearchSpace, host: HostFacts, mode: str,
              image_env: Mapping[str, str]) -> list[Baseline]:
    """The tutorial's settings for `mode`, then the image's defaults, mapped into `space`.

    Server mode takes the tutorial's online settings (it answers one pair per request).
    """
    image = _params_from_env(space, host, image_env)
    cores = host.physical_cores
    tutorial_threads = (1, 1, 1) if mode in ("online", "server") else (cores, cores, 1)
    clipped = (_clip(v, space) for v in tutorial_threads)
    tutorial = {**image, **dict(zip(THREAD_PARAMS, clipped, strict=True))}
    return [Baseline("tutorial", tutorial), Baseline("image-defaults", image)]


def _params_from_env(space: SearchSpace, host: HostFacts,
                     env: Mapping[str, str]) -> dict[str, object]:
    """Params for an image env; 0 or unset threads mean every usable logical CPU."""
    env_names = {"omp_num_threads": "OMP_NUM_THREADS",
                 "intra_op_parallelism": "TENSORFLOW_INTRA_OP_PARALLELISM",
                 "inter_op_parallelism": "TENSORFLOW_INTER_OP_PARALLELISM"}
    params: dict[str, object] = {}
    for name, env_name in env_names.items():
        value = int(env.get(env_name) or 0)
        params[name] = _clip(value if value > 0 else host.logical_cpus, space)
    if space.kmp_blocktime:
        blocktime = int(env.get("KMP_BLOCKTIME", "200"))  # 200 ms is OpenMP's own default
        params["kmp_blocktime"] = min(space.kmp_blocktime,
                                      key=lambda choice: abs(choice - blocktime))
    if space.kmp_affinity:
        params["kmp_affinity"] = _affinity_choice(env.get("KMP_AFFINITY", "none"))
    if space.cpuset:
        params["cpuset"] = NO_CPUSET
    if space.batching:
        params.update(next(space.batching.configurations()))  # batching off
    return params


def _affinity_choice(value: str) -> str:
    """The space's KMP_AFFINITY string of the same kind (`verbose` and the like dropped)."""
    kinds = [kind for kind in ("compact", "scatter") if kind in value.split(",")]
    return KMP_AFFINITY_CHOICES[kinds[0] if kinds else "none"]


def _clip(threads: int, space: SearchSpace) -> int:
    return min(max(threads, 1), space.max_threads)
