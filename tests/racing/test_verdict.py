"""The verdict of a race: ties, the cheapest pick, and speed-ups claimed only when significant."""

import pytest

from autotune.racing.record import Finalist, RaceRecord
from autotune.racing.verdict import cost, decide
from autotune.report.markdown import describe_ratio

THREADS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")


def _finalist(threads, values, baselines=(), cpuset=None) -> Finalist:
    params = dict(zip(THREADS, threads, strict=True))
    if cpuset:
        params["cpuset"] = cpuset
    return Finalist(trial=0, params=params, feasible=True, baselines=list(baselines),
                    values=list(values))


def _record(*finalists: Finalist, precision: float = 0.02) -> RaceRecord:
    return RaceRecord(direction="minimize", precision=precision, budget_s=60,
                      finalists=list(finalists), rounds=len(finalists[0].values), stopped="budget")


ROUNDS = [1.00, 1.10, 0.95, 1.05, 1.02, 0.98]


def test_the_cheapest_configuration_shown_within_the_precision_is_recommended():
    fastest = _finalist((2, 2, 1), ROUNDS)
    cheaper = _finalist((1, 1, 1), [v * (1.0, 1.01)[i % 2] for i, v in enumerate(ROUNDS)],
                        baselines=["tutorial"])
    verdict = decide(_record(fastest, cheaper))
    assert verdict.fastest is fastest and verdict.recommended is cheaper
    assert [f for f, _ in verdict.tied] == [fastest, cheaper]
    assert "the cheapest" in verdict.sentence and "omp=1 intra=1 inter=1" in verdict.sentence
    assert "tutorial" not in verdict.speedups, "the recommendation is not compared with itself"


def test_a_tie_the_data_cannot_bound_recommends_the_fastest():
    fastest = _finalist((2, 2, 1), ROUNDS)
    noisy = _finalist((1, 1, 1), [1.00, 1.30, 0.90, 1.25, 0.95, 1.05], baselines=["tutorial"])
    verdict = decide(_record(fastest, noisy))
    assert verdict.recommended is fastest and len(verdict.tied) == 2
    assert "could not be told apart" in verdict.sentence
    speedup = verdict.speedups["tutorial"].as_dict()
    assert not speedup["significant"] and speedup["ci95"][0] < 1 < speedup["ci95"][1]
    assert describe_ratio(speedup).startswith("no significant difference (95% CI")


def test_a_significant_speedup_is_stated_as_a_ratio_with_its_interval():
    fastest = _finalist((2, 1, 1), ROUNDS)
    slow = _finalist((1, 1, 1), [v * 1.3 for v in ROUNDS], baselines=["tutorial"])
    slow.dropped_round, slow.dropped_reason = 3, "slower"
    verdict = decide(_record(fastest, slow))
    assert [f for f, _ in verdict.tied] == [fastest]
    assert ("every other finalist compared with it was measured significantly slower"
            in verdict.sentence)
    speedup = verdict.speedups["tutorial"].as_dict()
    assert speedup["ratio"] == pytest.approx(1.3) and speedup["significant"]
    assert describe_ratio(speedup) == "1.30x (faster; 95% CI 1.30-1.30x)"


def test_cost_counts_threads_then_pinned_cores():
    single = dict(zip(THREADS, (1, 1, 1), strict=True))
    assert cost({**single, "omp_num_threads": 2}) == (4, float("inf"))
    assert cost({**single, "cpuset": "0,2-3"}) == (3, 3)
    assert cost({**single, "cpuset": "none"}) == (3, float("inf"))


def test_two_rounds_state_a_ratio_but_no_interval_and_claim_nothing():
    fastest = _finalist((2, 1, 1), ROUNDS[:2])
    slow = _finalist((1, 1, 1), [1.30, 1.431], baselines=["tutorial"])  # agreeing to 0.1%
    two = decide(_record(fastest, slow)).speedups["tutorial"].as_dict()
    assert two["ratio"] == pytest.approx(1.3, rel=1e-3)
    assert two["ci95"] is None and not two["significant"]
    fastest.values.append(ROUNDS[2])
    slow.values.append(ROUNDS[2] * 1.3)
    three = decide(_record(fastest, slow)).speedups["tutorial"].as_dict()
    assert three["significant"] and three["ci95"][0] > 1


def test_a_race_stored_before_drops_kept_their_level_still_loads_and_claims_at_95():
    fastest = _finalist((2, 1, 1), ROUNDS)
    slow = _finalist((1, 1, 1), [v * (1.3, 1.2)[i % 2] for i, v in enumerate(ROUNDS)],
                     baselines=["tutorial"])
    slow.dropped_round, slow.dropped_reason, slow.dropped_alpha = 6, "slower", 0.001
    record = _record(fastest, slow)
    stored = record.to_dict()
    del stored["finalists"][1]["dropped_alpha"]  # as studies raced before 2026-11-29 hold it
    old = RaceRecord.from_dict(stored)
    assert old.finalists[1].dropped_alpha is None
    at_95 = decide(old).speedups["tutorial"]
    at_drop = decide(record).speedups["tutorial"]
    assert at_95 == record.ratio(fastest, slow)
    assert at_drop.ci[0] < at_95.ci[0] and at_95.ci[1] < at_drop.ci[1]
