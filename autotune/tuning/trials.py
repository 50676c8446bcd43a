"""The trials of a run: one configuration measured, gated and recorded, and the loop.

`TrialObjective` is Optuna's objective (ask-and-tell): restart the server(s) with the
trial's settings, measure the mode's objective, check the gate through the same server
(HR/NDCG, or the outputs' agreement with the reference: autotune.tuning.traffic),
record the attrs and the constraints (autotune.record.schema): the servers' CFS
throttling over the measurement where they ran under a quota, and with `--target-qps`
whether the peak held it (autotune.record.target). It also gives the
racing its rounds (side by side, in the mode's blocks). `run_trials` claims trials while
the class's budget lasts, each under a heartbeat: a MeasurementError fails the trial and
the run goes on (three in a row end it; a server-mode trial that missed the bound even at
the lowest rate is a finding and does not count); Ctrl-C fails it "interrupted". A trial
that repeats a measured configuration is skipped, not measured (autotune.tuning.repeats);
one the study's pruner gives up on while it measures (autotune.search.pruning) ends
PRUNED, before its gate.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator, TypeVar

import optuna
from optuna.trial import TrialState

from autotune.errors import (
    AutotuneError,
    BoundMissedError,
    MeasurementError,
)
from autotune.fleet import (
    Coordinator,
    Heartbeat,
)
from autotune.host.cgroups import Throttling, throttling_of
from autotune.host.load import LoadMeter, Measured, QuietPolicy, measure_quietly
from autotune.launch.base import Launcher
from autotune.launch.group import InstanceGroup
from autotune.launch.settings import ServerSettings
from autotune.measure.blocks import ValueOf, racing_blocks
from autotune.measure.running import RunningServer, running_server
from autotune.measure.side_by_side import MemoryOf, SideBySide
from autotune.measure.workload import Workload
from autotune.modes import Mode
from autotune.options import TuningOptions
from autotune.progress import Progress
from autotune.racing.race import MeasureRound
from autotune.record.memory import MemoryCheck
from autotune.record.schema import (
    StudyAttr,
    TrialAttr,
    best_feasible_trial,
    record_constraints,
    record_failure,
)
from autotune.record.storage import is_storage_failure
from autotune.record.target import TargetCheck
from autotune.report.gate import gate_values
from autotune.search.space import (
    SearchSpace,
    describe_params,
    settings_from_params,
)
from autotune.tuning.repeats import INTERNAL_ERROR, INTERRUPTED, measured_twin, skip_repeat
from autotune.tuning.traffic import Gate

MAX_FAILURES_IN_A_ROW = 3
#: seconds for the CFS period a measurement ended in to end too (autotune.host.cgroups:
#: a period is counted when it ends; the default period is 100 ms)
PERIOD_SETTLE_S = 0.2
T = TypeVar("T")


class StudyAbortedError(AutotuneError):
    """Too many trials failed in a row: the server or its settings are broken."""


class TrialObjective:
    """Measures one configuration: server restart, objective, gate, trial record."""

    def __init__(self, space: SearchSpace, launcher: InstanceGroup, workload: Workload,
                 gate: Gate, progress: Progress, options: TuningOptions) -> None:
        self.space = space
        self.launcher = launcher
        self.workload = workload
        self.gate = gate
        self.progress = progress
        self.options = options
        #: what else runs while a trial measures: everything but this tuner and its servers
        self.meter = LoadMeter(own_pids=launcher.server_pids,
                               stopped_cpu_s=launcher.stopped_cpu_s)
        self.quiet = QuietPolicy(options.max_foreign_cpu, options.quiet_wait)

    def __call__(self, trial: optuna.Trial) -> float:
        """Measure the trial's settings, record its attrs and constraints; its objective value."""
        params = self.space.suggest(trial)
        baseline = trial.user_attrs.get(TrialAttr.BASELINE)
        self.progress.step(f"trial {trial.number} {describe_params(params)}"
                           + (f" ({baseline})" if baseline else ""))
        settings = settings_from_params(params)
        with self._running(settings) as server:
            trial.set_user_attr(TrialAttr.STARTUP_S, round(server.startup_s, 3))
            if self.launcher.exposure:  # named in the report (autotune.launch.base)
                trial.study.set_user_attr(StudyAttr.EXPOSURE, self.launcher.exposure)
            throttled: list[Throttling] = []
            reports = _Reports(trial)
            measured = measure_quietly(
                lambda: self._throttle_metered(throttled, lambda: self.workload.measure(
                    server.clients, self.progress.phase, server.in_flight,
                    reports.next_measurement())),
                self.meter, self.quiet, self.progress.phase)
            value, attrs = measured.result
            self.progress.phase("gate")
            checked = self.gate.check(server.client, settings.batching and
                                      settings.batching.max_batch_size)
            memory = self._memory()
        for key, attr in {**attrs, **_load_attrs(measured), **_throttle_attrs(throttled)}.items():
            trial.set_user_attr(key, attr)
        for name, values in ((TrialAttr.CPUSETS, self.launcher.cpusets),
                             (TrialAttr.CPUSET_MEMS, self.launcher.cpuset_mems)):
            if any(values):
                trial.set_user_attr(name, values)
        target = (TargetCheck(value, self.options.target_qps)
                  if self.options.target_qps is not None else None)
        record_constraints(trial, checked, memory, target)
        return value

    def _throttle_metered(self, windows: list[Throttling], measure: Callable[[], T]) -> T:
        """`measure()`, with its servers' CFS throttling over it appended to `windows`.

        The kernel counts a period when it ends, so a measurement shorter than a period
        (100 ms by default: a small batch on a fast host) would see none; the counters
        are read once the period the measurement ended in is over too."""
        before = throttling_of(self.launcher.server_pids())
        result = measure()
        if before.periods:  # the servers run under a quota
            time.sleep(PERIOD_SETTLE_S)
        windows.append(throttling_of(self.launcher.server_pids()) - before)
        return result

    def _memory(self) -> MemoryCheck | None:
        """The running servers' memory against the limit; None when unknown and unlimited."""
        rss_mb = self.launcher.rss_mb()
        if rss_mb is None and self.options.max_memory_mb is not None:
            raise MeasurementError(f"cannot read the memory of the {self.launcher.kind} server(s), "
                                   "which --max-memory-mb needs")
        return None if rss_mb is None else MemoryCheck(rss_mb, self.options.max_memory_mb)

    @contextmanager
    def racing_rounds(self, make_launcher: Callable[[], Launcher], memory_of: MemoryOf,
                      found: ValueOf) -> Iterator[tuple[MeasureRound, LoadMeter]]:
        """How the race measures a round, and the meter of its rounds: every finalist's
        server at once, visited in turn (autotune.measure.side_by_side, on launchers
        `make_launcher` builds, in groups that fit in memory by what `memory_of` says
        each configuration took), in blocks of the mode (autotune.measure.blocks: server
        mode refines the peak its search trials `found`)."""
        blocks = racing_blocks(self.workload, found, progress=self.progress)
        with SideBySide(make_launcher, blocks, self.options.start_timeout,
                        self.options.request_timeout, self.options.protocol, self.progress,
                        memory_of=memory_of) as side_by_side:
            yield side_by_side, LoadMeter(own_pids=side_by_side.server_pids,
                                          stopped_cpu_s=side_by_side.stopped_cpu_s)

    def _running(self, settings: ServerSettings) -> ContextManager[RunningServer]:
        return running_server(self.launcher, settings, self.launcher.model.name,
                              self.options.start_timeout,
                              self.progress.phase, self.options.request_timeout,
                              self.options.protocol)


class _Reports:
    """Reports each value a trial's measurements hear to the trial, one step each, and
    raises `optuna.TrialPruned` once the study's pruner (autotune.search.pruning) gives up
    on it. A second measurement (a busy host's second look, autotune.host.load) goes on
    from the next step, so its windows are kept beside the first's rather than dropped as
    steps already reported, and records that step (`TrialAttr.MEASURED_FROM_STEP`): the
    pruner judges the measurement that will be kept, not the busy one."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.step = 0

    def next_measurement(self) -> Callable[[float], None]:
        """The reporter of the trial's next measurement."""
        if self.step:
            self.trial.set_user_attr(TrialAttr.MEASURED_FROM_STEP, self.step)
        return self.report

    def report(self, value: float) -> None:
        self.trial.report(value, self.step)
        self.step += 1
        if self.trial.should_prune():
            raise optuna.TrialPruned()


def _load_attrs(measured: Measured[tuple[float, dict[str, object]]]) -> dict[str, object]:
    """How busy the host was while the trial measured (autotune.host.load): the kept
    measurement's load, whether it was still busier than --max-foreign-cpu, and each
    measurement when there were two."""
    attrs: dict[str, object] = {TrialAttr.FOREIGN_CPU: measured.load.foreign_cpu,
                                TrialAttr.STEAL: measured.load.steal}
    if measured.busy:
        attrs[TrialAttr.BUSY_HOST] = True
    if len(measured.loads) > 1:
        attrs[TrialAttr.LOAD_MEASUREMENTS] = [
            {"value": value, "foreign_cpu": load.foreign_cpu, "steal": load.steal}
            for (value, _), load in zip(measured.results, measured.loads, strict=True)]
    return attrs


def _throttle_attrs(windows: list[Throttling]) -> dict[str, object]:
    """The throttling of the measurement kept (the last), where a quota applied."""
    if not windows or windows[-1].ratio is None:
        return {}
    return {TrialAttr.THROTTLED_RATIO: round(windows[-1].ratio, 4),
            TrialAttr.THROTTLED_S: round(windows[-1].throttled_s, 3)}


def run_trials(coordinator: Coordinator, objective: TrialObjective, timeout_s: float | None,
               progress: Progress) -> None:
    """Run trials while the class's budget lasts (no new one after `timeout_s`), then wait
    for the other workers' trials of the budget; see the module docstring."""
    study = coordinator.study
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    mode = objective.workload.mode
    failures_in_a_row = 0
    budget = coordinator.budget
    progress.begin(f"study {study.study_name}: {budget.trials} trials", budget.trials)
    while deadline is None or time.monotonic() < deadline:
        trial = coordinator.claim()
        if trial is None:
            if not coordinator.others_running():
                break
            progress.phase("waiting for the trials of other workers")
            coordinator.wait()
            continue
        twin = measured_twin(study, trial)
        if twin is not None:
            if not _skipped(study, trial, twin, objective.space, progress):
                break  # every configuration of the space is measured
            continue
        try:
            with Heartbeat(coordinator.storage, trial._trial_id):
                value = objective(trial)
        except MeasurementError as error:
            missed = isinstance(error, BoundMissedError)  # a finding, not a broken server
            if missed:
                trial.set_user_attr(TrialAttr.MISSED_P99_MS, error.p99_ms)
                trial.set_user_attr(TrialAttr.RATES_TRIED, error.rates_tried)
            record_failure(study, trial, str(error))
            failures_in_a_row = 0 if missed else failures_in_a_row + 1
            progress.done(f"trial {trial.number} FAIL: {str(error).splitlines()[0]}",
                          _best_text(study, mode))
            if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise StudyAbortedError(f"{failures_in_a_row} trials in a row failed; the last: "
                                        f"{error}") from None
            continue
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            failures_in_a_row = 0
            progress.done(f"trial {trial.number} {describe_params(trial.params)}: pruned, "
                          "slower than the best", _best_text(study, mode))
            continue
        except KeyboardInterrupt:
            record_failure(study, trial, INTERRUPTED)
            raise
        except AutotuneError as error:  # e.g. the launcher became unusable: ends the study
            record_failure(study, trial, str(error))
            raise
        except BaseException as error:
            if not is_storage_failure(error):  # a lost storage takes no record
                record_failure(study, trial, f"{INTERNAL_ERROR}: {error!r}")
            raise
        frozen = study.tell(trial, value)
        failures_in_a_row = 0
        progress.done(_trial_line(frozen, mode), _best_text(study, mode))


def _skipped(study: optuna.Study, trial: optuna.Trial, twin: optuna.trial.FrozenTrial,
             space: SearchSpace, progress: Progress) -> bool:
    """Skip `trial`, which repeats `twin`'s configuration (autotune.tuning.repeats), and
    say so; whether an unmeasured configuration is left to take its place."""
    more = skip_repeat(study, trial, twin, space)
    ended = "" if more else "; every configuration is measured"
    progress.note(f"trial {trial.number} {describe_params(trial.params)}: measured by trial "
                  f"{twin.number}, not again{ended}")
    return more


def _best_text(study: optuna.Study, mode: Mode) -> str | None:
    best = best_feasible_trial(study)
    return None if best is None else f"{mode.format(best.value)} (trial {best.number})"


def _trial_line(trial: optuna.trial.FrozenTrial, mode: Mode) -> str:
    attrs = trial.user_attrs
    verdict = (f"[red]infeasible: {attrs[TrialAttr.INFEASIBLE]}[/]"
               if TrialAttr.INFEASIBLE in attrs else "ok")
    baseline = f" ({attrs[TrialAttr.BASELINE]})" if TrialAttr.BASELINE in attrs else ""
    gate = " ".join(f"{label} {text}" for label, text in gate_values(attrs))
    return (f"trial {trial.number} {describe_params(trial.params)}{baseline}: "
            f"{mode.format(trial.value)}, {gate} {verdict}")
