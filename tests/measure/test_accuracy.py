"""The accuracy gate through a real server: the model card's numbers, and the floors."""

from pathlib import Path

import pytest

from autotune.data.eval_rows import EvalRows
from autotune.measure.accuracy import AccuracyGate, AccuracyResult
from autotune.measure.grpc_client import ServingClient


def test_gate_through_the_server_matches_the_in_process_reference(server_address, small_assets):
    rows = EvalRows.load(Path(small_assets.eval_path))
    gate = AccuracyGate(rows, min_hr=0.22, min_ndcg=0.11, pairs_per_request=30_000)
    with ServingClient(server_address, "ncf") as client:
        result = gate.check(client)
    assert result.hr == pytest.approx(small_assets.model_card["hr"], abs=1e-3)
    assert result.ndcg == pytest.approx(small_assets.model_card["ndcg"], abs=1e-3)
    assert result.ok and all(value <= 0 for value in result.constraints().values())


def test_a_seeded_user_sample_is_scored(server_address, small_assets):
    rows = EvalRows.load(Path(small_assets.eval_path))
    sample = rows.sample_users(50, seed=3)
    assert len(sample.users) == 50 and (sample.users == rows.sample_users(50, seed=3).users).all()
    with ServingClient(server_address, "ncf") as client:
        result = AccuracyGate(sample, min_hr=0.99, min_ndcg=0.11).check(client)
    assert not result.ok and result.constraints()["hr"] > 0
    assert "HR@10" in result.shortfall() and "NDCG@10" not in result.shortfall()


def test_constraints_are_the_shortfall_below_each_floor():
    result = AccuracyResult(hr=0.30, ndcg=0.10, min_hr=0.22, min_ndcg=0.11)
    assert result.constraints() == pytest.approx({"hr": -0.08, "ndcg": 0.01})
    assert not result.ok and result.shortfall() == "NDCG@10 0.1000 < floor 0.11"
