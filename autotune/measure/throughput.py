"""Batch: the throughput of one large request sent again and again, until precise.

As in the tutorial, the same request of `--batch-size` rows is sent until the 95%
interval of the mean request time is within `precision` of it (at least `MIN_ITERATIONS`,
at most `iterations` requests); the value is samples per second over the whole run. With
several server instances the requests go to all of them at once, each kept busy with
`in_flight` requests outstanding; the precision is that of the mean round trip over all
of them and the samples per second are the total. Each request's own samples/s is kept
as a trial attr (`request_sps`) for the HTML report.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from autotune.measure.rows import RequestRows, Sender
from autotune.options import DEFAULT_PRECISION
from autotune.progress import PhaseCallback, notify
from autotune.stats import finite_or_none, relative_half_width

#: batch requests measured at least, so that the interval has a few degrees of freedom
MIN_ITERATIONS = 5


@dataclass(frozen=True)
class ThroughputResult:
    """Samples per second of `iterations` requests of `batch_size` rows, over all instances."""

    samples_per_s: float
    batch_size: int
    iterations: int
    seconds: float
    precision: float
    converged: bool
    instances: int = 1
    in_flight: int = 1
    #: samples per second of each request, in the order answered (see `measure_throughput`)
    request_sps: tuple[float, ...] = ()

    def attrs(self) -> dict[str, float | int | bool | list[float] | None]:
        return {"throughput_sps": self.samples_per_s, "measured_requests": self.iterations,
                "precision": finite_or_none(self.precision), "converged": self.converged,
                "in_flight": self.in_flight,
                "request_sps": [round(value, 1) for value in self.request_sps]}


def measure_throughput(clients: Sequence[Sender], rows: RequestRows, iterations: int,
                       in_flight: int = 1, warmup_requests: int = 2,
                       precision: float = DEFAULT_PRECISION,
                       on_phase: PhaseCallback | None = None,
                       on_value: Callable[[float], None] | None = None) -> ThroughputResult:
    """Throughput of one request of all the `rows`, sent until precise (at most `iterations`).

    Every client (one per server instance) is driven at once, each with up to
    `in_flight` requests outstanding; one client with `in_flight=1` sends them one after
    another. The measurement stops once the 95% interval of the mean round trip, over
    every request answered, is within `precision` of it (from `MIN_ITERATIONS`, and at
    least one round of every client's `in_flight`), or at `iterations` requests; the
    samples per second are those of every request over the wall time. Each request's own
    throughput is its samples times the requests outstanding at once over its round trip
    (Little's law: with one outstanding, its samples over its time), so the per-request
    values of one and of several instances are comparable. `on_value` hears each
    request's own throughput as it is answered (the pruner's evidence,
    autotune.search.pruning); whatever it raises stops every client and ends the
    measurement.
    """
    request = clients[0].request(rows)
    concurrent = len(clients) * in_flight
    notify(on_phase, "warm-up")
    _in_parallel(clients,
                 lambda client: _drive(client, request, in_flight, _Quota(warmup_requests)))
    notify(on_phase, "measuring")
    per_request = (None if on_value is None
                   else lambda seconds: on_value(len(rows) * concurrent / seconds))
    quota = _Quota(max(iterations, concurrent), max(MIN_ITERATIONS, concurrent), precision,
                   on_value=per_request)
    begin = time.perf_counter_ns()
    _in_parallel(clients, lambda client: _drive(client, request, in_flight, quota))
    seconds = (time.perf_counter_ns() - begin) / 1e9
    round_trips = np.array(quota.round_trips)
    reached = relative_half_width(quota.round_trips)
    return ThroughputResult(samples_per_s=len(rows) * len(round_trips) / seconds,
                            batch_size=len(rows), iterations=len(round_trips), seconds=seconds,
                            precision=reached, converged=reached <= precision,
                            instances=len(clients), in_flight=in_flight,
                            request_sps=tuple((len(rows) * concurrent / round_trips).tolist()))


class _Quota:
    """The requests the clients of one measurement may still send, shared by their threads:
    at most `most`, and none more once `least` are answered with the mean round trip
    within `precision` (None: send `most`), or once `on_value`, told each round trip,
    raised."""

    def __init__(self, most: int, least: int = 0, precision: float | None = None,
                 on_value: Callable[[float], None] | None = None) -> None:
        self.most, self.least, self.precision = most, least, precision
        self.on_value = on_value
        self.round_trips: list[float] = []
        self._sent = 0
        self._enough = False
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Whether one more request may be sent (and count it as sent)."""
        with self._lock:
            if self._enough or self._sent >= self.most:
                return False
            self._sent += 1
            return True

    def answered(self, seconds: float) -> None:
        """Record one round trip; enough once the interval is within the precision."""
        with self._lock:
            self.round_trips.append(seconds)
            self._enough = (self.precision is not None and len(self.round_trips) >= self.least
                            and relative_half_width(self.round_trips) <= self.precision)
            if self.on_value is not None:
                try:
                    self.on_value(seconds)
                except BaseException:
                    self._enough = True  # the other clients send no more
                    raise


def _drive(client: Sender, request: Any, in_flight: int, quota: _Quota) -> None:
    """Send `request` while `quota` allows, up to `in_flight` outstanding; record each
    round trip in `quota`."""
    pending: deque[tuple[int, Any]] = deque()

    def receive_one() -> None:
        sent_at, future = pending.popleft()
        client.receive(future)
        quota.answered((time.perf_counter_ns() - sent_at) / 1e9)

    while quota.take():
        pending.append((time.perf_counter_ns(), client.send_async(request)))
        if len(pending) >= in_flight:
            receive_one()
    while pending:
        receive_one()


def _in_parallel(clients: Sequence[Sender], action: Callable[[Sender], None]) -> None:
    """`action` on every client at once (in this thread when there is one client)."""
    if len(clients) == 1:
        action(clients[0])
        return
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for future in [pool.submit(action, client) for client in clients]:
            future.result()
