"""The memory constraint: the resident memory of a trial's servers against `--max-memory-mb`.

Every server instance holds its own copy of the model (embedding tables included), so
memory grows with the instance count; a configuration that is fast but does not fit is
no answer. Like the accuracy floors, the limit is an Optuna constraint (value <= 0 is
feasible), so such a trial is measured, recorded and never the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from optuna.trial import FrozenTrial

from autotune.record.schema import TrialAttr, params_key

#: the constraint name (a trial's `constraints` key)
CONSTRAINT = "memory"


@dataclass(frozen=True)
class MemoryCheck:
    """The memory of one trial's servers against the limit (None: no limit)."""

    rss_mb: float
    max_mb: float | None

    @property
    def ok(self) -> bool:
        return self.max_mb is None or self.rss_mb <= self.max_mb

    def attrs(self) -> dict[str, Any]:
        """The trial's `rss_mb`."""
        return {TrialAttr.RSS_MB: round(self.rss_mb, 1)}

    def constraints(self) -> dict[str, float]:
        """The excess over the limit in MiB (<= 0 is feasible); nothing without a limit."""
        return {} if self.max_mb is None else {CONSTRAINT: self.rss_mb - self.max_mb}

    def shortfall(self) -> str:
        """Why the trial is infeasible, or "" when it fits."""
        return "" if self.ok else f"memory {self.rss_mb:.0f} MB > --max-memory-mb {self.max_mb:g}"


def over_limit_summary(trials: Iterable[FrozenTrial], max_mb: float | None) -> str:
    """`N above --max-memory-mb M (the smallest used X MB)`, or "" when none was."""
    over = [trial.user_attrs[TrialAttr.RSS_MB] for trial in trials
            if trial.constraints and trial.constraints.get(CONSTRAINT, 0) > 0]
    if not over:
        return ""
    return f"{len(over)} above --max-memory-mb {max_mb:g} (the smallest used {min(over):.0f} MB)"


def measured_memory(trials: Iterable[FrozenTrial]) -> Callable[[Mapping[str, Any]], float | None]:
    """What a configuration's servers took when its trials measured them (the most, over
    its trials), by params; None for one never measured (the racing sizes its
    side-by-side rounds with it, autotune.measure.side_by_side)."""
    sizes: dict[tuple, float] = {}
    for trial in trials:
        rss_mb = trial.user_attrs.get(TrialAttr.RSS_MB)
        if rss_mb is not None:
            key = params_key(trial.params)
            sizes[key] = max(sizes.get(key, 0.0), float(rss_mb))
    return lambda params: sizes.get(params_key(params))
