"""The gRPC client against a real server: metadata-driven requests, statistics, windows."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from autotune.data.eval_rows import EvalRows
from autotune.launch import ModelLocation, ServerSettings, make_launcher
from autotune.measure.grpc_client import ServingClient
from autotune.measure.latency import latency_statistics, measure_latency
from autotune.measure.signature import NCF_INPUTS, pair_inputs, pair_rows
from autotune.measure.throughput import MIN_ITERATIONS, measure_throughput
from autotune.options import LatencyPolicy
from autotune.stats import relative_half_width


@pytest.fixture(scope="module")
def eval_rows(small_assets) -> EvalRows:
    return EvalRows.load(Path(small_assets.eval_path))


def test_signature_comes_from_metadata(server_address):
    with ServingClient(server_address, "ncf") as client:
        signature = client.signature("serving_default")
        assert pair_inputs(signature) == NCF_INPUTS
        assert signature.inputs["user_id"].describe() == "user_id int32 [-1]"
        assert set(signature.outputs) == {"rating", "item_id"}


def test_predict_is_the_same_in_one_request_or_many(server_address, eval_rows):
    rows = pair_rows(*eval_rows.sample_users(3, seed=0).flat_pairs())
    with ServingClient(server_address, "ncf") as client:
        whole = client.predict(rows)
        chunked = client.predict(rows, batch_size=700)
    assert set(whole) == {"rating"}  # the requests ask for the score only
    assert whole["rating"].shape == (3000,) and whole["rating"].dtype == np.float32
    np.testing.assert_allclose(whole["rating"], chunked["rating"], rtol=1e-6)


def test_latency_statistics_are_ordered(server_address, eval_rows):
    rows = pair_rows(*eval_rows.random_pairs(100, seed=0))
    policy = LatencyPolicy(warmup_requests=10, window=50, max_seconds=5.0)
    phases = []
    with ServingClient(server_address, "ncf") as client:
        result = measure_latency(client, rows, "p95", policy, phases.append)
    assert phases == ["warm-up", "measuring"]
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms
    assert result.statistic("p95") == result.p95_ms
    assert result.requests % policy.window == 0 and result.requests >= 3 * policy.window
    assert set(result.attrs()) >= {"latency_ms_mean", "latency_ms_p50", "latency_ms_p95",
                                   "latency_ms_p99", "latency_ms_percentiles"}
    percentiles = result.attrs()["latency_ms_percentiles"]  # the distribution, for the HTML
    assert len(percentiles) == 101 and percentiles == sorted(percentiles)
    assert percentiles[50] == pytest.approx(result.p50_ms, abs=1e-4)


def test_windows_stop_when_the_interval_is_tight_or_at_the_cap(server_address, eval_rows):
    rows = pair_rows(*eval_rows.random_pairs(100, seed=0))
    with ServingClient(server_address, "ncf") as client:
        lenient = measure_latency(client, rows, "mean",
                                  LatencyPolicy(warmup_requests=5, window=40, precision=100.0))
        strict = measure_latency(client, rows, "mean",
                                 LatencyPolicy(warmup_requests=5, window=40, precision=0.0,
                                               max_requests=200))
    assert (lenient.requests, lenient.converged) == (120, True)  # three windows, at once
    assert lenient.precision <= 100.0 and lenient.attrs()["precision"] == lenient.precision
    assert (strict.requests, strict.converged) == (200, False)  # no interval is ever 0: the cap
    assert 0 < strict.precision < float("inf")  # five windows: an interval, however wide


def test_precision_is_the_relative_half_width_of_the_95_interval():
    assert relative_half_width([1.0]) == float("inf")
    assert relative_half_width([1.0, 1.0, 1.0]) == 0.0
    assert relative_half_width([9.0, 11.0]) == pytest.approx(12.706 * 1.0 / 10, rel=1e-4)
    stats = latency_statistics(np.arange(1, 101, dtype=float))
    assert stats["mean"] == 50.5 and stats["p50"] == 50.5
    assert 95 <= stats["p95"] <= stats["p99"] <= 100


def test_throughput_counts_samples_per_second_until_precise(server_address, eval_rows):
    rows = pair_rows(*eval_rows.random_pairs(5000, seed=0))
    with ServingClient(server_address, "ncf") as client:
        capped = measure_throughput([client], rows, iterations=3, precision=0.0)
        lenient = measure_throughput([client], rows, iterations=20, precision=100.0)
    assert capped.batch_size == 5000 and capped.iterations == 3 and not capped.converged
    assert capped.samples_per_s == pytest.approx(15000 / capped.seconds)
    per_request = capped.attrs()["request_sps"]  # each request's own, for the HTML report
    assert len(per_request) == 3 and min(per_request) <= capped.samples_per_s <= max(per_request)
    assert lenient.iterations == MIN_ITERATIONS and lenient.converged
    assert set(lenient.attrs()) == {"throughput_sps", "measured_requests", "precision", "converged",
                                    "in_flight", "request_sps"}


def test_a_model_with_uint16_item_ids_works(tmp_path):
    """The tutorial exports item_id as uint16: the client must send what the signature says."""
    spec = importlib.util.spec_from_file_location(
        "tiny_model", Path(__file__).parents[1] / "serving" / "tiny_model.py")
    tiny_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny_model)
    import tensorflow as tf

    base = tiny_model.export_tiny_model(tmp_path / "ncf", versions=(1,), item_dtype=tf.uint16)
    with make_launcher("local", ModelLocation(base)) as launcher:
        address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(120)
        with ServingClient(address, "ncf") as client:
            assert client.signature("serving_default").inputs["item_id"].dtype == np.uint16
            ids = np.arange(10, dtype=np.int32)
            scores = client.predict(pair_rows(ids, ids))["rating"].ravel()
    assert scores.shape == (10,) and np.all((scores > 0) & (scores < 1))
