"""What a race lets us claim: who is tied with the fastest, what to recommend, which speed-ups.

From the rounds of a race (autotune.racing), at the usual 95% level:

- **fastest**: the feasible survivor with the best geometric mean among those measured
  in at least three rounds (the race's leader when none was).
- **tied**: every feasible survivor whose paired ratio against the fastest has an
  interval (at least three paired rounds) that is not significantly different from 1.0
  (the fastest included). They cannot be told apart by the data.
- **not raced**: a feasible survivor measured in fewer than three rounds paired with the
  fastest: the data cannot say anything of it, so it is neither tied nor slower.
- **recommended**: the cheapest of the tied configurations that the data shows to be at
  most `precision` slower than the fastest (the upper end of its interval within
  1 + precision), cheapest meaning fewest threads in total, then fewest pinned cores
  (no pinning counts as every core), then the tutorial's settings. "Tied" alone only
  says the data could not see a difference, which after a short race can hide 10%;
  recommending a cheaper configuration is only safe where the data bounds what it may
  cost. When no cheaper one is bounded, the fastest is recommended.
- **speed-ups**: for each baseline, the paired ratio of the recommended configuration
  over it with its 95% interval (over a baseline the race dropped as slower, the wider
  interval at the level of the look that dropped it: `RaceRecord.claim`),
  `significant` only when the interval excludes 1.0. A
  baseline that *is* the recommended configuration has no speed-up to state (a ratio of
  one series with itself says nothing): it is named in `recommended.baselines` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from autotune.host.cgroups import parse_cpu_list
from autotune.racing.record import Finalist, RaceRecord
from autotune.search.space import NO_CPUSET, THREAD_PARAMS
from autotune.stats import MIN_PAIRS, PairedRatio


@dataclass(frozen=True)
class Verdict:
    """The answer of a race: the fastest, who is tied with it, the pick, the speed-ups."""

    fastest: Finalist
    recommended: Finalist
    #: (finalist, how many times faster the fastest is than it), the fastest first (its
    #: ratio 1, with no interval: a series against itself has none to state)
    tied: list[tuple[Finalist, PairedRatio]]
    #: baseline name -> how many times faster the recommended is than that baseline (every
    #: baseline but those in `recommended.baselines`)
    speedups: dict[str, PairedRatio]
    sentence: str
    #: feasible survivors with too few rounds paired with the fastest to compare
    not_raced: list[Finalist] = field(default_factory=list)


def cost(params: dict[str, object]) -> tuple[int, float]:
    """Threads in total, then pinned cores (no pinning: every core, i.e. infinite)."""
    threads = sum(int(params.get(name, 0)) for name in THREAD_PARAMS)  # type: ignore[call-overload]
    cpuset = params.get("cpuset")
    pinned = math.inf if cpuset in (None, NO_CPUSET) else len(parse_cpu_list(str(cpuset)))
    return threads, pinned


def _cheapness(finalist: Finalist) -> tuple[int, float, bool]:
    return (*cost(finalist.params), "tutorial" not in finalist.baselines)


def decide(record: RaceRecord, alpha: float = 0.05) -> Verdict | None:
    """The verdict of `record`; None when no feasible finalist was measured."""
    fastest = _fastest(record)
    if fastest is None:
        return None
    tied, not_raced = [], []
    for finalist in record.survivors:
        if not finalist.feasible or not finalist.measured:
            continue
        if finalist is fastest:  # a series against itself: 1, and no interval to state
            tied.append((finalist, PairedRatio(1.0, None, len(finalist.measured))))
            continue
        ratio = record.ratio(fastest, finalist, alpha)
        if ratio.ci is None:
            not_raced.append(finalist)
        elif not ratio.significant:
            tied.append((finalist, ratio))
    tied.sort(key=lambda pair: pair[0] is not fastest)
    bounded = [finalist for finalist, ratio in tied if finalist is fastest
               or (ratio.ci is not None and ratio.ci[1] <= 1 + record.precision)]
    recommended = min(bounded, key=_cheapness)
    speedups = {name: record.claim(recommended, finalist, alpha)
                for finalist in record.finalists if finalist is not recommended
                for name in finalist.baselines}
    sentence = _sentence(fastest, recommended, len(tied), record.precision) + _unraced(not_raced)
    return Verdict(fastest=fastest, recommended=recommended, tied=tied, speedups=speedups,
                   sentence=sentence, not_raced=not_raced)


def _fastest(record: RaceRecord) -> Finalist | None:
    """The feasible survivor with the best geometric mean among those raced for at least
    `MIN_PAIRS` rounds (one lucky measurement is no answer); the race's leader when none was."""
    raced = [f for f in record.survivors if f.feasible and len(f.measured) >= MIN_PAIRS]
    if not raced:
        return record.leader()
    return max(raced, key=lambda f: f.log_mean(record.direction))


def _sentence(fastest: Finalist, recommended: Finalist, tied: int, precision: float) -> str:
    if tied == 1:
        return (f"Recommended: {recommended.label}, the fastest; every other finalist compared "
                "with it was measured significantly slower.")
    others = f"{tied - 1} other configuration{'s' if tied > 2 else ''}"
    if recommended is fastest:
        return (f"Recommended: {recommended.label}, the fastest; {others} could not be told apart "
                f"from it, but none cheaper was shown to be within {precision:.0%} of it.")
    return (f"Recommended: {recommended.label}, the cheapest (fewest threads, then fewest pinned "
            f"cores, then the tutorial's settings) of the {tied} configurations statistically tied "
            f"with the fastest, {fastest.label}, and shown to be within {precision:.0%} of it.")


def _unraced(not_raced: list[Finalist]) -> str:
    """What the sentence adds of finalists with too few rounds to compare."""
    if not not_raced:
        return ""
    count = len(not_raced)
    return (f" {count} configuration{'s were' if count > 1 else ' was'} not raced long enough "
            "to be compared with it (fewer than three rounds): no claim is made of "
            f"{'them' if count > 1 else 'it'}.")
