"""How a trial's gate is shown: HR@10 and NDCG@10 for the NCF model, the largest absolute
and relative deviations from the reference for a model measured by output agreement
(autotune.measure.accuracy, autotune.measure.agreement). A trial carries one or the other
set of attrs; every table and line shows the ones it has."""

from __future__ import annotations

from typing import Any, Mapping

from autotune.model.metrics import HR_LABEL, NDCG_LABEL
from autotune.record.schema import TrialAttr

#: the gate's trial attrs, their labels and number formats, in the order shown
GATE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (TrialAttr.HR, HR_LABEL, ".4f"),
    (TrialAttr.NDCG, NDCG_LABEL, ".4f"),
    (TrialAttr.MAX_ABS_ERR, "max abs err", ".3g"),
    (TrialAttr.MAX_REL_ERR, "max rel err", ".3g"),
)


def gate_columns(attrs: list[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """The gate columns any of these trials' attrs (or report entries) has a value of."""
    return [column for column in GATE_COLUMNS
            if any(a.get(column[0]) is not None for a in attrs)]


def gate_values(attrs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`(label, formatted value)` of each gate attr these attrs have a value of."""
    return [(label, format(attrs[key], spec)) for key, label, spec in gate_columns([attrs])]
