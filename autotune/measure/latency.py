"""Online: batch-1 latency, one request at a time, until the objective is precise.

Each request is timed with the monotonic `perf_counter_ns`, in windows of `window`
requests, until the 95% interval of the objective is within `precision` of it (or a
request/time cap is hit). The interval is that of the mean of the windows' values (the
batch-means method: consecutive requests are correlated, windows of a few hundred much
less so); the statistics are those of all measured requests. The distribution (101
percentiles) is stored as a trial attr, so the HTML report can draw it for any study.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from autotune.measure.rows import RequestRows, Sender
from autotune.options import LatencyPolicy
from autotune.progress import PhaseCallback, notify
from autotune.stats import finite_or_none, relative_half_width


@dataclass(frozen=True)
class LatencyResult:
    """Batch-1 latency statistics in milliseconds over every measured request."""

    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    precision: float
    converged: bool
    #: the 0th..100th percentiles of the same requests: the distribution, compactly
    percentiles_ms: tuple[float, ...] = ()

    def statistic(self, objective: str) -> float:
        """The value of `--objective` (`mean`, `p50`, `p95` or `p99`)."""
        return float(getattr(self, f"{objective}_ms"))

    def attrs(self) -> dict[str, float | int | bool | list[float] | None]:
        """Trial user attrs, named as docs/DESIGN.md fixes them."""
        return {"latency_ms_mean": self.mean_ms, "latency_ms_p50": self.p50_ms,
                "latency_ms_p95": self.p95_ms, "latency_ms_p99": self.p99_ms,
                "measured_requests": self.requests, "precision": finite_or_none(self.precision),
                "converged": self.converged,
                "latency_ms_percentiles": [round(value, 4) for value in self.percentiles_ms]}


def latency_statistics(latencies_ms: np.ndarray) -> dict[str, float]:
    """Mean and percentiles of a set of latencies."""
    p50, p95, p99 = np.percentile(latencies_ms, [50, 95, 99])
    return {"mean": float(np.mean(latencies_ms)), "p50": float(p50), "p95": float(p95),
            "p99": float(p99)}


def measure_latency(client: Sender, rows: RequestRows, objective: str = "mean",
                    policy: LatencyPolicy = LatencyPolicy(),
                    on_phase: PhaseCallback | None = None,
                    on_value: Callable[[float], None] | None = None) -> LatencyResult:
    """Batch-1 latency over the `rows` given, one request each, cycled; see the module
    docstring. `on_value` hears each window's statistic as it is measured (the pruner's
    evidence, autotune.search.pruning); whatever it raises ends the measurement."""
    requests = [client.request(row) for row in rows.split()]
    notify(on_phase, "warm-up")
    for index in range(policy.warmup_requests):
        client.send(requests[index % len(requests)])
    notify(on_phase, "measuring")
    windows: list[np.ndarray] = []
    window_values: list[float] = []
    started = time.monotonic()
    sent = 0
    while True:
        latencies = np.empty(policy.window, dtype=np.float64)
        for slot in range(policy.window):
            request = requests[sent % len(requests)]
            begin = time.perf_counter_ns()
            client.send(request)
            latencies[slot] = (time.perf_counter_ns() - begin) / 1e6
            sent += 1
        windows.append(latencies)
        window_values.append(latency_statistics(latencies)[objective])
        if on_value is not None:
            on_value(window_values[-1])
        precision = relative_half_width(window_values)
        converged = len(windows) >= policy.min_windows and precision <= policy.precision
        capped = sent >= policy.max_requests or time.monotonic() - started >= policy.max_seconds
        if converged or capped:
            break
    measured = np.concatenate(windows)
    stats = latency_statistics(measured)
    return LatencyResult(mean_ms=stats["mean"], p50_ms=stats["p50"], p95_ms=stats["p95"],
                         p99_ms=stats["p99"], requests=sent, precision=precision,
                         converged=converged,
                         percentiles_ms=tuple(np.percentile(measured, np.arange(101)).tolist()))
