"""Several workers on one study: a lock for planning, a shared budget, heartbeats, retries.

Every host of a class runs the same command against the same storage. What keeps them
from stepping on each other:

* `study_lock`: planning (enqueueing baselines and the grid) and claiming a trial happen
  under a lock held in the storage's own terms: a PostgreSQL advisory lock (released by
  the server when the holder's connection dies), a `flock` beside a SQLite file. So the
  grid is enqueued once even when workers start at the same moment.
* `SharedBudget`: `--trials` (or the grid, or the default budget) is the class's budget,
  stored as the study attr `budget` and spent by whichever worker claims a trial next; a
  worker that starts while a budget is unspent joins it, one that starts after opens the
  next. Every claimed trial records its `budget` number and its `worker` (hostname:pid).
  A trial skipped as a repeat of a measured configuration (autotune.tuning.repeats)
  spends none of it.
* Heartbeats (Optuna's RDB heartbeat): the running trial's worker records a beat every
  `heartbeat_interval` seconds; before claiming, every worker fails the trials whose
  beat is older than `grace_period` (their worker died; `failure` "worker silent") and
  `requeue_stale_trial` queues the same configuration again, so another worker
  measures it (the retry keeps the plan's attrs, not the failed attempt's). A trial failed
  that way spends no budget: its retry does.
* A worker whose budget is spent waits while trials of that budget still run elsewhere,
  so a dead peer's configuration is never left behind and every worker's finalists are
  the class's.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from autotune.host.facts import worker_id
from autotune.host.lock import lock_file
from autotune.options import HEARTBEAT_INTERVAL_S
from autotune.record.schema import (
    PLANNED_TRIAL_ATTRS,
    RETRY_HISTORY,
    StudyAttr,
    TrialAttr,
    is_duplicate,
)
from autotune.record.storage import sqlite_path

#: how often a configuration is queued again after its workers died measuring it
MAX_RETRIES = 3
#: the `failure` of a trial whose worker stopped its heartbeat for the grace period
WORKER_SILENT = "worker silent: no heartbeat for the grace period"


@contextmanager
def study_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    """Hold the study's planning lock (no lock for in-memory or other databases)."""
    dialect = storage.engine.dialect.name
    path = sqlite_path(storage.url) if dialect == "sqlite" else None
    if dialect == "postgresql":
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        with storage.engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    elif path is not None:
        with lock_file(path.with_name(path.name + ".lock")):
            yield
    else:
        yield


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Fail the trials whose worker's heartbeat is older than the grace period ("worker
    silent"), each re-queued; the ids this worker failed. Optuna's own check does the
    same but cannot say why (its trials are finished before its callback runs)."""
    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return []
    return [trial_id for trial_id in storage._get_stale_trial_ids(study._study_id)
            if fail_and_requeue(study, trial_id, WORKER_SILENT)]


def fail_and_requeue(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Mark a RUNNING trial FAIL with `reason` (its `failure` attr) and queue its
    configuration again; False when another worker finished it first."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, TrialAttr.FAILURE, reason)
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    requeue_stale_trial(study, storage.get_trial(trial_id))
    return True


def open_budget(study: optuna.Study, storage: RDBStorage,
                plan: Callable[[], int]) -> "SharedBudget":
    """Under the lock: fail dead workers' trials, `plan()` (enqueue; the trial count wanted),
    then join the study's unspent budget or open one of that count."""
    with study_lock(storage, study.study_name):
        fail_stale_trials(study)
        return SharedBudget.join_or_open(study, plan())


def requeue_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's configuration again (Optuna's retry, which records the
    retry history), keeping only the attrs of its plan: the rest were that attempt's."""
    planned = copy.deepcopy(trial)
    planned.user_attrs = {key: value for key, value in trial.user_attrs.items()
                          if key in PLANNED_TRIAL_ATTRS}
    with warnings.catch_warnings():  # experimental in name only since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, planned)


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of trials failed by a heartbeat and queued again (they spend no budget)."""
    return {number for trial in trials for number in trial.system_attrs.get(RETRY_HISTORY, [])}


@dataclass(frozen=True)
class SharedBudget:
    """Budget number `number` of the study: `trials` trials, spent by every worker."""

    number: int
    trials: int

    @classmethod
    def join_or_open(cls, study: optuna.Study, trials: int) -> "SharedBudget":
        """The unspent budget of the study, else a new one of `trials` (call under the lock)."""
        stored = study.user_attrs.get(StudyAttr.BUDGET)
        if stored is not None:
            current = cls(**stored)
            if current.spent(study) < current.trials:
                return current
        budget = cls(number=stored["number"] + 1 if stored else 1, trials=trials)
        study.set_user_attr(StudyAttr.BUDGET, {"number": budget.number, "trials": budget.trials})
        return budget

    def claimed(self, study: optuna.Study) -> list[FrozenTrial]:
        """The trials claimed from this budget, those failed by a heartbeat included."""
        return [trial for trial in study.get_trials(deepcopy=False)
                if trial.user_attrs.get(TrialAttr.BUDGET) == self.number
                and trial.state != TrialState.WAITING]

    def spent(self, study: optuna.Study) -> int:
        trials = study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        return sum(trial.number not in retried and not is_duplicate(trial)
                   for trial in self.claimed(study))

    def running(self, study: optuna.Study) -> int:
        """Trials of this budget still running (on any worker)."""
        return sum(trial.state == TrialState.RUNNING for trial in self.claimed(study))


class Heartbeat:
    """Records a trial's heartbeat every `interval` seconds while the trial runs."""

    def __init__(self, storage: RDBStorage, trial_id: int) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="autotune-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        if self.storage.get_heartbeat_interval():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval()
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except sqlalchemy.exc.SQLAlchemyError:
                pass  # a storage hiccup: the next beat (or the trial's end) tells
            if self._stop.wait(interval):
                return


class Coordinator:
    """One worker's side of the fleet: claims trials from the shared budget."""

    def __init__(self, study: optuna.Study, storage: RDBStorage, budget: SharedBudget,
                 suggest: Callable[[optuna.Trial], object]) -> None:
        self.study = study
        self.storage = storage
        self.budget = budget
        #: samples the trial's parameters under the lock, so the sampler's constant liar
        #: sees every other worker's running configuration
        self.suggest = suggest
        self.worker = worker_id()

    def claim(self) -> optuna.Trial | None:
        """The next trial of the budget for this worker, or None when the budget is spent."""
        with study_lock(self.storage, self.study.study_name):
            fail_stale_trials(self.study)
            if self.budget.spent(self.study) >= self.budget.trials:
                return None
            with warnings.catch_warnings():  # ask-and-tell beats with `Heartbeat` below
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
                trial = self.study.ask()
            trial.set_user_attr(TrialAttr.BUDGET, self.budget.number)
            trial.set_user_attr(TrialAttr.WORKER, self.worker)
            self.suggest(trial)
            return trial

    def others_running(self) -> bool:
        """Whether trials of the budget still run on other workers (after failing dead ones;
        a dead one's retry makes the budget claimable again)."""
        with study_lock(self.storage, self.study.study_name):
            fail_stale_trials(self.study)
            return self.budget.running(self.study) > 0

    def wait(self) -> None:
        """Sleep one heartbeat interval before looking again."""
        time.sleep(self.storage.get_heartbeat_interval() or HEARTBEAT_INTERVAL_S)
