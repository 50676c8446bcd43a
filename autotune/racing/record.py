"""What a race measured and may claim: its finalists, their rounds, the paired ratios.

`RaceRecord` is the stored `racing` study attr (`to_dict`/`from_dict`): every finalist's
value per round (None where it was not measured), why and at which look it was dropped.
A speed-up over a finalist the race dropped as slower is claimed at the level of the
look that dropped it (`Finalist.dropped_alpha`, a repeated confidence interval), not at
95%: see autotune.racing.race. A fleet's races are pooled (`pooled`) with each worker's
rounds kept a block of their own, so every ratio pairs two configurations of one round
on one host.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from autotune.record.schema import (
    StudyAttr,
    params_key,
)
from autotune.search.space import describe_params
from autotune.stats import PairedRatio, paired_ratio

#: the race's error rate: the chance that any configuration as fast as the leader is dropped
ALPHA = 0.05
#: the finalist role of the best single-instance configuration
SINGLE_INSTANCE = "best single instance"


@dataclass
class Finalist:
    """One raced configuration: the trial that found it, or the baselines it is."""

    trial: int
    params: dict[str, object]
    feasible: bool
    baselines: list[str] = field(default_factory=list)
    #: one entry per round the race ran; None where it was not measured (dropped, failed)
    values: list[float | None] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    dropped_round: int | None = None
    dropped_reason: str | None = None
    #: the per-comparison level of the look that dropped it as slower (None: not dropped,
    #: or dropped for failing), at which the report states a speed-up over it
    dropped_alpha: float | None = None

    @property
    def label(self) -> str:
        names = f" ({', '.join(self.baselines)})" if self.baselines else ""
        return f"{describe_params(self.params)}{names}"

    @property
    def alive(self) -> bool:
        return self.dropped_round is None

    @property
    def measured(self) -> list[float]:
        return [value for value in self.values if value is not None]

    def log_mean(self, direction: str) -> float:
        """Mean log speed (higher = faster), i.e. the log of the geometric mean, signed."""
        sign = -1.0 if direction == "minimize" else 1.0
        return sign * statistics.fmean(math.log(value) for value in self.measured)


@dataclass
class RaceRecord:
    """Everything the race measured and decided; stored in the study as `StudyAttr.RACING`."""

    direction: str
    precision: float
    budget_s: float
    alpha: float = ALPHA
    finalists: list[Finalist] = field(default_factory=list)
    rounds: int = 0
    seconds: float = 0.0
    stopped: str = "not run"
    #: the workers (`hostname:pid`) whose rounds these are: one, or several when pooled
    workers: list[str] = field(default_factory=list)
    #: how busy the host was in each round (autotune.host.load): `{"foreign_cpu", "steal",
    #: "busy", "remeasured"}`; empty where it was not metered
    loads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hosts(self) -> list[str]:
        """The distinct hosts whose rounds these are."""
        return sorted({worker.rpartition(":")[0] or worker for worker in self.workers})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RaceRecord":
        finalists = [Finalist(**finalist) for finalist in data.get("finalists", [])]
        return cls(**{**data, "finalists": finalists})

    @property
    def survivors(self) -> list[Finalist]:
        return [finalist for finalist in self.finalists if finalist.alive]

    def leader(self) -> Finalist | None:
        """The feasible survivor with the best geometric mean (None before any value)."""
        ranked = [f for f in self.survivors if f.feasible and f.measured]
        return max(ranked, key=lambda f: f.log_mean(self.direction), default=None)

    def ratio(self, faster: Finalist, other: Finalist, alpha: float = ALPHA) -> PairedRatio:
        """How many times faster `faster` is than `other`, paired by round."""
        return paired_ratio(self.direction, faster.values, other.values, alpha)

    def claim(self, faster: Finalist, other: Finalist, alpha: float = ALPHA) -> PairedRatio:
        """`ratio` as the report may claim it: at `alpha`, or at the level of the look that
        dropped `other` as slower when that is stricter (see the module docstring)."""
        return self.ratio(faster, other, min(alpha, other.dropped_alpha or alpha))


def stored_race(attrs: dict[str, Any]) -> RaceRecord | None:
    """The race a study's attrs hold: every worker's own race pooled when several workers
    raced (a fleet), else the one race; None when nothing was raced."""
    races = [RaceRecord.from_dict(value) for key, value in sorted(attrs.items())
             if key.startswith(StudyAttr.RACING_OF)]
    if len(races) > 1:
        return pooled(races)
    return RaceRecord.from_dict(attrs[StudyAttr.RACING]) if StudyAttr.RACING in attrs else None


def pooled(races: Sequence[RaceRecord]) -> RaceRecord:
    """Several workers' races of the same finalists as one record, each worker's rounds a
    block of their own (see the module docstring). A finalist one worker did not race is
    None in that worker's rounds; a finalist is dropped only where every race that
    measured it dropped it (a drop is one host's verdict, on that host's rounds)."""
    keys = list(dict.fromkeys(params_key(f.params) for race in races for f in race.finalists))
    entries: dict[tuple, list[tuple[int, Finalist]]] = {key: [] for key in keys}
    values: dict[tuple, list[float | None]] = {key: [] for key in keys}
    offset = 0
    for race in races:
        own = {params_key(f.params): f for f in race.finalists}
        for key in keys:
            theirs = own.get(key)
            raced = theirs.values if theirs is not None else []
            values[key] += raced + [None] * (race.rounds - len(raced))
            if theirs is not None:
                entries[key].append((offset, theirs))
        offset += race.rounds
    return RaceRecord(
        direction=races[0].direction, precision=races[0].precision,
        budget_s=races[0].budget_s, alpha=races[0].alpha,
        finalists=[_merged(entries[key], values[key]) for key in keys], rounds=offset,
        seconds=max(race.seconds for race in races),
        stopped=", ".join(dict.fromkeys(race.stopped for race in races)),
        workers=[worker for race in races for worker in race.workers],
        loads=[load for race in races for load in race.loads])


def _merged(entries: list[tuple[int, Finalist]], values: list[float | None]) -> Finalist:
    """One finalist of a pooled record from its (round offset, finalist) in each race."""
    first = entries[0][1]
    drops = [(offset + (f.dropped_round or 0), f.dropped_reason) for offset, f in entries
             if not f.alive]
    dropped = drops[-1] if len(drops) == len(entries) else (None, None)
    alphas = [f.dropped_alpha for _, f in entries if f.dropped_alpha is not None]
    return Finalist(
        trial=first.trial, params=dict(first.params),
        feasible=any(f.feasible for _, f in entries),
        baselines=list(dict.fromkeys(b for _, f in entries for b in f.baselines)),
        values=values, failures=[failure for _, f in entries for failure in f.failures],
        dropped_round=dropped[0], dropped_reason=dropped[1],
        dropped_alpha=min(alphas) if dropped[0] is not None and alphas else None)
