"""Racing the finalists after the search, and what the race lets us claim.

    race      the rounds, the sequential paired tests that drop the slower, the stopping
              rules; how a round measures is the caller's (`MeasureRound`)
    record    `Finalist` and `RaceRecord` (the stored `racing` attr), paired ratios and
              claims, a fleet's races pooled
    verdict   tied, recommended, significant speed-ups (`decide`)

Nothing here starts a server: the tuner hands the race a `MeasureRound`
(`autotune.measure.SideBySide`, or `one_at_a_time` over a measurement).
"""

from autotune.racing.race import MeasureRound, one_at_a_time, pick_finalists, race, race_study
from autotune.racing.record import ALPHA, SINGLE_INSTANCE, Finalist, RaceRecord, pooled, stored_race
from autotune.racing.verdict import Verdict, decide

__all__ = ["ALPHA", "SINGLE_INSTANCE", "Finalist", "MeasureRound", "RaceRecord", "Verdict",
           "decide", "one_at_a_time", "pick_finalists", "pooled", "race", "race_study",
           "stored_race"]
