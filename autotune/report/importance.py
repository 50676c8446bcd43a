"""Which knob matters on this host: parameter importances of a study.

Optuna's PED-ANOVA evaluator (`optuna.importance.PedAnovaImportanceEvaluator`) says
how much each parameter's distribution among the best trials (the top 10%, at least
three) differs from its distribution over all measured trials: a knob that the fast
trials agree on matters, one they set anyhow does not. It needs no extra library
(fANOVA would need scikit-learn) and is fast on any study size. The importances sum
to 1; a study with too few measured trials, or whose parameters never varied, has
none.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import TrialState

#: fewer measured trials than this give no meaningful importances
MIN_TRIALS = 3
#: the best trials compared with all of them: at least this many
TOP_TRIALS = 3


def importance_evaluator(measured: int) -> PedAnovaImportanceEvaluator:
    """The evaluator behind every importance autotune shows (table and plot alike).

    Optuna's default top quantile (10%) holds a single trial of a small study, which
    agrees with itself on every knob; the top is widened to at least `TOP_TRIALS` of
    the `measured` trials (at most half of them).
    """
    quantile = min(0.5, max(0.1, TOP_TRIALS / max(measured, 1)))
    return PedAnovaImportanceEvaluator(target_quantile=quantile)


def param_importances(study: optuna.Study) -> dict[str, float]:
    """`{param: importance}`, most important first; empty when it cannot be told."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varied = {name for name in {p for t in complete for p in t.params}
              if len({t.params.get(name) for t in complete}) > 1}
    if len(complete) < MIN_TRIALS or not varied:
        return {}
    with warnings.catch_warnings():  # experimental warnings, and "few trials" advice
        warnings.simplefilter("ignore")
        importances = optuna.importance.get_param_importances(
            study, evaluator=importance_evaluator(len(complete)), params=sorted(varied))
    return {name: float(value) for name, value in importances.items()}
