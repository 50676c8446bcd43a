"""What a side-by-side round measures of each running server: its blocks, and when to stop.

A racing round (autotune.measure.side_by_side) starts every configuration's server at
once and visits them in turn, one block each, until every configuration has enough.
What a block is and what is enough depends on the mode (`racing_blocks`):

- online and batch (`PreciseBlocks`): a block is a short burst of the workload (one
  latency window, or a few large batches); a configuration has enough at `MIN_BLOCKS`
  blocks whose 95% interval is within the workload's precision, or after `cap_s`
  seconds of blocks;
- server (autotune.measure.peak_rounds.PeakRounds): one block, the highest rate under
  the p99 bound, found by a full peak search the first time and by a short refinement
  around the last answer after that.

The round's value of a configuration is the geometric mean of its blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from autotune.measure.peak_rounds import PeakRounds
from autotune.measure.running import RunningServer
from autotune.measure.workload import Workload
from autotune.progress import Progress
from autotune.stats import relative_half_width

#: blocks every configuration gets in a round before its precision may end it
MIN_BLOCKS = 5
#: seconds of blocks (their pauses included) each configuration gets in a round at most:
#: a few half-second blocks bring two servers of one configuration within 1-5% of each
#: other here, and the race gains more from more rounds (its t quantile shrinks with
#: them) than from longer ones
ROUND_CAP_S = 3.0

Params = dict[str, object]
#: the value a configuration's search trials found, None when it has none
ValueOf = Callable[[Params], "float | None"]


class RoundBlocks(Protocol):
    """How a side-by-side round measures one running configuration, a block at a time."""

    def measure(self, params: Params, server: RunningServer) -> float:
        """One block's value of the configuration `params` running as `server`."""

    def enough(self, values: Sequence[float], seconds: float) -> bool:
        """Whether a configuration with these block values, after `seconds` of blocks,
        is measured for this round."""


@dataclass
class PreciseBlocks:
    """Online and batch blocks (`Workload.block`) until precise or `cap_s` is spent."""

    workload: Workload
    cap_s: float = ROUND_CAP_S
    block: Workload = field(init=False)

    def __post_init__(self) -> None:
        self.block = self.workload.block()

    def measure(self, params: Params, server: RunningServer) -> float:
        return self.block.measure(server.clients, None, server.in_flight)[0]

    def enough(self, values: Sequence[float], seconds: float) -> bool:
        if seconds >= self.cap_s:
            return True
        return (len(values) >= MIN_BLOCKS
                and relative_half_width(values) <= self.workload.precision)


def racing_blocks(workload: Workload, found: ValueOf = lambda params: None,
                  cap_s: float = ROUND_CAP_S, progress: Progress | None = None) -> RoundBlocks:
    """The blocks of the workload's mode: a server-mode workload (one with a
    `server_load`) refines peaks, starting from what the search `found`; the others
    alternate precise blocks of at most `cap_s` seconds."""
    if workload.server_load is not None:
        return PeakRounds(workload, found, progress)
    return PreciseBlocks(workload, cap_s)
