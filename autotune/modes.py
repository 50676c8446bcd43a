"""What a study optimises: one `Mode` value per `--mode`, like Optuna's `StudyDirection`.

A mode fixes the metric a trial reports, its unit and how it is printed, the study's
direction, the objective stored with the study, whether requests carry `--batch-size`
samples, the NCF tutorial's thread recommendation (the `tutorial` baseline), whether
the search space has the batching knobs, the instance counts and a `--p99-ms` bound, the
protocols it can measure over, and the defaults of the budget, the finalists raced and the
accuracy gate's sample. Code
that differs by mode reads these fields instead of testing the mode's name; what a mode
measures is `autotune.measure.workload.MEASUREMENTS[mode.name]`.

A new mode is one new `Mode` value in `MODES` plus its measurement (see docs/DESIGN.md).
This module imports nothing heavy: the CLI reads it to build `--mode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from autotune.errors import UsageError
from autotune.protocols import GRPC, PROTOCOLS

Direction = Literal["minimize", "maximize"]


def _one_thread(cores: int) -> tuple[int, int, int]:
    return (1, 1, 1)


def _every_core(cores: int) -> tuple[int, int, int]:
    return (cores, cores, 1)


@dataclass(frozen=True)
class Mode:
    """One way of measuring a configuration, and everything that follows from it."""

    #: the `--mode` value, stored as the study's `mode` attr
    name: str
    #: one line for `--help`
    summary: str
    #: the study's metric name (Optuna `set_metric_names`, the report's objective metric)
    metric: str
    #: the unit printed after a value
    unit: str
    #: Optuna's study direction, as `optuna.create_study` takes it
    direction: Direction
    #: the stored objective, formatted with `p99_ms`; None: the `--objective` statistic
    #: (mean, p50, ...) is stored
    fixed_objective: str | None
    #: whether a request carries `--batch-size` samples (else one)
    batched: bool
    #: the tutorial's (OMP_NUM_THREADS, intra-op, inter-op) for a host of `cores` cores
    tutorial_threads: Callable[[int], tuple[int, int, int]]
    #: printf format of a bare value (`1.234`, `1,234,567`)
    number_format: str
    #: the trial attr benchmarks compare runs by: the median latency, or the throughput
    robust_attr: str
    #: whether a trial is measured under the `--p99-ms` latency bound (stored with the study)
    bounded: bool = False
    #: whether the space adds TF Serving's batching knobs (autotune.search.batching_space)
    searches_batching: bool = False
    #: whether the space adds `instances`, several pinned servers sharing the load
    #: (autotune.host.cpusets); not online, where one request at a time meets one server
    searches_instances: bool = False
    #: trials when `--trials` is not given and the space is larger; None: the general
    #: default (autotune.options.DEFAULT_BUDGET)
    default_trials: int | None = None
    #: the search's best configurations raced with the baselines when not given. Five,
    #: because a search trial is one measurement of one restart: on this kind of shared
    #: host the online search's top three missed the configuration the side-by-side
    #: grid found fastest in three runs out of three (bench/answer.py, 2026-11-29: four
    #: configurations within 3% of each other, trials spread by 15-20%), while a race
    #: drops the clearly slower finalists within a few rounds
    racing_top: int = 5
    #: seconds of racing when `--confirm-budget` is not given. 240 s buys 8-12 rounds of
    #: the default online and batch finalists on a 2-core host (a round restarts every
    #: finalist: 20-30 s), past the three from which the race drops the clearly slower,
    #: and keeps a default run within 6 minutes there, the search included
    #: (BENCHMARKS.md, `tune_min`)
    racing_budget_s: float = 240.0
    #: users the accuracy gate scores when `--accuracy-users` is not given (None: all)
    accuracy_users: int | None = None
    #: the `--protocol` values the mode can measure over (autotune.protocols)
    protocols: tuple[str, ...] = PROTOCOLS

    def stored_objective(self, statistic: str, p99_ms: float) -> str:
        """The objective as the study stores it, for `--objective` and `--p99-ms`."""
        if self.fixed_objective is None:
            return statistic
        return self.fixed_objective.format(p99_ms=p99_ms)

    def batch_size(self, requested: int) -> int:
        """Samples per request for `--batch-size requested`."""
        return requested if self.batched else 1

    def format_number(self, value: float) -> str:
        """A value without its unit: `1.234` (ms) or `1,234,567` (samples/s)."""
        return format(value, self.number_format)

    def format(self, value: float) -> str:
        """A value with its unit: `1.234 ms` or `1,234,567 samples/s`."""
        return f"{self.format_number(value)} {self.unit}"

    def better(self, a: float, b: float) -> bool:
        """Whether `a` is strictly better than `b` in this mode's direction."""
        return a < b if self.direction == "minimize" else a > b

    def speedup(self, best: float, baseline: float) -> float:
        """How many times better `best` is than `baseline` (> 1 = better)."""
        return speedup(self.direction, best, baseline)


def speedup(direction: str, best: float, baseline: float) -> float:
    """How many times better `best` is than `baseline` in `direction` (> 1 = better)."""
    return baseline / best if direction == "minimize" else best / baseline


ONLINE = Mode(name="online", summary="batch-1 latency", metric="latency_ms", unit="ms",
              direction="minimize", fixed_objective=None, batched=False,
              tutorial_threads=_one_thread, number_format=".3f", robust_attr="latency_ms_p50")
BATCH = Mode(name="batch", summary="batch throughput", metric="throughput_sps",
             unit="samples/s", direction="maximize", fixed_objective="throughput", batched=True,
             tutorial_threads=_every_core, number_format=",.0f",
             robust_attr="throughput_sps", searches_instances=True)
#: server-mode trials each search a peak rate (~10 LoadGen runs): a smaller budget and
#: fewer finalists keep a default run under 20 minutes on a small host, and its racing
#: keeps 360 s (a round refines each finalist's peak in a few LoadGen runs: ~60 s a round
#: of three finalists on a loaded 2-core host, so 360 s buys five); its gate scores a
#: seeded sample of users (with batching on, its requests are cut to max_batch_size).
#: One pair per request, so the tutorial's online threads. LoadGen's adapter sends gRPC
#: only (autotune.measure.loadgen), so the mode measures gRPC only.
SERVER = Mode(name="server", summary="the most requests/s with p99 latency under --p99-ms "
                                     "(MLPerf LoadGen)",
              metric="qps_at_slo", unit="requests/s", direction="maximize",
              fixed_objective="qps at p99 <= {p99_ms:g} ms", batched=False,
              tutorial_threads=_one_thread, number_format=",.0f", robust_attr="qps_at_slo",
              bounded=True, searches_batching=True, searches_instances=True, default_trials=14,
              racing_top=2, racing_budget_s=360.0, accuracy_users=500, protocols=(GRPC,))

#: every mode by name, in `--mode` order
MODES: dict[str, Mode] = {mode.name: mode for mode in (ONLINE, BATCH, SERVER)}


def get_mode(mode: Mode | str) -> Mode:
    """The `Mode` named `mode` (a `Mode` is returned as is); `UsageError` when unknown."""
    if isinstance(mode, Mode):
        return mode
    try:
        return MODES[mode]
    except KeyError:
        raise UsageError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}") from None


def _reporting(metric: str) -> Mode | None:
    return next((mode for mode in MODES.values() if mode.metric == metric), None)


def mode_of_metric(metric: str) -> Mode:
    """The mode whose study reports `metric` (how a stored study's values are printed)."""
    mode = _reporting(metric)
    if mode is None:
        raise ValueError(f"no mode reports the metric {metric!r}")
    return mode


def format_metric(metric: str, value: float, unit: bool = True) -> str:
    """`value` as the mode reporting `metric` prints it (`unit=False`: without its unit);
    a bare `1,234` for a metric no mode reports (a study autotune did not make)."""
    mode = _reporting(metric)
    if mode is None:
        return format(value, ",.0f")
    return mode.format(value) if unit else mode.format_number(value)


def metric_unit(metric: str) -> str:
    """The unit of `metric` (`ms`, ...); empty for a metric no mode reports."""
    mode = _reporting(metric)
    return mode.unit if mode else ""
