"""Trials written straight into a study, as the tuner records them (no server)."""

import optuna

from autotune.measure.accuracy import AccuracyResult
from autotune.record.schema import TrialAttr, record_constraints


def add_trial(study: optuna.Study, x: int, value: float, hr: float = 0.5,
              baseline: str | None = None) -> None:
    """A COMPLETE trial of the one-param space `x`, with HR `hr` against the 0.22 floor."""
    study.enqueue_trial({"x": x}, user_attrs={TrialAttr.BASELINE: baseline} if baseline else None)
    trial = study.ask()
    trial.suggest_int("x", 0, 10)
    record_constraints(trial, AccuracyResult(hr=hr, ndcg=0.5, min_hr=0.22, min_ndcg=0.11))
    study.tell(trial, value)
