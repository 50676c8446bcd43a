"""The trials of a run: one configuration measured, gated and recorded, and the loop.

`TrialObjective` is Optuna's objective (ask-and-tell): restart the server(s) with the
trial's settings, measure the mode's objective, score the accuracy gate through the same
server, record the attrs and the constraints (autotune.record.schema). It also gives the
racing its rounds (side by side, or one after another). `run_trials` claims trials while
the class's budget lasts, each under a heartbeat: a MeasurementError fails the trial and
the run goes on (three in a row end it; a server-mode trial that missed the bound even at
the lowest rate is a finding and does not count); Ctrl-C fails it "interrupted".
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator

import optuna

from autotune.errors import (
    AutotuneError,
    BoundMissedError,
    MeasurementError,
)
from autotune.fleet import (
    Coordinator,
    Heartbeat,
)
from autotune.launch.base import Launcher
from autotune.launch.group import InstanceGroup
from autotune.launch.settings import ServerSettings
from autotune.measure.accuracy import AccuracyGate
from autotune.measure.running import RunningServer, running_server
from autotune.measure.side_by_side import MemoryOf, SideBySide
from autotune.measure.workload import Workload
from autotune.model.metrics import HR_LABEL, NDCG_LABEL
from autotune.modes import Mode
from autotune.options import DEFAULT_REQUEST_TIMEOUT_S
from autotune.paths import MODEL_NAME
from autotune.progress import Progress
from autotune.protocols import GRPC
from autotune.racing.race import MeasureRound, one_at_a_time
from autotune.record.memory import MemoryCheck
from autotune.record.schema import (
    StudyAttr,
    TrialAttr,
    best_feasible_trial,
    record_constraints,
    record_failure,
)
from autotune.record.storage import is_storage_failure
from autotune.search.space import (
    SearchSpace,
    describe_params,
    settings_from_params,
)

if TYPE_CHECKING:
    pass


MAX_FAILURES_IN_A_ROW = 3


class StudyAbortedError(AutotuneError):
    """Too many trials failed in a row: the server or its settings are broken."""


class TrialObjective:
    """Measures one configuration: server restart, objective, accuracy gate, trial record."""

    def __init__(self, space: SearchSpace, launcher: InstanceGroup, workload: Workload,
                 gate: AccuracyGate, start_timeout_s: float, progress: Progress,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                 protocol: str = GRPC, max_memory_mb: float | None = None) -> None:
        self.space = space
        self.protocol = protocol
        self.launcher = launcher
        self.workload = workload
        self.gate = gate
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self.progress = progress
        self.max_memory_mb = max_memory_mb

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
            value, attrs = self.workload.measure(server.clients, self.progress.phase,
                                                 server.in_flight)
            self.progress.phase("accuracy")
            accuracy = self.gate.check(server.client, settings.batching and
                                       settings.batching.max_batch_size)
            memory = self._memory()
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        for name, values in ((TrialAttr.CPUSETS, self.launcher.cpusets),
                             (TrialAttr.CPUSET_MEMS, self.launcher.cpuset_mems)):
            if any(values):
                trial.set_user_attr(name, values)
        record_constraints(trial, accuracy, memory)
        return value

    def _memory(self) -> MemoryCheck | None:
        """The running servers' memory against the limit; None when unknown and unlimited."""
        rss_mb = self.launcher.rss_mb()
        if rss_mb is None and self.max_memory_mb is not None:
            raise MeasurementError(f"cannot read the memory of the {self.launcher.kind} server(s), "
                                   "which --max-memory-mb needs")
        return None if rss_mb is None else MemoryCheck(rss_mb, self.max_memory_mb)

    def remeasure(self, params: dict[str, object]) -> float:
        """The objective of `params` once more (the racing): no gate, no trial."""
        with self._running(settings_from_params(params)) as server:
            return self.workload.measure(server.clients, self.progress.phase,
                                         server.in_flight)[0]

    @contextmanager
    def racing_rounds(self, make_launcher: Callable[[], Launcher],
                      memory_of: MemoryOf) -> Iterator[MeasureRound]:
        """How the race measures a round: every finalist's server at once with requests
        alternating between them (autotune.measure.side_by_side, on launchers `make_launcher`
        builds, in groups that fit in memory by what `memory_of` says each configuration
        took) where the mode races side by side, else one after another (`remeasure`)."""
        if not self.workload.mode.races_side_by_side:
            yield one_at_a_time(self.remeasure, self.progress)
            return
        with SideBySide(make_launcher, self.workload, self.start_timeout_s,
                        self.request_timeout_s, self.protocol, self.progress,
                        memory_of=memory_of) as side_by_side:
            yield side_by_side

    def _running(self, settings: ServerSettings) -> ContextManager[RunningServer]:
        return running_server(self.launcher, settings, MODEL_NAME, self.start_timeout_s,
                              self.progress.phase, self.request_timeout_s, self.protocol)


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
        except KeyboardInterrupt:
            record_failure(study, trial, "interrupted")
            raise
        except AutotuneError as error:  # e.g. the launcher became unusable: ends the study
            record_failure(study, trial, str(error))
            raise
        except BaseException as error:
            if not is_storage_failure(error):  # a lost storage takes no record
                record_failure(study, trial, f"internal error: {error!r}")
            raise
        frozen = study.tell(trial, value)
        failures_in_a_row = 0
        progress.done(_trial_line(frozen, mode), _best_text(study, mode))


def _best_text(study: optuna.Study, mode: Mode) -> str | None:
    best = best_feasible_trial(study)
    return None if best is None else f"{mode.format(best.value)} (trial {best.number})"


def _trial_line(trial: optuna.trial.FrozenTrial, mode: Mode) -> str:
    attrs = trial.user_attrs
    verdict = (f"[red]infeasible: {attrs[TrialAttr.INFEASIBLE]}[/]"
               if TrialAttr.INFEASIBLE in attrs else "ok")
    baseline = f" ({attrs[TrialAttr.BASELINE]})" if TrialAttr.BASELINE in attrs else ""
    return (f"trial {trial.number} {describe_params(trial.params)}{baseline}: "
            f"{mode.format(trial.value)}, {HR_LABEL} {attrs[TrialAttr.HR]:.3f} "
            f"{NDCG_LABEL} {attrs[TrialAttr.NDCG]:.3f} {verdict}")
