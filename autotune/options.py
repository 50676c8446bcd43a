"""The options of one tuning run: every `autotune --mode` flag's value and default, once.

`TuningOptions` is what `autotune.tuning.run.run_tuning` takes; the CLI builds its flags'
defaults from these fields (autotune.cli), so a default is written here only. This
module imports nothing heavy: `autotune --help` reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from autotune.modes import Mode, get_mode
from autotune.paths import DEFAULT_IMAGE, DEFAULT_REPORT_DIR, DEFAULT_STORAGE
from autotune.protocols import GRPC

if TYPE_CHECKING:
    from autotune.launch.settings import DeployLimits

Opts = TypeVar("Opts")

#: the latency statistics `--objective` may minimise (online mode)
LATENCY_STATISTICS = ("mean", "p50", "p95", "p99")
#: the `--space` choices: the thread settings, or those plus the OpenMP knobs and pinning
SPACES = ("default", "extended")
#: trials when the space is larger than the budget and `--trials` is not given (a mode
#: may have its own, `Mode.default_trials`)
DEFAULT_BUDGET = 30
#: `--request-timeout`: a few seconds above the slowest request of a default run (a
#: 50,000-pair batch or a 100,000-pair gate request takes 1-3 s on 2 busy cores), so a
#: paused or hung server fails its trial in seconds, not minutes
DEFAULT_REQUEST_TIMEOUT_S = 15.0
#: `--p99-ms`: server mode's p99 latency bound
DEFAULT_P99_MS = 10.0
#: `--batch-size` of the NCF model: the tutorial's batch (a model measured from recorded
#: requests defaults to its largest record's rows)
DEFAULT_BATCH_SIZE = 50_000
#: `--rtol` and `--atol` of the output-agreement gate (autotune.measure.agreement):
#: float32 sums reordered by other thread counts stay well within these
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5
#: `--precision`: measure a trial until the 95% interval of its objective is within 2% of it
DEFAULT_PRECISION = 0.02
#: `--confirm-precision`: the race stops when the survivors are tied within 2%
RACING_PRECISION = 0.02
#: seconds between a running trial's heartbeats, and the silence after which it is
#: failed and its configuration queued again (autotune.fleet)
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
#: the share of the CPU other processes (or steal) may take before the report warns that
#: the answer is for a host that busy, and before the start is announced as busy
BUSY_SHARE = 0.10
#: `--quiet-wait`: seconds a busy measurement waits for the host to calm (with
#: --max-foreign-cpu)
QUIET_WAIT_S = 60.0
#: `--warm-start`: enqueue the best configurations of sibling host classes (same mode and
#: model) in the storage, none, or a study's name
WARM_START_AUTO, WARM_START_NONE = "auto", "none"
#: `autotune check --confirm-budget`: seconds of racing the recommendation against the
#: deployed settings and the baselines
CHECK_BUDGET_S = 120.0
#: the largest `--seed`: numpy, TensorFlow (int64) and Optuna's sampler (seeded with
#: `--seed` plus the trial count, within numpy's 32 bits) all take it
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class LatencyPolicy:
    """How long an online measurement runs: windows until the interval is tight, within caps."""

    warmup_requests: int = 50
    window: int = 200
    min_windows: int = 3
    precision: float = DEFAULT_PRECISION
    max_requests: int = 20_000
    max_seconds: float = 10.0


@dataclass(frozen=True)
class RunSettings:
    """How long one LoadGen run lasts and how it is judged (server mode, measure/loadgen.py)."""

    #: the p99 latency bound, in milliseconds
    bound_ms: float = DEFAULT_P99_MS
    #: each run lasts at least this long...
    min_duration_s: float = 2.0
    #: ...and issues at least this many queries (early stopping needs several hundred)
    min_queries: int = 1024
    #: an overloaded run stops issuing after this long (its backlog still drains); at a
    #: low rate, long enough for twice the minimum query count
    max_duration_s: float = 10.0
    #: deadline of each Predict; a late answer counts as an error
    request_timeout_s: float = 10.0
    seed: int = 0


@dataclass(frozen=True)
class PeakPolicy:
    """Where the rate search starts, where it gives up, and how close it brackets the peak
    (server mode, autotune.measure.peak)."""

    start_qps: float = 200.0
    min_qps: float = 50.0
    max_qps: float = 100_000.0
    precision: float = 0.05
    max_runs: int = 14
    #: a miss at the start rate or while ramping up is run again (a third time if the
    #: two disagree) before it counts: one unlucky run otherwise halves the answer
    confirm_misses: bool = True
    #: the factor the rate ramps up (or down) by until its verdict changes
    step: float = 2.0
    #: ramping up, square the factor after every step that met the bound (5%, 10%, 22%,
    #: 48%...): a refinement from a stale start reaches the peak in a few runs, not one
    #: run per 5%
    gallop: bool = False

    def around(self, rate: float) -> "PeakPolicy":
        """A short refinement of a peak already found near `rate` (a server-mode racing
        round, autotune.measure.peak_rounds): start at `rate`, first step by the
        precision, so a peak that has not moved is bracketed in three runs (a hit, then a
        miss run twice), and gallop up from there, so a start far below the peak costs a
        few runs more, not one per 5% (then bisect, as a search does). Misses at the start
        and stepping up are confirmed as in a search: below the peak one scheduling
        hiccup fails a run, above it every run fails, so false misses are common and
        false hits rare, and an unconfirmed walk up stops at its first false miss."""
        return dataclasses.replace(self, start_qps=rate, step=1 + self.precision, gallop=True)


@dataclass(frozen=True)
class TuningOptions:
    """Everything one tuning run needs; mirrors the `autotune --mode` flags.

    `mode` may be given by name (`"online"`); it is always a `Mode` once constructed.
    """

    mode: Mode
    server: str = "auto"
    #: what the trials are measured over: TF Serving's gRPC or REST API (autotune.protocols)
    protocol: str = GRPC
    image: str = DEFAULT_IMAGE
    start_timeout: float = 120.0
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    trials: int | None = None
    timeout: float | None = None
    space: str = "default"
    max_threads: int | None = None
    objective: str = "mean"
    #: rows per batch-mode request; None: DEFAULT_BATCH_SIZE, or the largest record's
    batch_size: int | None = None
    iterations: int = 40
    min_hr: float = 0.22
    min_ndcg: float = 0.11
    #: a TFRecord file of PredictionLog requests to measure (autotune.measure.records);
    #: None: the NCF eval set, or a user's model's own warmup records
    requests: Path | None = None
    #: the output-agreement gate's tolerances (models measured from recorded requests)
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    #: the target of online and batch trials: the objective's 95% interval within this share
    precision: float = DEFAULT_PRECISION
    accuracy_users: int | None = None
    #: resident memory limit of a trial's servers, all instances together (None: none)
    max_memory_mb: float | None = None
    #: the deployment's limits every trial server runs under (`DeployLimits`; None: none):
    #: CPUs of its CFS quota, the CPUs it may run on, its memory limit in MB
    cpus: float | None = None
    cpuset_cpus: str | None = None
    memory: float | None = None
    #: server mode, right-sizing: the rate the smallest CPU limit must hold under the bound
    target_qps: float | None = None
    #: finalists raced besides the baselines; None: the mode's (`Mode.racing_top`)
    confirm_top: int | None = None
    #: seconds the racing may take (0: no racing); None: the mode's (`Mode.racing_budget_s`)
    confirm_budget: float | None = None
    confirm_precision: float = RACING_PRECISION
    #: server mode: the p99 latency bound in milliseconds
    p99_ms: float = DEFAULT_P99_MS
    dataset: str = "synthetic"
    data_dir: Path | None = None
    model_dir: Path | None = None
    epochs: int | None = None
    seed: int = 0
    download: bool = False
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    report_dir: Path = DEFAULT_REPORT_DIR
    allow_concurrent: bool = False
    #: group this host by hand instead of by its hardware (autotune.fleet.host_class)
    host_class: str | None = None
    #: where a new class's first configurations after the baselines come from
    #: (autotune.tuning.warm_start): `auto` (every sibling class), `none`, or a study name
    warm_start: str = WARM_START_AUTO
    #: Optuna heartbeat: a trial whose worker is silent for `grace_period` s is failed
    #: and its configuration queued again (short values only in tests)
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S
    grace_period: int = GRACE_PERIOD_S
    #: a measurement while other processes (or steal) took more than this share of the
    #: CPU waits up to `quiet_wait` s for the host to calm and is measured once more
    #: (None: measure whatever the load; the load is recorded either way)
    max_foreign_cpu: float | None = None
    quiet_wait: float = QUIET_WAIT_S
    quiet: bool = False
    #: how long an online measurement runs (no flag: the default suits every host)
    latency_policy: LatencyPolicy = LatencyPolicy()
    #: server mode: each LoadGen run's length (its bound is `p99_ms`) and the rate search
    loadgen_run: RunSettings = RunSettings()
    peak_policy: PeakPolicy = PeakPolicy()

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", get_mode(self.mode))

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "TuningOptions":
        return from_flags(cls, args)

    @property
    def stored_objective(self) -> str:
        """The objective as stored in the study: the latency statistic, throughput, or the
        rate under the p99 bound."""
        return self.mode.stored_objective(self.objective, self.p99_ms)

    @property
    def racing_top(self) -> int:
        """How many of the search's best configurations are raced: as given, else the mode's."""
        return self.confirm_top or self.mode.racing_top

    @property
    def racing_budget(self) -> float:
        """Seconds the racing may take (0: none): as given, else the mode's."""
        return self.mode.racing_budget_s if self.confirm_budget is None else self.confirm_budget

    @property
    def budget(self) -> int | None:
        """`--trials`, else the mode's default budget (None: decided by the space's size)."""
        return self.trials or self.mode.default_trials

    @property
    def gate_users(self) -> int | None:
        """Users the accuracy gate scores: `--accuracy-users`, else the mode's (None: all)."""
        return self.accuracy_users or self.mode.accuracy_users

    @property
    def deploy_limits(self) -> "DeployLimits":
        """`--cpus`, `--cpuset-cpus`, `--memory` as the limits of every trial server."""
        from autotune.launch.settings import DeployLimits

        return DeployLimits(self.cpus, self.cpuset_cpus, self.memory)

    @property
    def bounded_run(self) -> RunSettings:
        """The LoadGen run settings with this run's `--p99-ms` as their bound."""
        return dataclasses.replace(self.loadgen_run, bound_ms=self.p99_ms)


@dataclass(frozen=True)
class CheckOptions:
    """`autotune check`: a stored study's recommendation re-measured on this host against
    the settings deployed now (autotune.check). What is measured, and how, is the
    study's; a field left None is the study's too."""

    #: the `.env` file of the settings deployed now (autotune.report.env_file)
    env_file: Path
    storage: str = DEFAULT_STORAGE
    #: None: the storage's only study of autotune's
    study_name: str | None = None
    confirm_budget: float = CHECK_BUDGET_S
    #: where the verdict goes as a JUnit XML test case (None: nowhere)
    junit_xml: Path | None = None
    #: the launcher kind, image and model to measure with (None: the study's)
    server: str | None = None
    image: str | None = None
    model_dir: Path | None = None
    data_dir: Path | None = None
    quiet: bool = False


def from_flags(cls: type[Opts], args: argparse.Namespace) -> Opts:
    """Options of dataclass `cls` from the parsed flags of its fields' names."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def default(name: str) -> Any:
    """The default of the `TuningOptions` field `name` (the CLI's flag default)."""
    return next(f.default for f in fields(TuningOptions) if f.name == name)
