"""Server-side batching, against real embedded servers: the same scores as the plain
server for every request of a concurrent burst, the timeout respected, a full batch sent
at once, and only the bad request of a batch failing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf

from autotune.launch import ModelLocation, ServerSettings
from autotune.launch.local import LocalLauncher
from autotune.serving.batching_config import BatchingParameters
from serving.conftest import started
from serving.fixtures import PlainClient, reported_settings, sample_ids
from serving.tiny_model import USERS

THREADS = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1}


def _serve(model: ModelLocation, parameters: BatchingParameters) -> LocalLauncher:
    return started(model, ServerSettings(**THREADS, batching=parameters))


@pytest.fixture(scope="module")
def batching(tiny_model: ModelLocation) -> Iterator[tuple[LocalLauncher, PlainClient]]:
    """Batches of up to 8 rows padded to 2, 4 or 8, a 20 ms timeout, one batch thread."""
    launcher = _serve(tiny_model, BatchingParameters(
        max_batch_size=8, batch_timeout_micros=20_000, num_batch_threads=1,
        max_enqueued_batches=1000, allowed_batch_sizes=(2, 4, 8)))
    client = PlainClient(launcher.address)
    yield launcher, client
    client.close()
    launcher.stop()


def _burst(client: PlainClient, requests: list) -> list:
    """Send every request at once; each one's response, or its RpcError."""
    def send(request):
        try:
            return client.predict(request)
        except grpc.RpcError as error:
            return error

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def test_the_server_reports_its_batching(batching) -> None:
    launcher, _ = batching
    assert reported_settings(launcher.logs())["batching"].startswith(
        "max_batch_size=8,batch_timeout_micros=20000,num_batch_threads=1")


def test_a_concurrent_burst_gets_the_plain_servers_scores(batching, client: PlainClient) -> None:
    _, batched = batching
    pairs = [sample_ids(1 + index % 3, seed=index) for index in range(48)]
    requests = [PlainClient.request(user_id=users, item_id=items) for users, items in pairs]
    for request, response in zip(requests, _burst(batched, requests), strict=True):
        assert not isinstance(response, grpc.RpcError), response
        expected = tf.make_ndarray(client.predict(request).outputs["rating"])
        got = tf.make_ndarray(response.outputs["rating"])
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_a_lone_request_waits_for_the_timeout_and_no_longer(tiny_model: ModelLocation) -> None:
    launcher = _serve(tiny_model, BatchingParameters(
        max_batch_size=64, batch_timeout_micros=400_000, num_batch_threads=1))
    try:
        client = PlainClient(launcher.address)
        users, items = sample_ids(1)
        client.scores(users, items)  # warm-up
        began = time.monotonic()
        client.scores(users, items)
        waited = time.monotonic() - began
        assert 0.4 <= waited < 1.5, f"a lone request took {waited:.3f} s with a 0.4 s timeout"
        # Four rows fill a batch of 4 rows: it goes at once, long before the timeout.
        requests = [PlainClient.request(user_id=u, item_id=i)
                    for u, i in (sample_ids(16, seed=seed) for seed in range(4))]
        began = time.monotonic()
        assert not any(isinstance(r, grpc.RpcError) for r in _burst(client, requests))
        assert time.monotonic() - began < 0.35, "a full batch waited for the timeout"
        client.close()
    finally:
        launcher.stop()


def test_only_the_bad_requests_of_a_batch_fail(batching, client: PlainClient) -> None:
    _, batched = batching
    good = [sample_ids(1, seed=seed) for seed in range(6)]
    requests = [PlainClient.request(user_id=users, item_id=items) for users, items in good]
    out_of_range = PlainClient.request(user_id=np.array([USERS + 1000], np.int32),
                                       item_id=np.array([0], np.int32))
    unequal = PlainClient.request(user_id=np.array([1, 2], np.int32),
                                  item_id=np.array([3], np.int32))
    responses = _burst(batched, [*requests[:3], out_of_range, unequal, *requests[3:]])
    for response in (responses[3], responses[4]):
        assert isinstance(response, grpc.RpcError)
        assert response.code() == grpc.StatusCode.INVALID_ARGUMENT
    for (users, items), response in zip(good, [*responses[:3], *responses[5:]], strict=True):
        assert not isinstance(response, grpc.RpcError), response
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["rating"]),
                                   client.scores(users, items), rtol=1e-5)


def test_a_request_larger_than_a_batch_is_refused(batching) -> None:
    _, batched = batching
    users, items = sample_ids(9)
    with pytest.raises(grpc.RpcError) as refused:
        batched.predict(PlainClient.request(user_id=users, item_id=items))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "larger than maximum input batch size 8" in refused.value.details()
