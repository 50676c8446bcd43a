"""No configuration measured twice in a study: a repeated suggestion is skipped, not measured.

TPE draws from what it has learnt, so in a small space it suggests configurations the
study already measured (trial 2 was trial 1 again in the server studies): a whole
trial's budget spent to learn nothing. So before a trial is measured, its params are
compared with the study's finished trials. A twin is a COMPLETE or PRUNED trial, or a
FAIL one whose failure was the configuration's own (its server would not start, died,
missed the bound: not "interrupted", not a dead tuner or a silent worker, not an internal
error, which are retried). A trial with a twin is not measured: it ends FAIL with
`duplicate_of` (the twin's number), which TPE ignores and no report counts as a failure
(the report counts it among the skips), and it spends none of the budget
(autotune.fleet.SharedBudget). So that the next trial is new, a configuration of the space
no trial has measured or planned yet is enqueued in its place (chosen at random, seeded
by the trial's number); when none is left the space is exhausted and the search ends.

Baselines are exempt: they are measured first as planned, and one that failed is tried
again by the next run (autotune.tuning.study.plan_trials).
"""

from __future__ import annotations

import random

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.fleet import WORKER_SILENT
from autotune.record.schema import (
    TrialAttr,
    is_duplicate,
    params_key,
    planned_params,
    record_failure,
)
from autotune.search.space import SearchSpace
from autotune.tuning.recovery import TUNER_DIED

#: the `failure` of a trial stopped by Ctrl-C or SIGTERM
INTERRUPTED = "interrupted"
#: the `failure` prefix of a trial ended by an error of autotune's own
INTERNAL_ERROR = "internal error"
#: failures that say nothing about the configuration: it is measured again
NOT_ITS_OWN = (INTERRUPTED, TUNER_DIED, WORKER_SILENT, INTERNAL_ERROR)


def measured_twin(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial | None:
    """The finished trial that already measured `trial`'s configuration (see the module
    docstring), or None; always None for a baseline."""
    if TrialAttr.BASELINE in trial.user_attrs:
        return None
    key = params_key(trial.params)
    return next((other for other in study.get_trials(deepcopy=False)
                 if other.number != trial.number and _known(other)
                 and params_key(other.params) == key), None)


def skip_repeat(study: optuna.Study, trial: optuna.Trial, twin: FrozenTrial,
                space: SearchSpace) -> bool:
    """End `trial` as a duplicate of `twin` and enqueue an unmeasured configuration in its
    place; False when the space has none left (the search is over)."""
    trial.set_user_attr(TrialAttr.DUPLICATE_OF, twin.number)
    record_failure(study, trial, f"duplicate of trial {twin.number}: not measured again")
    fresh = unplanned_configurations(study, space)
    if not fresh:
        return False
    study.enqueue_trial(random.Random(trial.number).choice(fresh))
    return True


def unplanned_configurations(study: optuna.Study, space: SearchSpace) -> list[dict[str, object]]:
    """The space's configurations that no trial has measured, is measuring or will measure."""
    planned = {params_key(planned_params(trial)) for trial in study.get_trials(deepcopy=False)
               if trial.state in (TrialState.WAITING, TrialState.RUNNING) or _known(trial)}
    return [params for params in space.configurations() if params_key(params) not in planned]


def _known(trial: FrozenTrial) -> bool:
    """Whether `trial` tells what its configuration does (see the module docstring)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if trial.state != TrialState.FAIL or is_duplicate(trial):
        return False
    failure = str(trial.user_attrs.get(TrialAttr.FAILURE, ""))
    return not failure.startswith(NOT_ITS_OWN)
