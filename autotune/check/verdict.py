"""What a check's race says of the recommendation: still the fastest, tied, or beaten.

The race (autotune.racing) measured the study's recommendation beside the deployed
settings and the baselines, and its verdict (autotune.racing.verdict.decide) names the
fastest and the configurations tied with it, at the 95% level. The recommendation
passes when it is the fastest, is tied with it, or was raced too few rounds against it
for any claim (fewer than three: the data says nothing either way). It fails when the
fastest is significantly faster than it: the paired ratio and its interval are
stated as the report states a speed-up over a dropped finalist (`RaceRecord.claim`, at
the level of the look that dropped it), or when it could not be measured at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from autotune.racing.record import ALPHA, Finalist, RaceRecord
from autotune.racing.verdict import decide
from autotune.stats import PairedRatio

#: the roles of the raced configurations besides the baselines' names
RECOMMENDATION, DEPLOYED = "recommendation", "deployed"


@dataclass(frozen=True)
class CheckVerdict:
    """Whether the recommendation is still the answer on this host, and why."""

    passed: bool
    sentence: str
    #: how many times faster the fastest is than the recommendation (None: not compared)
    ratio: PairedRatio | None
    rounds: int

    @property
    def exit_code(self) -> int:
        """0 when the recommendation holds, 1 when another configuration beat it."""
        return 0 if self.passed else 1


def judge(record: RaceRecord) -> CheckVerdict:
    """The verdict of a check's race (see the module docstring)."""
    recommended = next(f for f in record.finalists if RECOMMENDATION in f.baselines)
    verdict = decide(record)
    if verdict is None or not recommended.measured:
        reason = recommended.failures[-1] if recommended.failures else "it was not measured"
        return CheckVerdict(False, f"The recommendation ({recommended.label}) could not be "
                            f"measured: {reason}.", None, record.rounds)
    fastest, rounds = verdict.fastest, record.rounds
    if fastest is recommended:
        return CheckVerdict(True, f"The recommendation ({recommended.label}) is still the "
                            f"fastest after {rounds} rounds.", None, rounds)
    if any(finalist is recommended for finalist in verdict.not_raced):
        return CheckVerdict(True, f"The recommendation ({recommended.label}) was raced fewer "
                            f"than three rounds against the fastest ({fastest.label}): no "
                            "claim either way; give a larger --confirm-budget.", None, rounds)
    if any(finalist is recommended for finalist, _ in verdict.tied):
        ratio = record.ratio(fastest, recommended)
        return CheckVerdict(True, f"The recommendation ({recommended.label}) is statistically "
                            f"tied with the fastest, {fastest.label}: {describe(ratio)}.",
                            ratio, rounds)
    return _beaten(record, fastest, recommended)


def _beaten(record: RaceRecord, fastest: Finalist, recommended: Finalist) -> CheckVerdict:
    """The verdict when the recommendation is not among the fastest."""
    ratio = record.claim(fastest, recommended)
    level = min(ALPHA, recommended.dropped_alpha or ALPHA)  # RaceRecord.claim's
    failed = f" (it failed: {recommended.failures[-1]})" if recommended.failures else ""
    return CheckVerdict(False, f"{fastest.label} is significantly faster than the "
                        f"recommendation ({recommended.label}){failed}: "
                        f"{describe(ratio, level)}, paired over {ratio.pairs} rounds.",
                        ratio, record.rounds)


def describe(ratio: PairedRatio, alpha: float = ALPHA) -> str:
    """`1.234x (95% CI 1.100-1.380x)` (the interval at level 1 - `alpha`), or the ratio
    alone where it has no interval."""
    if ratio.ci is None:
        return f"{ratio.ratio:.3f}x (no interval: fewer than three paired rounds)"
    return f"{ratio.ratio:.3f}x ({100 * (1 - alpha):.4g}% CI {ratio.ci[0]:.3f}-{ratio.ci[1]:.3f}x)"
