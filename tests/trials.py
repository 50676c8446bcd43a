"""Trials written straight into a study, as the tuner records them (no server)."""

import optuna

from autotune.measure.accuracy import AccuracyResult
from autotune.record.schema import StudyAttr, TrialAttr, record_constraints

THREADS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")


def add_trial(study: optuna.Study, x: int, value: float, hr: float = 0.5,
              baseline: str | None = None) -> None:
    """A COMPLETE trial of the one-param space `x`, with HR `hr` against the 0.22 floor."""
    study.enqueue_trial({"x": x}, user_attrs={TrialAttr.BASELINE: baseline} if baseline else None)
    trial = study.ask()
    trial.suggest_int("x", 0, 10)
    record_constraints(trial, AccuracyResult(hr=hr, ndcg=0.5, min_hr=0.22, min_ndcg=0.11))
    study.tell(trial, value)


def online_study(storage: str, name: str) -> optuna.Study:
    """A study as an online run stores it (its mode, metric, model and image), with one
    feasible trial of the thread settings, the tutorial's: a report has a best."""
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize")
    study.set_user_attr(StudyAttr.MODE, "online")
    study.set_user_attr(StudyAttr.MODEL_DIR, "/m/ncf")
    study.set_user_attr(StudyAttr.IMAGE, "autotune/serving:mkl")
    study.set_metric_names(["latency_ms"])
    study.enqueue_trial(dict.fromkeys(THREADS, 1), user_attrs={TrialAttr.BASELINE: "tutorial"})
    trial = study.ask()
    for param in THREADS:
        trial.suggest_int(param, 1, 4)
    record_constraints(trial, AccuracyResult(hr=0.5, ndcg=0.3, min_hr=0.22, min_ndcg=0.11))
    study.tell(trial, 2.0)
    return study
