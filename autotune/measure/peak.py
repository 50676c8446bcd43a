"""`--mode server`: the highest request rate a server sustains with p99 latency under a bound.

Each step is one LoadGen Server-scenario run (autotune.measure.loadgen) at a target rate,
Poisson arrivals of batch-1 Predicts (of eval pairs, or of recorded requests' rows). The
search brackets the peak: it ramps up (doubling from `start_qps`: `PeakPolicy.step`)
until a rate misses the bound, or, when the first rate already misses, halves down to
`min_qps`; then it bisects (geometric midpoints) between the highest rate that met the
bound and the lowest that missed until they are within `precision` (5%). A racing round
refines a peak already found (`PeakPolicy.around`): it starts there and steps by the
precision, so a peak that has not moved is bracketed in three runs, and gallops up (each
step's factor the square of the last) when the peak has moved, before it bisects
(autotune.measure.peak_rounds).

On a shared host one short run passes or fails by chance (one scheduling hiccup decides
its p99), and a miss at the start rate or on the way up decides the whole search: the
same configuration measured 135-192 requests/s in two searches and 1,181 in a third
(BENCHMARKS.md). So with `PeakPolicy.confirm_misses` a miss at the start rate or while
ramping up is run again, and a third time if the two disagree: the rate's verdict is
the majority. Misses while halving down or bisecting are taken as they come (a run at
a low rate lasts the longest, and a bisection step moves the answer by little).

Before the first judged run, one short warm-up run at the start rate (its verdict not
used): a fresh server's first concurrent requests are slow (`ServerLoad._warmup_settings`).

The answer, `qps_at_slo`, is the highest rate that met the bound; its p50/p95/p99 and
every run (with its p99 and verdict) go into the trial attrs, and each run's LoadGen
logs stay in the measurement's folder.

A host that misses the bound even at `min_qps` raises `BoundMissedError` (a
`MeasurementError`), which the study records as a FAIL trial with that reason, the
p99 it saw at that rate and every rate tried.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from autotune.errors import BoundMissedError
from autotune.measure.grpc_client import ServingClient
from autotune.measure.loadgen import PredictSUT, RunResult
from autotune.measure.rows import RequestRows
from autotune.options import PeakPolicy, RunSettings
from autotune.progress import PhaseCallback
from autotune.record.schema import TrialAttr

#: the warm-up LoadGen run before a search's first judged one: at least this long and
#: this many queries, at the rate the search starts at (its verdict is not used)
WARMUP_RUN_S = 0.5
WARMUP_RUN_QUERIES = 256


@dataclass(frozen=True)
class PeakResult:
    """The peak rate under the bound, the run at that rate, and every run of the search."""

    qps_at_slo: float
    #: the lowest rate that missed the bound (None: none missed up to `max_qps`)
    ceiling_qps: float | None
    at_peak: RunResult
    runs: tuple[RunResult, ...]

    def at_bound(self, bound_ms: float) -> float:
        """The rate at which p99 reaches `bound_ms`: interpolated (log p99 against log
        rate) between the highest rate that met the bound and the lowest that missed it,
        when that miss was its p99's; else the highest rate that met it. Within a 5%
        bracket this is the peak with a resolution finer than the bracket (a racing
        round's value, autotune.measure.peak_rounds)."""
        missed = [run for run in self.runs if run.target_qps == self.ceiling_qps]
        low, high = self.at_peak, max(missed, key=lambda run: run.p99_ms, default=None)
        if high is None or not low.p99_ms < bound_ms < high.p99_ms or low.p99_ms <= 0:
            return self.qps_at_slo
        share = math.log(bound_ms / low.p99_ms) / math.log(high.p99_ms / low.p99_ms)
        return low.target_qps * (high.target_qps / low.target_qps) ** share

    def attrs(self) -> dict[str, object]:
        """Trial user attrs: `qps_at_slo`, its percentiles, and the rates tried."""
        return {TrialAttr.QPS_AT_SLO: self.qps_at_slo, "qps_ceiling": self.ceiling_qps,
                "slo_latency_ms_p50": self.at_peak.p50_ms,
                "slo_latency_ms_p95": self.at_peak.p95_ms,
                "slo_latency_ms_p99": self.at_peak.p99_ms,
                TrialAttr.RATES_TRIED: [run.row() for run in self.runs],
                "measured_requests": sum(run.queries for run in self.runs)}


def find_peak(run: Callable[[float], RunResult], policy: PeakPolicy = PeakPolicy(),
              bound_ms: float | None = None,
              on_ceiling: Callable[[float], None] | None = None) -> PeakResult:
    """Bracket and bisect the highest rate whose run meets the bound; see the module
    docstring. `on_ceiling` hears each rate that missed the bound, an upper bound of the
    peak (the pruner's evidence, autotune.search.pruning); whatever it raises ends the
    search."""
    runs: list[RunResult] = []
    best: RunResult | None = None
    ceiling: float | None = None

    def measured(rate: float) -> RunResult:
        runs.append(run(rate))
        return runs[-1]

    def attempt(rate: float, confirm: bool = False) -> bool:
        """One rate's verdict: one run, or with `confirm` the majority of up to three."""
        nonlocal best, ceiling
        results = [measured(rate)]
        if confirm and not results[0].meets_bound and len(runs) < policy.max_runs:
            results.append(measured(rate))
            if results[1].meets_bound and len(runs) < policy.max_runs:
                results.append(measured(rate))
        met = [result for result in results if result.meets_bound]
        if 2 * len(met) > len(results):
            best = met[-1]
            return True
        ceiling = rate if ceiling is None else min(ceiling, rate)
        if on_ceiling is not None:
            on_ceiling(ceiling)
        return False

    rate = policy.start_qps
    if attempt(rate, confirm=policy.confirm_misses):
        step = policy.step
        while ceiling is None and rate * step <= policy.max_qps and len(runs) < policy.max_runs:
            rate *= step
            attempt(rate, confirm=policy.confirm_misses)
            if policy.gallop:
                step *= step
    else:
        # down, the step stays: a miss above the peak is every run's verdict, and a slow
        # spell (2/2/2 threads on 2 vCPUs missed 10 ms at 105 requests/s for ~25 s,
        # 2026-12-06) would otherwise be galloped through to `min_qps`
        while best is None:
            rate /= policy.step
            if rate < policy.min_qps:
                raise BoundMissedError(_missed(runs[-1], bound_ms), runs[-1].p99_ms,
                                       [run.row() for run in runs])
            attempt(rate)
    assert best is not None
    while (ceiling is not None and not _within(ceiling / best.target_qps, policy.precision)
           and len(runs) < policy.max_runs):
        attempt(math.sqrt(best.target_qps * ceiling))
    return PeakResult(qps_at_slo=best.target_qps, ceiling_qps=ceiling, at_peak=best,
                      runs=tuple(runs))


def _within(ratio: float, precision: float) -> bool:
    """Whether a bracket's ratio is within the precision: a step of exactly the precision
    counts (its product with a rate comes back a rounding error wider)."""
    return ratio <= 1 + precision or math.isclose(ratio, 1 + precision)


def _missed(lowest: RunResult, bound_ms: float | None) -> str:
    bound = f"p99 <= {bound_ms:g} ms" if bound_ms is not None else "the p99 bound"
    errors = (f", {lowest.errors} failed requests (first: {lowest.first_error})"
              if lowest.errors else "")
    return (f"misses {bound} even at the lowest rate, {lowest.target_qps:.0f} requests/s: "
            f"p99 {lowest.p99_ms:.2f} ms{errors}")


@dataclass(frozen=True)
class ServerLoad:
    """How a server-mode trial measures: run settings, search policy, where logs go."""

    settings: RunSettings
    policy: PeakPolicy = PeakPolicy()
    log_root: Path = field(default_factory=lambda: Path("loadgen-logs"))

    def measure(self, clients: Sequence[ServingClient], rows: RequestRows,
                on_phase: PhaseCallback | None = None,
                on_value: Callable[[float], None] | None = None
                ) -> tuple[float, dict[str, object]]:
        """`qps_at_slo` and the trial attrs of one peak search (`search`); `on_value`
        hears each rate that missed the bound."""
        peak, attrs = self.search(clients, rows, on_phase, on_value)
        return peak.qps_at_slo, attrs

    def search(self, clients: Sequence[ServingClient], rows: RequestRows,
               on_phase: PhaseCallback | None = None,
               on_value: Callable[[float], None] | None = None
               ) -> tuple[PeakResult, dict[str, object]]:
        """One peak search against the `clients`' servers (several instances share the
        load, request by request), one batch-1 request per row of `rows`: its result and
        the trial attrs."""
        requests = [clients[0].request(row) for row in rows.split()]
        log_dir = self._new_log_dir()
        counter = itertools.count(1)
        with PredictSUT([client.address for client in clients],
                        [request.SerializeToString() for request in requests],
                        self.settings.request_timeout_s) as sut:
            if on_phase is not None:
                on_phase("warm-up")
            sut.run(self.policy.start_qps, self._warmup_settings(), log_dir / "warm-up")

            def run(rate: float) -> RunResult:
                step = next(counter)
                if on_phase is not None:
                    on_phase(f"LoadGen run {step} at {rate:,.0f} requests/s")
                return sut.run(rate, self.settings, log_dir / f"run-{step:02d}-{rate:.0f}qps")

            peak = find_peak(run, self.policy, self.settings.bound_ms, on_value)
        return peak, {**peak.attrs(), TrialAttr.LOADGEN_LOGS: str(log_dir),
                      TrialAttr.LOADGEN_CLIENT: sut.client.describe()}

    def _warmup_settings(self) -> RunSettings:
        """The warm-up run's: short. A fresh server's first concurrent requests wait on
        its worker threads' first calls (16 at once took 95 ms each here, against 1-2 ms
        one at a time), so the first run of a search missed a 25 ms bound at any rate:
        searches paid a confirming run for it, and a racing round's refinement, which
        takes misses as they come, stepped down every round (-3% a round, 14 rounds in a
        row). Requests sent one at a time do not reach those threads; a LoadGen run does."""
        return dataclasses.replace(self.settings, min_duration_s=WARMUP_RUN_S,
                                   min_queries=WARMUP_RUN_QUERIES)

    def _new_log_dir(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for index in itertools.count():
            path = self.log_root / f"{stamp}-{index}"
            if not path.exists():
                path.mkdir(parents=True)
                return path
        raise AssertionError("unreachable")
