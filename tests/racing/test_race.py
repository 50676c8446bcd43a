"""Racing against a fake measurement with seeded noise and a fake clock (no server needed).

The fake: each configuration has a true value, every measurement is that value times a
slow drift shared by all (the host) times its own log-normal noise; each measurement
takes one second of a fake clock, so budgets are exact and the tests instant.
"""

import math

import numpy as np
import pytest

from autotune.errors import MeasurementError
from autotune.racing.race import MIN_ROUNDS, look_alpha, one_at_a_time, race, rotated
from autotune.racing.record import Finalist, RaceRecord, pooled, stored_race
from autotune.racing.verdict import decide
from autotune.record.schema import StudyAttr, racing_attr


class FakeHost:
    """Latencies (ms) of configurations keyed by their `x` param, with seeded noise."""

    def __init__(self, true_ms: dict[int, float], noise: float = 0.03, seed: int = 0,
                 fail: set[int] = frozenset(), interrupt_at: int | None = None) -> None:
        self.true_ms = true_ms
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.fail = fail
        self.interrupt_at = interrupt_at
        self.now = 0.0
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def measure(self, params: dict[str, object]) -> float:
        self.calls += 1
        self.now += 1.0
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if params["x"] in self.fail:
            raise MeasurementError("server did not start")
        drift = math.exp(0.2 * math.sin(self.calls / 50))  # +-20%, slow: the host
        return self.true_ms[params["x"]] * drift * math.exp(self.rng.normal(0, self.noise))


def _finalists(xs, baselines=None) -> list[Finalist]:
    baselines = baselines or {}
    return [Finalist(trial=i, params={"x": x}, feasible=True, baselines=baselines.get(x, []))
            for i, x in enumerate(xs)]


def _race(host: FakeHost, xs, budget_s: float = 1000.0, precision: float = 0.02, **kwargs):
    return race(_finalists(xs, **kwargs), one_at_a_time(host.measure), direction="minimize",
                budget_s=budget_s, precision=precision, clock=host.clock)


@pytest.mark.parametrize("seed", range(5))
def test_a_clearly_worse_configuration_is_dropped_within_five_rounds(seed):
    host = FakeHost({0: 1.0, 1: 1.01, 2: 1.3}, seed=seed)
    record = _race(host, [0, 1, 2], budget_s=60)
    worse = record.finalists[2]
    assert worse.dropped_round is not None and worse.dropped_round <= 5
    assert "slower than" in worse.dropped_reason
    assert [f.dropped_round for f in record.finalists[:2]] == [None, None]


@pytest.mark.parametrize("seed", range(5))
def test_a_speedup_over_a_dropped_finalist_is_claimed_at_the_level_that_dropped_it(seed):
    host = FakeHost({0: 1.0, 1: 1.3}, seed=seed)
    record = _race(host, [0, 1], budget_s=60, baselines={1: ["tutorial"]})
    best, dropped = record.finalists
    assert record.stopped == "one left"
    look = dropped.dropped_round - MIN_ROUNDS + 1
    assert dropped.dropped_alpha == pytest.approx(look_alpha(look, 1))
    claimed, fixed = record.claim(best, dropped), record.ratio(best, dropped)
    assert claimed.ratio == fixed.ratio and claimed.pairs == dropped.dropped_round
    assert claimed.ci[0] < fixed.ci[0] and fixed.ci[1] < claimed.ci[1]
    assert claimed.significant, "the interval that dropped it excludes 1.0"
    assert decide(record).speedups["tutorial"] == claimed
    assert record.claim(dropped, best) == record.ratio(dropped, best), "best was not dropped"


@pytest.mark.parametrize("seed", range(5))
def test_equal_configurations_are_kept_and_reported_tied(seed):
    host = FakeHost({0: 1.0, 1: 1.0, 2: 1.0}, noise=0.05, seed=seed)
    record = _race(host, [0, 1, 2], budget_s=60)
    assert record.stopped == "budget" and record.rounds == 20
    assert all(f.alive for f in record.finalists)
    assert len(decide(record).tied) == 3


def test_the_budget_is_honoured_and_no_round_is_started_that_cannot_end():
    host = FakeHost({0: 1.0, 1: 1.0, 2: 1.0}, noise=0.05)
    record = _race(host, [0, 1, 2], budget_s=10)
    assert record.stopped == "budget" and record.rounds == 3 and host.now == 9.0
    assert record.seconds <= 10
    assert race(_finalists([0, 1]), one_at_a_time(host.measure), direction="minimize",
                budget_s=0, precision=0.02, clock=host.clock).rounds == 0


@pytest.mark.parametrize("seed", range(3))
def test_it_stops_early_when_one_is_clearly_best(seed):
    host = FakeHost({0: 1.0, 1: 1.4, 2: 1.5, 3: 1.6}, seed=seed)
    record = _race(host, [0, 1, 2, 3], budget_s=1000)
    assert record.stopped == "one left" and record.rounds <= 5
    assert [f.alive for f in record.finalists] == [True, False, False, False]
    assert host.now < 30


def test_it_stops_when_the_survivors_are_tied_within_the_precision():
    host = FakeHost({0: 1.0, 1: 1.0}, noise=0.002)
    record = _race(host, [0, 1], budget_s=1000)
    assert record.stopped == "tied within 2%" and record.rounds <= 4


def test_ctrl_c_keeps_what_was_measured():
    host = FakeHost({0: 1.0, 1: 1.0}, interrupt_at=6)
    record = _race(host, [0, 1])
    assert record.stopped == "interrupted" and record.rounds == 3
    assert sum(len(f.measured) for f in record.finalists) == 5


def test_a_configuration_that_fails_twice_is_dropped_and_the_race_goes_on():
    host = FakeHost({0: 1.0, 1: 1.0, 2: 1.2}, fail={1})
    record = _race(host, [0, 1, 2])
    failed = record.finalists[1]
    assert failed.dropped_round == 2 and failed.dropped_reason.startswith("failed 2 times")
    assert record.stopped == "one left" and record.finalists[0].alive


def test_the_look_correction_spends_at_most_alpha_over_any_number_of_looks():
    assert look_alpha(1, 1) == pytest.approx(0.025) and look_alpha(2, 2) == pytest.approx(0.05 / 12)
    assert sum(look_alpha(k, 1) for k in range(1, 100_000)) < 0.05
    assert rotated([1, 2, 3], 1) == [2, 3, 1]


def test_finalists_are_the_top_feasible_configurations_then_every_baseline_once():
    import optuna

    from autotune.measure.accuracy import AccuracyResult
    from autotune.racing.race import pick_finalists
    from autotune.record.schema import record_constraints

    study = optuna.create_study(direction="minimize")
    for x, value, hr, baseline in [(1, 5.0, 0.5, "tutorial"), (2, 4.0, 0.5, "image-defaults"),
                                   (3, 1.0, 0.0, None),  # infeasible: never a finalist for best
                                   (4, 2.0, 0.5, None),
                                   (2, 3.0, 0.5, None)]:  # the image defaults, measured better
        study.enqueue_trial({"x": x}, user_attrs={"baseline": baseline} if baseline else None)
        trial = study.ask()
        trial.suggest_int("x", 0, 10)
        record_constraints(trial, AccuracyResult(hr=hr, ndcg=0.5, min_hr=0.22, min_ndcg=0.11))
        study.tell(trial, value)
    finalists = pick_finalists(study, top=2)
    assert [(f.params["x"], f.baselines) for f in finalists] == [
        (4, []), (2, ["image-defaults"]), (1, ["tutorial"])]
    assert all(finalist.feasible for finalist in finalists)


def test_the_best_single_instance_is_a_finalist_when_instances_were_searched():
    import optuna

    from autotune.measure.accuracy import AccuracyResult
    from autotune.racing.race import pick_finalists
    from autotune.racing.record import SINGLE_INSTANCE
    from autotune.record.schema import record_constraints

    study = optuna.create_study(direction="maximize")
    for instances, value in ((2, 9.0), (2, 8.0), (1, 5.0), (1, 4.0)):
        study.enqueue_trial({"instances": instances, "x": int(value)})
        trial = study.ask()
        trial.suggest_categorical("instances", [1, 2])
        trial.suggest_int("x", 0, 10)
        record_constraints(trial, AccuracyResult(hr=0.5, ndcg=0.5, min_hr=0.22, min_ndcg=0.11))
        study.tell(trial, value)
    finalists = pick_finalists(study, top=2)
    assert [(f.params, f.baselines) for f in finalists] == [
        ({"instances": 2, "x": 9}, []), ({"instances": 2, "x": 8}, []),
        ({"instances": 1, "x": 5}, [SINGLE_INSTANCE])]
    # one already among the top: it is marked there, not raced twice
    assert [f.baselines for f in pick_finalists(study, top=3)] == [[], [], [SINGLE_INSTANCE]]


def _host_race(worker: str, true_ms: dict[int, float], seed: int, budget_s: float) -> RaceRecord:
    record = _race(FakeHost(true_ms, seed=seed), list(true_ms), budget_s=budget_s)
    record.workers = [worker]
    return record


def test_a_fleets_races_are_pooled_with_each_hosts_rounds_as_their_own_block():
    # host b is twice as slow as host a at everything: the hosts differ far more than the
    # configurations do, and pooling must not mistake the one for the other
    fast = _host_race("a:1", {1: 10.0, 2: 11.0}, seed=1, budget_s=8)
    slow = _host_race("b:2", {1: 20.0, 2: 22.0, 3: 40.0}, seed=2, budget_s=12)
    record = pooled([fast, slow])

    assert record.rounds == fast.rounds + slow.rounds and record.workers == ["a:1", "b:2"]
    assert record.hosts == ["a", "b"]
    by_x = {f.params["x"]: f for f in record.finalists}
    assert len(by_x[1].values) == record.rounds
    assert by_x[3].values[:fast.rounds] == [None] * fast.rounds  # not raced on host a
    ratio = record.ratio(by_x[1], by_x[2])
    assert ratio.pairs == len(by_x[1].measured) and ratio.pairs > fast.rounds
    assert ratio.ci is not None and ratio.ci[0] < 1.1 < ratio.ci[1]
    assert 1.05 < ratio.ratio < 1.15  # the host's 2x cancels within each block


def test_a_finalist_is_dropped_in_the_pool_only_where_every_host_dropped_it():
    first = _host_race("a:1", {1: 10.0, 2: 13.0}, seed=3, budget_s=40)
    second = _host_race("b:2", {1: 10.0, 2: 13.0}, seed=4, budget_s=4)  # too short to drop
    assert not first.finalists[1].alive and second.finalists[1].alive
    assert pooled([first, second]).finalists[1].alive
    dropped = pooled([first, first]).finalists[1]
    assert not dropped.alive
    assert dropped.dropped_round == first.rounds + first.finalists[1].dropped_round
    assert dropped.dropped_alpha == first.finalists[1].dropped_alpha


def test_the_report_pools_the_workers_races_and_keeps_a_single_race_as_it_is():
    one = _host_race("a:1", {1: 10.0, 2: 13.0}, seed=5, budget_s=10)
    other = _host_race("b:2", {1: 10.0, 2: 13.0}, seed=6, budget_s=10)
    assert stored_race({}) is None
    assert stored_race({StudyAttr.RACING: one.to_dict(),
                        racing_attr("a:1"): one.to_dict()}).workers == ["a:1"]
    both = stored_race({StudyAttr.RACING: other.to_dict(), racing_attr("a:1"): one.to_dict(),
                        racing_attr("b:2"): other.to_dict()})
    assert both.workers == ["a:1", "b:2"] and both.rounds == one.rounds + other.rounds
