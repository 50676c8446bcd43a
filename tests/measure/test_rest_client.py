"""The REST client against a real server: the gRPC client's scores (for the same request
sizes: a batch's size changes the last bits), the measurements and the accuracy gate
over REST, and a refused request as a `RestError`."""

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from autotune.data.eval_rows import EvalRows
from autotune.launch import Launcher, ModelLocation, ServerSettings, make_launcher
from autotune.measure.accuracy import AccuracyGate
from autotune.measure.grpc_client import ServingClient
from autotune.measure.latency import measure_latency
from autotune.measure.rest_client import RestClient, RestError
from autotune.measure.rows import RequestRows
from autotune.measure.signature import pair_rows
from autotune.measure.throughput import measure_throughput
from autotune.options import LatencyPolicy


@pytest.fixture(scope="module")
def rest_server(small_assets) -> Iterator[Launcher]:
    """A local server on the small model with REST on (1/1/1 threads)."""
    with make_launcher("local", ModelLocation(Path(small_assets.model_dir)), rest=True) as launcher:
        launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(120)
        yield launcher


@pytest.fixture(scope="module")
def eval_rows(small_assets) -> EvalRows:
    return EvalRows.load(Path(small_assets.eval_path))


def test_rest_scores_are_the_grpc_scores(rest_server: Launcher, eval_rows: EvalRows) -> None:
    rows = pair_rows(*eval_rows.sample_users(3, seed=0).flat_pairs())
    with RestClient(rest_server.rest_address, "ncf") as rest, \
            ServingClient(rest_server.address, "ncf") as grpc_client:
        assert rest.signatures == grpc_client.signatures  # the same metadata, either way
        by_rest = rest.predict(rows, batch_size=700)
        np.testing.assert_array_equal(by_rest["rating"],
                                      grpc_client.predict(rows, batch_size=700)["rating"])
        one = rows.take(slice(0, 1))
        np.testing.assert_array_equal(rest.send(rest.request(one))["rating"],
                                      grpc_client.send(grpc_client.request(one))["rating"])
    assert set(by_rest) == {"rating"}  # REST answers every output; those asked for are kept
    assert by_rest["rating"].shape == (3000,) and by_rest["rating"].dtype == np.float32


def test_every_output_comes_back_typed_when_none_is_named(rest_server: Launcher) -> None:
    """The float32 `item_id` echo, as the tutorial's client reads it, over both protocols."""
    rows = RequestRows({"user_id": np.array([1, 2]), "item_id": np.array([3, 4])})
    with RestClient(rest_server.rest_address, "ncf") as rest, \
            ServingClient(rest_server.address, "ncf") as grpc_client:
        for outputs in (rest.predict(rows), grpc_client.predict(rows)):
            assert set(outputs) == {"rating", "item_id"}
            assert outputs["item_id"].dtype == np.float32
            np.testing.assert_array_equal(outputs["item_id"], [3.0, 4.0])


def test_measurements_and_gate_run_over_rest(rest_server: Launcher, eval_rows: EvalRows,
                                             small_assets) -> None:
    rows = pair_rows(*eval_rows.random_pairs(200, seed=0))
    with RestClient(rest_server.rest_address, "ncf") as rest:
        latency = measure_latency(rest, rows, "mean",
                                  LatencyPolicy(warmup_requests=5, window=40, max_seconds=3.0))
        throughput = measure_throughput([rest], rows, iterations=3)
        accuracy = AccuracyGate(eval_rows, min_hr=0.22, min_ndcg=0.11,
                                pairs_per_request=50_000).check(rest)
    assert latency.mean_ms > 0 and latency.requests >= 120
    assert throughput.samples_per_s > 0
    assert accuracy.hr == pytest.approx(small_assets.model_card["hr"], abs=1e-3)


def test_a_refused_request_is_a_rest_error_with_the_servers_words(rest_server: Launcher) -> None:
    with RestClient(rest_server.rest_address, "ncf") as rest:
        with pytest.raises(RestError, match=r"HTTP 400: .*id 100000 .*outside the model's range"):
            rest.send(rest.request(pair_rows(np.array([100_000]), np.array([1]))))
    with pytest.raises(RestError, match=r"HTTP 404: .*model 'movies' not found"):
        RestClient(rest_server.rest_address, "movies")
