"""The trial schema's helpers on an in-memory study: feasibility, ranking, best, failure."""

import optuna
from optuna.trial import TrialState

from autotune.record.schema import (
    TrialAttr,
    best_feasible_trial,
    complete_trials,
    is_feasible,
    params_key,
    planned_params,
    ranked,
    record_failure,
)
from trials import add_trial


def test_best_feasible_and_ranking_by_direction():
    study = optuna.create_study(direction="maximize")
    assert best_feasible_trial(study) is None
    add_trial(study, 1, 5.0, hr=0.0)  # the fastest, but infeasible
    assert best_feasible_trial(study) is None
    add_trial(study, 2, 3.0, hr=0.5)
    add_trial(study, 3, 4.0, hr=0.5)
    assert best_feasible_trial(study).value == 4.0
    assert [t.value for t in ranked(study, complete_trials(study))] == [5.0, 4.0, 3.0]
    assert [is_feasible(t) for t in complete_trials(study)] == [False, True, True]
    first = complete_trials(study)[0]
    assert first.user_attrs[TrialAttr.INFEASIBLE].startswith("HR@10")
    assert first.system_attrs["constraints"][0] > 0  # what optuna-dashboard greys by


def test_failure_params_key_and_planned_params():
    study = optuna.create_study()
    study.enqueue_trial({"x": 3})
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    assert planned_params(waiting) == {"x": 3}
    trial = study.ask()
    record_failure(study, trial, "server did not start")
    failed = study.trials[0]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[TrialAttr.FAILURE] == "server did not start"
    assert params_key({"b": 1, "a": 2}) == params_key({"a": 2, "b": 1})
