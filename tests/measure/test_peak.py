"""The peak-rate search on its own: bracketing and bisection over a known capacity."""

from __future__ import annotations

import dataclasses
import math

import pytest

from autotune.errors import BoundMissedError
from autotune.measure.loadgen import RunResult
from autotune.measure.peak import find_peak
from autotune.options import PeakPolicy


def _runs_against(capacity: float, errors_at: float | None = None):
    """A run function for a server that meets the bound up to `capacity` requests/s."""
    def run(rate: float) -> RunResult:
        ok = rate <= capacity
        return RunResult(target_qps=rate, scheduled_qps=rate, completed_qps=rate, queries=1000,
                         p50_ms=1.0, p95_ms=2.0, p99_ms=5.0 if ok else 50.0, valid=ok,
                         errors=1 if errors_at is not None and rate >= errors_at else 0,
                         log_dir="", first_error="UNAVAILABLE: queue full")
    return run


def test_ramps_up_then_bisects_to_within_the_precision() -> None:
    peak = find_peak(_runs_against(1234.0), PeakPolicy(start_qps=100, precision=0.05))
    assert peak.qps_at_slo <= 1234.0 < peak.ceiling_qps <= peak.qps_at_slo * 1.05
    rates = [run.target_qps for run in peak.runs]
    assert rates[:5] == [100, 200, 400, 800, 1600]
    assert peak.attrs()["rates_tried"][0] == {"qps": 100, "p50_ms": 1.0, "p95_ms": 2.0,
                                              "p99_ms": 5.0, "errors": 0, "ok": True}


def test_a_slow_host_is_searched_downwards() -> None:
    peak = find_peak(_runs_against(70.0), PeakPolicy(start_qps=200, min_qps=10, precision=0.05))
    assert peak.qps_at_slo <= 70.0 < peak.ceiling_qps <= peak.qps_at_slo * 1.05


def test_errors_fail_a_rate_even_within_the_latency_bound() -> None:
    peak = find_peak(_runs_against(5000.0, errors_at=900.0), PeakPolicy(start_qps=100))
    assert peak.qps_at_slo < 900.0


def test_missing_the_bound_at_the_lowest_rate_says_so() -> None:
    with pytest.raises(BoundMissedError, match=r"misses p99 <= 10 ms even at the lowest rate, "
                                               r"25 requests/s: p99 50.00 ms"):
        find_peak(_runs_against(1.0), PeakPolicy(start_qps=200, min_qps=25), bound_ms=10)


def test_the_search_stops_at_its_run_budget() -> None:
    peak = find_peak(_runs_against(1e9), PeakPolicy(start_qps=100, max_runs=4))
    assert len(peak.runs) == 4 and peak.ceiling_qps is None


def _unlucky(run, misses: set[int]):
    """`run`, except that its calls numbered in `misses` (from 0) miss the bound."""
    calls = iter(range(10_000))

    def unlucky_run(rate: float) -> RunResult:
        result = run(rate)
        if next(calls) in misses:
            return dataclasses.replace(result, p99_ms=50.0, valid=False)
        return result
    return unlucky_run


def test_an_unlucky_run_at_the_start_rate_is_outvoted_before_the_search_turns_down() -> None:
    peak = find_peak(_unlucky(_runs_against(1000.0), {0}), PeakPolicy(start_qps=200))
    rates = [run.target_qps for run in peak.runs]
    assert rates[:5] == [200, 200, 200, 400, 800]  # a miss, then two passes: it met the bound
    assert 950 <= peak.qps_at_slo <= 1000.0 < peak.ceiling_qps


def test_a_miss_while_ramping_up_counts_once_confirmed() -> None:
    peak = find_peak(_runs_against(1000.0), PeakPolicy(start_qps=250, precision=0.05))
    rates = [run.target_qps for run in peak.runs]
    assert rates[:5] == [250, 500, 1000, 2000, 2000]  # 2,000 missed twice: the ceiling
    assert peak.ceiling_qps <= 1050 and peak.qps_at_slo == 1000.0
    # the bisection that follows takes each run's verdict as it comes
    assert len(rates) == len(set(rates[4:])) + 4


def test_without_confirmation_one_run_decides_each_rate() -> None:
    peak = find_peak(_unlucky(_runs_against(1000.0), {0}),
                     PeakPolicy(start_qps=200, min_qps=50, confirm_misses=False))
    assert [run.target_qps for run in peak.runs][:2] == [200, 100]
    assert peak.qps_at_slo < 200


def test_a_peak_that_has_not_moved_is_refined_in_three_runs() -> None:
    # a racing round: start at the last peak, step by the precision, confirm the miss
    peak = find_peak(_runs_against(1020.0), PeakPolicy(precision=0.05).around(1000.0))
    assert [run.target_qps for run in peak.runs] == [1000.0, 1050.0, 1050.0]
    assert peak.qps_at_slo == 1000.0 and peak.ceiling_qps == 1050.0


def test_a_refinement_gallops_up_to_a_peak_that_moved_and_steps_down() -> None:
    # steps of 5%, then 10.25%: 1,158 missed twice, then the midpoint
    up = find_peak(_runs_against(1120.0), PeakPolicy(precision=0.05).around(1000.0))
    assert [round(run.target_qps) for run in up.runs] == [1000, 1050, 1158, 1158, 1102]
    down = find_peak(_runs_against(900.0), PeakPolicy(precision=0.05).around(1000.0))
    assert [round(run.target_qps) for run in down.runs] == [1000, 1000, 952, 907, 864]
    assert down.qps_at_slo <= 900.0 < down.ceiling_qps


def test_a_refinement_from_half_the_peak_reaches_it_in_a_few_runs() -> None:
    # a stale start (a search hit by a slow spell): 5% steps would need 15 runs to climb
    stale = find_peak(_runs_against(1000.0), PeakPolicy(precision=0.05).around(500.0))
    assert [round(run.target_qps) for run in stale.runs][:6] == [500, 525, 579, 704, 1039, 1039]
    assert len(stale.runs) <= 9 and 950 <= stale.qps_at_slo <= 1000.0 < stale.ceiling_qps


def test_one_unlucky_run_does_not_stop_a_refinement_on_its_way_up() -> None:
    # below the peak a hiccup fails one run's p99; the walk up goes on once outvoted
    unlucky = find_peak(_unlucky(_runs_against(1120.0), {1}),
                        PeakPolicy(precision=0.05).around(1000.0))
    assert [round(run.target_qps) for run in unlucky.runs] == [1000, 1050, 1050, 1050, 1158,
                                                                1158, 1102]
    assert unlucky.qps_at_slo == pytest.approx(1102.5)


def _p99_rising(capacity: float):
    """A run function whose p99 doubles with every 5% of rate past `capacity`'s bound (10 ms)."""
    def run(rate: float) -> RunResult:
        p99 = 10.0 * 2 ** (math.log(rate / capacity) / math.log(1.05))
        return RunResult(target_qps=rate, scheduled_qps=rate, completed_qps=rate, queries=1000,
                         p50_ms=1.0, p95_ms=2.0, p99_ms=p99, valid=p99 <= 10.0, errors=0,
                         log_dir="")
    return run


def test_the_rate_at_the_bound_is_interpolated_within_the_bracket() -> None:
    peak = find_peak(_p99_rising(1020.0), PeakPolicy(precision=0.05).around(1000.0))
    assert peak.qps_at_slo == 1000.0 and peak.ceiling_qps == 1050.0
    assert peak.at_bound(10.0) == pytest.approx(1020.0)
    # no miss to interpolate towards (or a miss that was not the p99's): the rate met
    assert find_peak(_runs_against(1e9), PeakPolicy(max_runs=2)).at_bound(10.0) == 400.0
    assert find_peak(_runs_against(5000.0, errors_at=1020.0),
                     PeakPolicy(precision=0.05).around(1000.0)).at_bound(10.0) == 1000.0
