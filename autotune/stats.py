"""The statistics every comparison uses: a measurement's interval and a paired speed ratio's.

Absolute numbers drift on a shared host (the same configuration measured 2.5x apart on
two days), so configurations are only ever compared side by side: measured in the same
round, one after the other, each round a paired observation. A speed ratio is then the
geometric mean of the per-round ratios, and its interval is Student's t interval of the
mean log-ratio (log, because ratios multiply: 2x faster and 2x slower are symmetric).
Quantiles come from scipy.stats, never from a hand-kept table.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

from scipy import stats

from autotune.modes import speedup

#: paired rounds a ratio needs before it states an interval (and so can be significant).
#: From two rounds Student's t has one degree of freedom and the spread of two values,
#: and two rounds a minute apart share the host's state: races of two rounds claimed
#: 1.66x [1.63, 1.68] and 1.23x [1.22, 1.24] where a grid of five rounds measured 1.76x
#: [1.72, 1.80] and 1.08x [0.99, 1.19]. The race compares from its third round too.
MIN_PAIRS = 3


def geometric_mean_and_ci95(values: Sequence[float]) -> tuple[float, tuple[float, float] | None]:
    """The geometric mean of positive measurements (rates, latencies) and its 95% interval,
    computed where they live, on the log scale: Student's t interval of the mean log,
    mapped back, so it is never negative and is as asymmetric as a rate's spread is.
    None below `MIN_PAIRS` values: an interval from one value would have no width, and
    from two it would have one degree of freedom (a rate of 859/s got -318 to 2,036)."""
    logs = [math.log(value) for value in values]
    centre = statistics.fmean(logs)
    if len(logs) < MIN_PAIRS:
        return math.exp(centre), None
    half = t_half_width(logs, 0.05)
    return math.exp(centre), (math.exp(centre - half), math.exp(centre + half))


def t_half_width(values: Sequence[float], alpha: float) -> float:
    """Half-width of the two-sided (1 - alpha) t interval of the mean of `values` (n >= 2)."""
    quantile = stats.t.ppf(1 - alpha / 2, len(values) - 1)
    return float(quantile * statistics.stdev(values) / math.sqrt(len(values)))


def relative_half_width(values: Sequence[float]) -> float:
    """The 95% interval's half-width relative to the mean (infinite below two values)."""
    if len(values) < 2:
        return math.inf
    return t_half_width(values, 0.05) / abs(statistics.fmean(values))


@dataclass(frozen=True)
class PairedRatio:
    """How many times faster one configuration is than another, from paired rounds.

    `ci` is None with fewer than `MIN_PAIRS` pairs (no interval is stated then).
    """

    ratio: float
    ci: tuple[float, float] | None
    pairs: int

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 1.0 (no difference)."""
        return self.ci is not None and (self.ci[0] > 1.0 or self.ci[1] < 1.0)

    def as_dict(self) -> dict[str, Any]:
        """As the report JSON holds it: {ratio, ci95, significant}."""
        return {"ratio": None if math.isnan(self.ratio) else self.ratio,
                "ci95": list(self.ci) if self.ci else None, "significant": self.significant}

    def within(self, precision: float) -> bool:
        """Whether the whole interval lies within a factor `1 + precision` of 1.0."""
        return (self.ci is not None
                and 1 / (1 + precision) <= self.ci[0] and self.ci[1] <= 1 + precision)


def paired_ratio(direction: str, values: Sequence[float | None],
                 references: Sequence[float | None], alpha: float = 0.05) -> PairedRatio:
    """Speed ratio of `values` over `references`, paired by round, with its (1 - alpha) interval.

    Round r pairs `values[r]` with `references[r]`; a round where either is None (not
    measured, or failed) is left out.
    """
    logs = [math.log(speedup(direction, value, reference))
            for value, reference in zip(values, references, strict=True)
            if value is not None and reference is not None]
    if not logs:
        return PairedRatio(ratio=math.nan, ci=None, pairs=0)
    mean = statistics.fmean(logs)
    if len(logs) < MIN_PAIRS:
        return PairedRatio(ratio=math.exp(mean), ci=None, pairs=len(logs))
    half = t_half_width(logs, alpha)
    return PairedRatio(ratio=math.exp(mean), ci=(math.exp(mean - half), math.exp(mean + half)),
                       pairs=len(logs))


def finite_or_none(value: float) -> float | None:
    """JSON has no infinity: an interval that could not be computed is stored as None."""
    return value if math.isfinite(value) else None
