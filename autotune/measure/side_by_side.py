"""Measuring several configurations side by side: all their servers up at once, requests
alternating between them in short blocks.

Why. On a shared host the whole machine's speed drifts by 10-40% within seconds. One
server's batch-1 latency, read in one-second chunks over 30 s, went 1.3 -> 2.2 ms in one
life and 1.9 -> 3.5 -> 2.0 ms in another. Measured one after another, each with its own
restart, two configurations of one round are 10-15 s apart, so a round's ratio is mostly
that drift: the per-round ratios of one pair spread by +-25% on this 2-core VM. Started
together and measured in alternating half-second blocks, the two meet the same drift:
the same pair's round ratios then agreed within 2-3% (online 1.24, 1.21, 1.23; batch
1.45, 1.45, 1.47 in three rounds), and two servers of one configuration in the same
round came within 0-5% of each other.

How. `SideBySide` measures one round: it starts a fresh server (an instance group, so a
configuration may be several pinned instances) for each configuration, all at once,
then visits them in turn in the order given (the race rotates it), one block each,
until every configuration has enough (`autotune.measure.blocks`: online and batch, a
few settling requests then one window of batch-1 requests or a few large batches, until
precise or `ROUND_CAP_S`; server mode, one peak at the bound refined around the last,
autotune.measure.peak_rounds); then it stops them all. A configuration's value is the
geometric mean of its blocks' values (each block's own objective). A server that does
not start, stops answering, or fails its measurement is that configuration's
`MeasurementError`; the others go on.

While one is measured the others idle, each in its own process. A block begins with
`PAUSE_S` of quiet and a few settling requests (not counted), so that the threads of
the server measured before it have stopped spinning. The price is memory: a round holds
every finalist's server at once, so where their trials' servers would not fit in the
host's available memory together, the round runs in consecutive groups that do.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Callable, Sequence

import psutil

from autotune.errors import MeasurementError
from autotune.launch.base import Launcher
from autotune.measure.blocks import RoundBlocks
from autotune.measure.running import (
    CLIENT_ERRORS,
    RunningServer,
    running_server,
    stopped_answering,
)
from autotune.progress import Progress
from autotune.protocols import GRPC
from autotune.racing.race import Record
from autotune.search.space import describe_params, settings_from_params

#: seconds of quiet before each block, so that the threads of the server measured before
#: it stop spinning and do not slow it: without it, in batch, a block after one of an
#: intra=2 server ran 25-40% slower than the same configuration's block after an intra=1
#: one; with 0.3 s (or 1 s) two servers of one configuration came within 0-3%
PAUSE_S = 0.3
#: the share of the host's available memory a round's servers may take together: the
#: rest is left to the tuner itself, the page cache and the servers' growth under load
MEMORY_SHARE = 0.8

Params = dict[str, object]
#: the memory (MiB) a configuration's servers were measured to take, None when unknown
MemoryOf = Callable[[Params], "float | None"]


def available_mb() -> float:
    """The host's available memory in MiB (psutil: free plus reclaimable)."""
    return psutil.virtual_memory().available / 2**20


def fitting_groups(sizes_mb: Sequence[float | None], room_mb: float) -> list[list[int]]:
    """The indexes of `sizes_mb`, in order, cut into consecutive groups whose sizes add up
    to at most `room_mb`; a configuration too large for the room alone still gets a
    group of its own (its trial ran alone too). An unknown size counts as the largest
    known one (nothing known: as nothing)."""
    known = [size for size in sizes_mb if size is not None]
    unknown = max(known, default=0.0)
    groups: list[list[int]] = []
    used = math.inf
    for index, size in enumerate(sizes_mb):
        size = unknown if size is None else size
        if used + size > room_mb:
            groups.append([])
            used = 0.0
        groups[-1].append(index)
        used += size
    return groups


class SideBySide:
    """Measures rounds of configurations side by side (see the module docstring).

    `make_launcher` builds one more launcher (the tuner's: an instance group of its
    `--server` kind); a round of n configurations needs n, kept between rounds and
    closed on exit. `memory_of` tells what a configuration's servers took when its
    trial measured them: a round whose servers would not fit in `MEMORY_SHARE` of the
    host's available memory (`available`) runs in consecutive groups that do, each
    side by side (`fitting_groups`), rather than swap or meet the OOM killer.
    """

    def __init__(self, make_launcher: Callable[[], Launcher], blocks: RoundBlocks,
                 start_timeout_s: float, request_timeout_s: float, protocol: str = GRPC,
                 progress: Progress | None = None,
                 memory_of: MemoryOf = lambda params: None,
                 available: Callable[[], float] = available_mb) -> None:
        self.make_launcher = make_launcher
        self.blocks = blocks
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self.protocol = protocol
        self.progress = progress or Progress()
        self.memory_of = memory_of
        self.available = available
        self._launchers: list[Launcher] = []

    def __enter__(self) -> "SideBySide":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for launcher in self._launchers:
            launcher.__exit__(*exc_info)

    def server_pids(self) -> list[int]:
        """The host pids of every server of the round now running."""
        return [pid for launcher in self._launchers for pid in launcher.server_pids()]

    def stopped_cpu_s(self) -> float:
        """CPU seconds of the rounds' servers already stopped that no tuner process holds."""
        return sum(launcher.stopped_cpu_s() for launcher in self._launchers)

    def __call__(self, configs: Sequence[Params], record: Record) -> None:
        """Measure one round of `configs`; `record(index, value or error)` once for each."""
        groups = fitting_groups([self.memory_of(params) for params in configs],
                                MEMORY_SHARE * self.available())
        while len(self._launchers) < max((len(group) for group in groups), default=0):
            self._launchers.append(self.make_launcher())
        for group in groups:
            self._measure_group(configs, group, record)

    def _measure_group(self, configs: Sequence[Params], group: list[int],
                       record: Record) -> None:
        """The configurations at `group`'s indexes side by side, on the first launchers."""
        def in_round(at: int, outcome: float | MeasurementError) -> None:
            record(group[at], outcome)

        with ExitStack() as stack:
            running = self._start_all([configs[index] for index in group], stack, in_round)
            together = "" if len(group) == len(configs) else (
                f" (of {len(configs)}: memory allows {len(group)} at once)")
            self.progress.phase(f"measuring {len(running)} side by side{together}")
            blocks = self._alternate([configs[index] for index in group], running, in_round)
        for at, values in blocks.items():
            in_round(at, math.exp(statistics.fmean(math.log(value) for value in values)))

    def _start_all(self, configs: Sequence[Params], stack: ExitStack,
                   record: Record) -> dict[int, RunningServer]:
        """Start every configuration's server at once (configuration i on launcher i),
        each in its own thread, and wait for them together; the ones that became
        AVAILABLE, by index (each on `stack`, so they stop with it). A failed start is
        recorded as its configuration's error.

        Together, because a start is mostly one process loading TensorFlow and the
        model, one core's work, and the host has more: on this 2-core VM eight online
        servers started one after another took 40-43 s of a 75-s round, and together
        23-27 s (1.45-1.85x faster, three alternated pairs, 2026-11-29). On an interrupt
        every launcher is stopped first, so the waiting threads return at once."""
        for params in configs:
            self.progress.step(f"starting {describe_params(params)}")
        self.progress.phase(f"starting {len(configs)} servers at once")
        running: dict[int, RunningServer] = {}
        lock = threading.Lock()

        def start(index: int) -> None:
            server = running_server(self._launchers[index], settings_from_params(configs[index]),
                                    self._launchers[index].model.name, self.start_timeout_s,
                                    request_timeout_s=self.request_timeout_s,
                                    protocol=self.protocol)
            started = server.__enter__()
            with lock:
                stack.push(server.__exit__)
                running[index] = started

        with ThreadPoolExecutor(max_workers=len(configs)) as pool:
            futures = [pool.submit(start, index) for index in range(len(configs))]
            try:
                for index, future in enumerate(futures):
                    error = future.exception()
                    if isinstance(error, MeasurementError):
                        record(index, error)
                    elif error is not None:
                        raise error
            except BaseException:
                for launcher in self._launchers:
                    launcher.stop()
                raise
        return dict(sorted(running.items()))

    def _alternate(self, configs: Sequence[Params], running: dict[int, RunningServer],
                   record: Record) -> dict[int, list[float]]:
        """One block of each running configuration (`configs[index]` on `running[index]`)
        in turn until all have enough; the block values of each that kept answering."""
        blocks: dict[int, list[float]] = {index: [] for index in running}
        seconds = dict.fromkeys(running, 0.0)
        while running and not all(self.blocks.enough(blocks[index], seconds[index])
                                  for index in running):
            for index, server in list(running.items()):
                began = time.monotonic()
                time.sleep(PAUSE_S)
                try:
                    value = self.blocks.measure(configs[index], server)
                except (*CLIENT_ERRORS, MeasurementError) as error:
                    record(index, error if isinstance(error, MeasurementError)
                           else stopped_answering(self._launchers[index], error))
                    del running[index], blocks[index]
                    continue
                seconds[index] += time.monotonic() - began
                blocks[index].append(value)
        return blocks
