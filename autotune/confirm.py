"""The confirmation round: re-measure the top configurations and the baselines, interleaved.

A search trial is one measurement; on a shared host the best of many single
measurements is partly luck. After the search, the few best feasible configurations
and every baseline are measured again for a few rounds, each round visiting them in a
rotated order with a fresh server each time, so slow drifts of the host hit all of
them alike. The mean and a 95% confidence interval (Student's t over the rounds) are
what the report states, and they are stored as the study's `confirmation` user attr
so that `autotune report` shows them later.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence, TypeVar

import optuna

from autotune.errors import MeasurementError
from autotune.progress import Progress
from autotune.schema import (
    StudyAttr,
    TrialAttr,
    complete_trials,
    is_feasible,
    params_key,
    ranked,
    study_mode,
)

#: two-sided 95% Student's t quantiles by degrees of freedom; 1.96 beyond the table
_T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


T = TypeVar("T")
#: what `pick_candidates` builds: a `Candidate` or a `racing.Finalist`
C = TypeVar("C")


@dataclass
class Candidate:
    """One configuration to re-measure: the trial that found it, or the baseline it is."""

    trial: int
    params: dict[str, object]
    feasible: bool
    baselines: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        names = f" ({', '.join(self.baselines)})" if self.baselines else ""
        return f"trial {self.trial}{names}"


def mean_and_ci95(values: list[float]) -> tuple[float, tuple[float, float]]:
    """Mean and 95% confidence interval; a single value has a zero-width interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, (mean, mean)
    dof = len(values) - 1
    t = next((_T_95[d] for d in sorted(_T_95) if d >= dof), 1.96)
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return mean, (mean - half, mean + half)


def pick_candidates(study: optuna.Study, top: int,
                    make: Callable[[int, dict[str, object], bool], C] = Candidate) -> list[C]:
    """The `top` best feasible distinct configurations, then each baseline's configuration.

    `make(trial number, params, feasible)` builds each pick: a `Candidate` here, a
    `racing.Finalist` for the race; it must have a `baselines` list.
    """
    best_first = ranked(study, complete_trials(study))
    chosen: dict[tuple, C] = {}
    for trial in filter(is_feasible, best_first):
        if len(chosen) == top:
            break
        chosen.setdefault(params_key(trial.params), make(trial.number, dict(trial.params), True))
    for trial in best_first:
        name = trial.user_attrs.get(TrialAttr.BASELINE)
        if name and not any(name in candidate.baselines for candidate in chosen.values()):
            candidate = chosen.setdefault(
                params_key(trial.params),
                make(trial.number, dict(trial.params), is_feasible(trial)))
            candidate.baselines.append(name)
    return list(chosen.values())


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """`items` starting at position `round_index` (mod length): each round a new order."""
    shift = round_index % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def run_confirmation(study: optuna.Study, candidates: list[Candidate], rounds: int,
                     measure: Callable[[dict[str, object]], float], progress: Progress) -> dict:
    """Measure every candidate `rounds` times, rotating the order; store and return the result."""
    progress.begin(f"confirmation: {len(candidates)} configurations x {rounds} rounds",
                   len(candidates) * rounds)
    mode = study_mode(study)
    for round_index in range(rounds):
        for candidate in rotated(candidates, round_index):
            progress.step(f"round {round_index + 1}/{rounds} {candidate.label}")
            try:
                candidate.values.append(measure(candidate.params))
                progress.done(f"  round {round_index + 1} {candidate.label}: "
                              f"{mode.format(candidate.values[-1])}")
            except MeasurementError as error:
                candidate.failures.append(str(error))
                progress.done(f"  round {round_index + 1} {candidate.label}: failed: {error}")
    result = {"rounds": rounds, "configs": [_summary(candidate) for candidate in candidates]}
    study.set_user_attr(StudyAttr.CONFIRMATION, result)
    return result


def _summary(candidate: Candidate) -> dict[str, object]:
    summary = asdict(candidate)
    if candidate.values:
        mean, (low, high) = mean_and_ci95(candidate.values)
        summary.update(mean=mean, ci95=[low, high])
    else:
        summary.update(mean=None, ci95=None)
    return summary
