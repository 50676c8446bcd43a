"""The trial and study schema: every attr autotune keeps in an Optuna storage, and its helpers.

A study is the whole record of a run: what a later `autotune report`, a resumed run or
optuna-dashboard knows is what these attrs say. Their names live here only (docs/DESIGN.md
lists them with their meaning); the helpers below write and read them, so the tuner,
the racing and the report agree on what "feasible", "the same
configuration" and "better" mean.

Feasibility is Optuna's: a trial is feasible when every constraint is <= 0
(`trial.set_constraint`), which TPE and `study.best_trial` honour by themselves.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Callable, Iterable, Mapping, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.modes import MODES, Mode, get_mode
from autotune.protocols import GRPC


class StudyAttr(StrEnum):
    """Study user attrs, written by `autotune.tuning.study.open_study` (and the racing)."""

    MODE = "mode"  #: the `Mode` name
    OBJECTIVE = "objective"  #: `Mode.stored_objective`: mean/p50/p95/p99 or throughput
    SERVER = "server"  #: the launcher kind: docker or local
    PROTOCOL = "protocol"  #: what the trials were measured over: grpc or rest
    SPACE = "space"  #: default or extended
    BATCH_SIZE = "batch_size"  #: samples per request (1 unless the mode is batched)
    MIN_HR = "min_hr"  #: the HR@10 floor
    MIN_NDCG = "min_ndcg"  #: the NDCG@10 floor
    HOST = "host"  #: `HostFacts.as_dict()`
    IMAGE = "image"  #: the serving image (docker) as given
    LAUNCHER = "launcher"  #: `Launcher.describe()`
    MODEL_DIR = "model_dir"  #: the model base path, absolute
    P99_MS = "p99_ms"  #: server mode: the p99 latency bound in ms
    #: `--max-memory-mb`, the limit of a trial's servers' resident memory (None: none)
    MAX_MEMORY_MB = "max_memory_mb"
    #: a server that listened beyond this host (`Launcher.exposure`), named in the report
    EXPOSURE = "exposure"
    HOST_CLASS = "host_class"  #: `HostClass.as_attr()` (autotune.fleet.host_class)
    #: the shared budget being spent: {"number": n, "trials": t} (autotune.fleet.workers)
    BUDGET = "budget"
    #: the race's record, `RaceRecord.to_dict()` (autotune.racing): the latest race
    RACING = "racing"
    #: prefix of each worker's own race, `racing:<hostname:pid>` (`racing_attr`): in a
    #: fleet every worker races the class's finalists on its own host, and the report
    #: pools the races (autotune.racing.record.pooled)
    RACING_OF = "racing:"
    #: the target precision of each trial's measurement (`--precision`)
    PRECISION = "precision"
    #: the deployment limits every trial server ran under, `DeployLimits.as_dict()`
    #: (`--cpus`, `--cpuset-cpus`, `--memory`; each None where not given)
    LIMITS = "limits"
    #: server mode, right-sizing: `--target-qps` (absent: not right-sized)
    TARGET_QPS = "target_qps"
    #: a model measured from recorded requests (autotune.measure.records): the served
    #: name (its folder's), the requests file (`Records.describe()`), the output-agreement
    #: gate's tolerances and where its reference came from
    MODEL_NAME = "model_name"
    REQUESTS = "requests"
    RTOL = "rtol"
    ATOL = "atol"
    REFERENCE = "reference"


def racing_attr(worker: str) -> str:
    """The study attr holding the race run by `worker` (`hostname:pid`)."""
    return f"{StudyAttr.RACING_OF}{worker}"


#: study attrs that must match for a resumed study's trials to be comparable
COMPARABLE_STUDY_ATTRS = (StudyAttr.MODE, StudyAttr.OBJECTIVE, StudyAttr.SERVER,
                          StudyAttr.PROTOCOL, StudyAttr.SPACE, StudyAttr.BATCH_SIZE,
                          StudyAttr.MIN_HR, StudyAttr.MIN_NDCG, StudyAttr.P99_MS,
                          StudyAttr.MAX_MEMORY_MB, StudyAttr.LIMITS, StudyAttr.TARGET_QPS,
                          StudyAttr.RTOL, StudyAttr.ATOL)
#: what a study from before an attr was recorded had (all were measured over gRPC then),
#: as the plain value a stored attr holds
STUDY_ATTRS_BEFORE_RECORDED = {StudyAttr.PROTOCOL: GRPC.value, StudyAttr.LIMITS: {
    "cpus": None, "cpuset_cpus": None, "memory_mb": None}}


class TrialAttr(StrEnum):
    """Trial user attrs (the measurement's own, e.g. `latency_ms_p99`, come from the
    results' `attrs()` in autotune.measure)."""

    BASELINE = "baseline"  #: the baseline's name (tutorial, image-defaults) when enqueued as one
    #: a configuration another host class found (autotune.tuning.warm_start), enqueued
    #: after the baselines: `{"study": its study's name, "trial": its trial number there}`
    WARM_START_FROM = "warm_start_from"
    STARTUP_S = "startup_s"  #: seconds from start to model AVAILABLE
    HR = "hr"  #: HR@10 through the server
    NDCG = "ndcg"  #: NDCG@10 through the server
    ACCURACY_OK = "accuracy_ok"  #: whether both floors were met
    #: why not, when a floor, the output agreement or the memory limit was missed
    INFEASIBLE = "infeasible"
    #: the resident memory of all the trial's server instances together, in MiB
    RSS_MB = "rss_mb"
    #: with several instances: each one's CPU list, and NUMA nodes where bound
    CPUSETS = "cpusets"
    CPUSET_MEMS = "cpuset_mems"
    FAILURE = "failure"  #: why a FAIL trial failed
    #: a trial not measured because it repeated a measured configuration: that trial's
    #: number (autotune.tuning.repeats)
    DUPLICATE_OF = "duplicate_of"
    #: the budget number a trial spends (autotune.fleet.workers)
    BUDGET = "budget"
    WORKER = "worker"  #: `host:pid` of the tuner that measured it (autotune.host.facts.worker_id)
    #: server mode (autotune.measure.peak): the objective, the rates tried (`RunResult.row()`s)
    #: and the folder of LoadGen's logs
    QPS_AT_SLO = "qps_at_slo"
    RATES_TRIED = "rates_tried"
    LOADGEN_LOGS = "loadgen_logs"
    #: which LoadGen client processes sent the load (`ClientProgram.describe()`: native,
    #: or python and why)
    LOADGEN_CLIENT = "loadgen_client"
    #: server mode, a trial that missed the bound even at the lowest rate: its p99 there
    MISSED_P99_MS = "missed_p99_ms"
    #: online and batch (autotune.measure): the 95% interval's half-width relative to the
    #: objective (null: no interval), and whether it reached `--precision` before a cap
    PRECISION = "precision"
    CONVERGED = "converged"
    #: what else ran while the trial measured (autotune.host.load): other processes' CPU
    #: and the hypervisor's steal, shares (0-1) of the CPU time of the measurement
    FOREIGN_CPU = "foreign_cpu"
    STEAL = "steal"
    #: with --max-foreign-cpu: the measurement kept was still busier than the bound
    BUSY_HOST = "busy_host"
    #: the CFS quota's effect on the trial's servers while it measured (their cgroups'
    #: `cpu.stat`, autotune.host.cgroups): throttled periods / periods, and the seconds
    #: they waited; absent where no server ran under a quota
    THROTTLED_RATIO = "throttled_ratio"
    THROTTLED_S = "throttled_s"
    #: with --max-foreign-cpu, a trial measured twice (the first on a busy host): each
    #: measurement's `{"value", "foreign_cpu", "steal"}`, the kept one last
    LOAD_MEASUREMENTS = "load_measurements"
    #: a trial measured twice: the first intermediate step of the measurement kept (each
    #: measurement's windows are reported, one after the other; the pruner judges this one)
    MEASURED_FROM_STEP = "measured_from_step"
    #: the output-agreement gate (autotune.measure.agreement): the largest absolute and
    #: relative deviation of the outputs from the reference, and whether they agree
    MAX_ABS_ERR = "max_abs_err"
    MAX_REL_ERR = "max_rel_err"
    AGREEMENT_OK = "agreement_ok"


#: trial user attrs given when a configuration is planned (enqueued), which a retry of it
#: keeps; every other is its attempt's own (a retry that completes carries no `failure`)
PLANNED_TRIAL_ATTRS = (TrialAttr.BASELINE, TrialAttr.WARM_START_FROM)
#: the trial system attr optuna-dashboard 0.21 greys infeasible trials by
DASHBOARD_CONSTRAINTS = "constraints"
#: the trial system attr where Optuna keeps an enqueued trial's params
FIXED_PARAMS = "fixed_params"
#: the trial system attr where Optuna's RetryHeartbeatStaleTrialCallback lists the
#: failed trials a re-queued one retries
RETRY_HISTORY = "retry_history"


def written_by_autotune(study_attrs: Mapping[str, Any]) -> bool:
    """Whether a study with these user attrs is one autotune ran (it records its mode
    first); a storage may also hold studies of other programs, which have no report."""
    return study_attrs.get(StudyAttr.MODE) in MODES


def study_mode(study: optuna.Study) -> Mode:
    """The `Mode` a study was measured in."""
    return get_mode(study.user_attrs[StudyAttr.MODE])


class Constraint(Protocol):
    """A check a trial must pass to be feasible (the accuracy floors, the output agreement,
    the memory limit)."""

    def attrs(self) -> dict[str, Any]:
        """The trial user attrs that record what was checked (`TrialAttr` names)."""
        ...

    def constraints(self) -> dict[str, float]:
        """Optuna constraint values by name: <= 0 is met."""
        ...

    def shortfall(self) -> str:
        """Why the trial is infeasible, or "" when every constraint is met."""
        ...


def record_constraints(trial: optuna.Trial, *checks: Constraint | None) -> None:
    """Store each check's attrs and its constraints (None: not checked): a trial short of
    any is infeasible, with the reasons in its `infeasible` attr.

    Optuna 5 reads `trial.set_constraint` (TPE and `best_trial` skip infeasible trials);
    optuna-dashboard 0.21 greys only trials with the older `constraints` list system attr,
    so the same values are written there too.
    """
    constraints: dict[str, float] = {}
    reasons = []
    for check in filter(None, checks):
        for key, value in check.attrs().items():
            trial.set_user_attr(key, value)
        constraints.update(check.constraints())
        reasons.append(check.shortfall())
    if any(reasons):
        trial.set_user_attr(TrialAttr.INFEASIBLE, "; ".join(filter(None, reasons)))
    for name, value in constraints.items():
        trial.set_constraint(name, value)
    trial.storage.set_trial_system_attr(trial._trial_id, DASHBOARD_CONSTRAINTS,
                                        list(constraints.values()))


def record_failure(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """End `trial` as FAIL with its reason."""
    trial.set_user_attr(TrialAttr.FAILURE, reason)
    study.tell(trial, state=TrialState.FAIL)


def is_duplicate(trial: FrozenTrial) -> bool:
    """Whether `trial` was skipped, not measured, as a repeat of a measured configuration."""
    return TrialAttr.DUPLICATE_OF in trial.user_attrs


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether the trial met every constraint, the accuracy floors and the memory limit
    (Optuna: all constraints <= 0)."""
    return all(value <= 0 for value in trial.constraints.values())


def params_key(params: Mapping[str, Any]) -> tuple:
    """A hashable key of a configuration, the same whatever the params' order."""
    return tuple(sorted(params.items()))


def found_values(trials: Iterable[FrozenTrial]) -> Callable[[Mapping[str, Any]], float | None]:
    """What a configuration's complete trials found (the last one's value), by params;
    None for one never measured (a server-mode race refines its peak from there,
    autotune.measure.peak_rounds)."""
    values = {params_key(trial.params): float(trial.value) for trial in trials
              if trial.value is not None}
    return lambda params: values.get(params_key(params))


def planned_params(trial: FrozenTrial) -> dict[str, Any]:
    """The params a trial measured, or will measure when it is still WAITING (enqueued)."""
    return trial.system_attrs.get(FIXED_PARAMS, trial.params)


def better(study: optuna.Study, a: float, b: float) -> bool:
    """Whether value `a` is strictly better than `b` in the study's direction."""
    if study.direction == optuna.study.StudyDirection.MINIMIZE:
        return a < b
    return a > b


def ranked(study: optuna.Study, trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """`trials` (COMPLETE ones) best first by the study's direction; ties keep their order."""
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda trial: trial.value, reverse=maximize)


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's COMPLETE trials (measured, feasible or not)."""
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_feasible_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best feasible trial of the search (Optuna's `best_trial`), None when none is."""
    try:
        return study.best_trial
    except ValueError:  # no COMPLETE trial, or none feasible
        return None


def instances_of(params: Mapping[str, Any]) -> int:
    """The server instance count of a configuration (1 where it was not searched)."""
    return int(params.get("instances", 1))


def searched_instances(trials: Iterable[FrozenTrial]) -> bool:
    """Whether these trials come from a study that searched `instances`."""
    return any("instances" in trial.params for trial in trials)


def best_single_instance_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best feasible trial of one server instance (`instances` 1 or not searched)."""
    single = [t for t in complete_trials(study)
              if is_feasible(t) and instances_of(t.params) == 1]
    return ranked(study, single)[0] if single else None
