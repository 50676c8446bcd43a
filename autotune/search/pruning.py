"""Hopeless trials stopped early: an Optuna pruner for measurements that report as they go.

A trial's measurement reports a value per window (`trial.report(value, step)`, through
the `on_value` callback of autotune.measure): online, each latency window's statistic;
batch, each large request's samples per second; server mode, each rate at which the
peak search missed the p99 bound, an upper bound of the trial's peak.

Hopeless means it cannot be raced. After the search the racing re-measures the `top`
best feasible configurations (autotune.racing.pick_finalists), because one search trial
is one restart and restarts of one configuration spread by 5-14% on a shared host (the
online search's top three once missed the grid's optimum in three runs of three): a
trial's place among the finalists, not its distance from the one best, is what counts.
So `HopelessPruner` prunes a trial once its evidence shows it slower than the `top`-th
best feasible configuration so far (the best itself when `top` is 1) by more than the
study's precision:

- online and batch: the optimistic end of the trial's 95% interval, Student's t over its
  windows' values on the log scale (as autotune.stats computes every interval), from
  `MIN_PAIRS` windows on, is worse than that configuration's value by more than a factor
  1 + precision;
- server mode: the lowest rate it missed the bound at is already below that value by
  more than that factor (its peak can only be lower still).

Only the trial's latest measurement counts: a trial measured again because the host was
busy judges its second measurement's windows alone (from `MEASURED_FROM_STEP`), not the
busy ones before them. Until `top` feasible configurations have been measured nothing is
pruned. A pruned trial ends PRUNED: its server is stopped at once, the accuracy gate
never runs, and it is never a finalist (the racing takes COMPLETE trials only).
Baselines are never pruned: every speed-up the report states is over them, from the
racing.
"""

from __future__ import annotations

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from autotune.modes import Mode, speedup
from autotune.record.schema import TrialAttr, complete_trials, is_feasible, params_key, ranked
from autotune.stats import geometric_mean_and_ci95


class HopelessPruner(BasePruner):
    """Prunes a trial whose reported values show it slower than the `top`-th best feasible
    configuration by more than `precision`; see the module docstring."""

    def __init__(self, mode: Mode, precision: float, top: int) -> None:
        self.mode = mode
        self.precision = precision
        self.top = top
        #: (trial number, the place it must reach): read from the storage once per trial,
        #: not at every window (an online trial reports one every ~0.2 s)
        self._place: tuple[int, float | None] | None = None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        first = trial.user_attrs.get(TrialAttr.MEASURED_FROM_STEP, 0)
        values = [value for step, value in trial.intermediate_values.items() if step >= first]
        if not values or TrialAttr.BASELINE in trial.user_attrs:
            return False
        optimistic = self.optimistic(values)
        if optimistic is None:
            return False
        if self._place is None or self._place[0] != trial.number:
            self._place = (trial.number, self.last_finalist_value(study))
        last_place = self._place[1]
        if last_place is None:
            return False
        return speedup(self.mode.direction, last_place, optimistic) > 1 + self.precision

    def optimistic(self, values: list[float]) -> float | None:
        """The best the trial can still plausibly be: in server mode the lowest rate that
        missed the bound; else its interval's better end (None below `MIN_PAIRS` windows)."""
        if self.mode.bounded:
            return min(values)
        _, interval = geometric_mean_and_ci95(values)
        if interval is None:
            return None
        return interval[0] if self.mode.direction == "minimize" else interval[1]

    def last_finalist_value(self, study: optuna.Study) -> float | None:
        """The value of the `top`-th best feasible distinct configuration so far (None
        while fewer have been measured)."""
        feasible = ranked(study, filter(is_feasible, complete_trials(study)))
        values: dict[tuple, float] = {}
        for trial in feasible:
            values.setdefault(params_key(trial.params), trial.value)
        best_first = list(values.values())
        return best_first[self.top - 1] if len(best_first) >= self.top else None
