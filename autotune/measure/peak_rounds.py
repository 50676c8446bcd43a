"""Server-mode racing rounds: the rate each finalist sustains under the p99 bound, refined
around the peak already found, so that a round costs seconds, not minutes.

A search trial's peak search (autotune.measure.peak) is ~10 LoadGen runs, a minute or
more; raced one after another, a budget of minutes bought one or two rounds. But the
race needs many cheap paired rounds, not a few precise ones, and after the search the
peak is known to within its bracket. So a configuration's first racing round starts
from the rate its search trials found (else, never searched, it runs a full peak
search), and every round after starts from its previous round's answer: a LoadGen run
at that rate, then up while the bound holds (5%, then galloping: 10%, 22%...) or down
by 5% while it is missed, until the verdict changes, then bisection to 5%
(`PeakPolicy.around`), a miss on the way up confirmed as in a full search. A peak that
has not moved costs three short runs (2 s or 1,024 queries each), one that moved by 10%
four or five, one at twice the start about nine (not a round capped at 1.89x, as 5%
steps in 14 runs were).

The round's value is the rate at which p99 reaches the bound (`PeakResult.at_bound`):
interpolated, on log p99 against log rate, between the bracket's two runs (the highest
rate that met the bound and the lowest that missed it by its p99), else the highest
rate that met it, as a trial's `qps_at_slo`. Interpolated, because a staircase's
answer alone repeats exactly while the peak does not move, and three equal values
make a t interval of no width. So the paired ratio of two finalists' values in one
round is a ratio of requests/s at the bound, and the race's
sequential test (autotune.racing.race) drops a finalist slower than the leader exactly
as it does in online and batch. The servers of a round are all up at once
(autotune.measure.side_by_side) but measured one at a time, in the round's rotated
order: two LoadGen runs at once would share the host's cores and measure each other.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from autotune.measure.running import RunningServer
from autotune.measure.workload import Workload
from autotune.progress import Progress
from autotune.search.space import describe_params

Params = dict[str, object]


class PeakRounds:
    """The blocks of a server-mode round: one per configuration, its peak at the bound
    refined around its last one (see the module docstring)."""

    def __init__(self, workload: Workload, found: Callable[[Params], float | None],
                 progress: Progress | None = None) -> None:
        assert workload.server_load is not None, "a server-mode round needs a ServerLoad"
        self.load = workload.server_load
        self.rows = workload.rows
        self.found = found
        self.progress = progress or Progress()
        #: each configuration's last peak, by its description
        self.peaks: dict[str, float] = {}

    def measure(self, params: Params, server: RunningServer) -> float:
        """The configuration's peak at the bound: refined around its last one, or around
        what its search trials found, else searched in full."""
        key = describe_params(params)
        last = self.peaks.get(key) or self.found(params)
        policy = self.load.policy if last is None else self.load.policy.around(last)
        self.progress.phase(f"{key}: " + ("peak search" if last is None
                                          else f"refining around {last:,.0f} requests/s"))
        peak, _ = replace(self.load, policy=policy).search(server.clients, self.rows,
                                                           self.progress.phase)
        self.peaks[key] = value = peak.at_bound(self.load.settings.bound_ms)
        return value

    def enough(self, values: Sequence[float], seconds: float) -> bool:
        """One peak a round: its runs already bracket it to the precision."""
        return bool(values)
