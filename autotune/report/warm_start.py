"""What a warm start transferred and how it ranked here: the report's `warm_start` key.

Each trial enqueued from another host class's study (its `warm_start_from` attr,
autotune.tuning.warm_start) is listed with where it came from, its state, its value
and its rank among this study's feasible trials, so a reader sees whether a sibling
class's answer carried over to this host.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial

from autotune.record.schema import TrialAttr, is_feasible, planned_params, ranked


def warm_start_summary(study: optuna.Study, complete: list[FrozenTrial],
                       best_trial: int | None) -> list[dict[str, Any]]:
    """`[{"trial", "params", "from", "state", "value", "rank", "of", "recommended"}]`:
    `rank` among the `of` feasible complete trials (1: the best of the search; None: not
    feasible or not measured), `recommended` when it is the report's best."""
    order = [trial.number for trial in ranked(study, filter(is_feasible, complete))]
    return [{"trial": trial.number, "params": planned_params(trial),
             "from": trial.user_attrs[TrialAttr.WARM_START_FROM], "state": trial.state.name,
             "value": trial.value,
             "rank": order.index(trial.number) + 1 if trial.number in order else None,
             "of": len(order), "recommended": trial.number == best_trial}
            for trial in study.get_trials(deepcopy=False)
            if TrialAttr.WARM_START_FROM in trial.user_attrs]
