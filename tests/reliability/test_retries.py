"""A trial whose worker went silent is failed with a reason, and its retry starts clean
(issue 27, the smaller list: the heartbeat's FAIL had no `failure`; a retried trial that
completed kept `failure="tuner died"` from its first attempt)."""

from __future__ import annotations

import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from autotune.fleet.workers import fail_stale_trials
from autotune.record.schema import RETRY_HISTORY, TrialAttr
from autotune.record.storage import open_storage

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
GRACE_S = 2


def test_a_silent_workers_trial_fails_with_its_reason_and_its_retry_is_clean(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/studies.db", heartbeat_interval=1,
                           grace_period=GRACE_S)
    study = optuna.create_study(storage=storage, study_name="fleet")
    study.enqueue_trial({"x": 1}, user_attrs={TrialAttr.BASELINE: "tutorial"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ask-and-tell with a heartbeat storage
        silent = study.ask()
    silent.suggest_int("x", 0, 3)
    silent.set_user_attr(TrialAttr.WORKER, "elsewhere:4242")
    silent.set_user_attr(TrialAttr.STARTUP_S, 1.5)
    storage.record_heartbeat(silent._trial_id)  # then nothing: the worker died
    time.sleep(GRACE_S + 1)

    fail_stale_trials(study)
    failed = study.trials[silent.number]
    assert failed.state == TrialState.FAIL
    assert "no heartbeat" in failed.user_attrs.get(TrialAttr.FAILURE, "")
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs[RETRY_HISTORY] == [silent.number]
    assert retry.user_attrs == {TrialAttr.BASELINE: "tutorial"}  # the plan, not the attempt
