"""The embedded server against a plain tensorflow-serving-api client, for real: scores,
metadata, status, every refusal (and still serving after it), settings and threads."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import psutil
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from autotune.launch import ModelLocation, ServerSettings
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from serving.conftest import started
from serving.fixtures import START_DEADLINE_S, PlainClient, reported_settings, sample_ids
from serving.tiny_model import in_process_scores

DEFAULT_MAX_BATCH = 1_000_000


def test_scores_match_the_in_process_model_of_the_highest_version(
        client: PlainClient, tiny_model: ModelLocation) -> None:
    users, items = sample_ids(500)
    response = client.predict(client.request(user_id=users, item_id=items))
    assert response.model_spec.version.value == 2
    served = tf.make_ndarray(response.outputs["rating"])
    assert served.shape == (500, 1)
    np.testing.assert_allclose(served, in_process_scores(tiny_model.base_path / "2", users, items),
                               rtol=1e-6)


def test_outputs_are_in_the_typed_fields_as_tf_serving_writes_them(client: PlainClient) -> None:
    """What the tutorial's client reads: `result.outputs['rating'].float_val`, and the
    echoed ids in `int_val` (int32); nothing in `tensor_content`."""
    users, items = sample_ids(300, seed=5)
    response = client.predict(client.request(user_id=users, item_id=items))
    rating, echoed = response.outputs["rating"], response.outputs["item_id"]
    assert not rating.tensor_content and not echoed.tensor_content
    np.testing.assert_array_equal(np.array(rating.float_val, np.float32),
                                  tf.make_ndarray(rating).ravel())
    assert list(echoed.int_val) == items.tolist()
    assert [dim.size for dim in rating.tensor_shape.dim] == [300, 1]


def test_output_filter_answers_only_the_outputs_asked(client: PlainClient) -> None:
    request = client.request(user_id=np.array([1], np.int32), item_id=np.array([2], np.int32))
    request.output_filter.append("rating")
    assert list(client.predict(request).outputs) == ["rating"]


def test_typed_value_fields_are_decoded_like_tensor_content(client: PlainClient) -> None:
    users, items = sample_ids(7, seed=1)
    typed = predict_pb2.PredictRequest()
    typed.model_spec.name = "ncf"
    for name, values in (("user_id", users), ("item_id", items)):
        tensor = typed.inputs[name]
        tensor.dtype = types_pb2.DT_INT32
        tensor.tensor_shape.dim.add(size=len(values))
        tensor.int_val.extend(values.tolist())
    assert not typed.inputs["user_id"].tensor_content
    np.testing.assert_array_equal(tf.make_ndarray(client.predict(typed).outputs["rating"]),
                                  client.scores(users, items))


def test_int64_requests_are_cast_to_the_signature_dtype(client: PlainClient) -> None:
    users, items = sample_ids(5, seed=2)
    np.testing.assert_array_equal(client.scores(users.astype(np.int64), items.astype(np.int64)),
                                  client.scores(users, items))


def test_metadata_gives_the_signature_def_map(client: PlainClient) -> None:
    signature = client.signature_defs().signature_def["serving_default"]
    assert {name: spec.dtype for name, spec in signature.inputs.items()} == {
        "user_id": types_pb2.DT_INT32, "item_id": types_pb2.DT_INT32}
    assert [dim.size for dim in signature.inputs["user_id"].tensor_shape.dim] == [-1]
    assert signature.outputs["rating"].dtype == types_pb2.DT_FLOAT
    assert signature.outputs["item_id"].dtype == types_pb2.DT_INT32


def test_status_reports_the_served_version_available(client: PlainClient) -> None:
    [status] = client.status().model_version_status
    assert (status.version, status.state) == (2, status.AVAILABLE)


def _bad_requests() -> dict[str, tuple[predict_pb2.PredictRequest, grpc.StatusCode, str]]:
    users, items = sample_ids(3)
    request = PlainClient.request
    oversize = np.zeros(DEFAULT_MAX_BATCH + 1, np.int32)
    wrong_version = request(user_id=users, item_id=items)
    wrong_version.model_spec.version.value = 7
    short_content = request(user_id=users, item_id=items)
    short_content.inputs["item_id"].tensor_content = items[:2].tobytes()
    return {
        "unknown model": (request("movies", user_id=users, item_id=items),
                          grpc.StatusCode.NOT_FOUND, "model 'movies' not found"),
        "unknown version": (wrong_version, grpc.StatusCode.NOT_FOUND, "version 7"),
        "missing input": (request(user_id=users), grpc.StatusCode.INVALID_ARGUMENT,
                          "expects: item_id int32 [-1]; user_id int32 [-1]"),
        "wrong input name": (request(user=users, item_id=items), grpc.StatusCode.INVALID_ARGUMENT,
                             "expects: item_id int32 [-1]; user_id int32 [-1]"),
        "float for int": (request(user_id=users.astype(np.float32), item_id=items),
                          grpc.StatusCode.INVALID_ARGUMENT,
                          "input 'user_id' is float32, expected user_id int32 [-1]"),
        "string for int": (request(user_id=np.array([b"a", b"b", b"c"]), item_id=items),
                           grpc.StatusCode.INVALID_ARGUMENT,
                           "input 'user_id' is string, expected user_id int32 [-1]"),
        "2-D for 1-D": (request(user_id=users.reshape(3, 1), item_id=items),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "input 'user_id' has shape [3, 1], expected user_id int32 [-1]"),
        "id beyond the embedding": (request(user_id=users + 10_000, item_id=items),
                                    grpc.StatusCode.INVALID_ARGUMENT, "indices"),
        "content shorter than shape": (short_content, grpc.StatusCode.INVALID_ARGUMENT,
                                       "tensor_content has 8 bytes"),
        "oversize batch": (request(user_id=oversize, item_id=oversize),
                           grpc.StatusCode.INVALID_ARGUMENT,
                           "batch of 1,000,001, more than the server's maximum of 1,000,000"),
    }


@pytest.mark.parametrize("case", list(_bad_requests()))
def test_bad_request_is_refused_with_its_status_and_the_server_keeps_serving(
        client: PlainClient, case: str) -> None:
    request, code, message = _bad_requests()[case]
    with pytest.raises(grpc.RpcError) as refused:
        client.predict(request)
    assert refused.value.code() == code
    assert message in refused.value.details()
    users, items = sample_ids(4)
    assert client.scores(users, items).shape == (4, 1)


def test_metadata_and_status_of_an_unknown_model_are_not_found(client: PlainClient) -> None:
    for call in (client.signature_defs, client.status):
        with pytest.raises(grpc.RpcError) as refused:
            call("movies")
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_uint16_model_serves_int32_requests(tiny_uint16_model: ModelLocation) -> None:
    launcher = started(tiny_uint16_model, ServerSettings(1, 1, 1))
    client = PlainClient(launcher.address)
    try:
        signature = client.signature_defs().signature_def["serving_default"]
        assert signature.inputs["item_id"].dtype == types_pb2.DT_UINT16
        users, items = sample_ids(20)
        expected = in_process_scores(tiny_uint16_model.base_path / "1", users, items)
        np.testing.assert_allclose(client.scores(users, items), expected,
                                   rtol=1e-6)
        with pytest.raises(grpc.RpcError) as refused:
            client.scores(users[:1], np.array([70_000], np.int32))
        assert "outside the range of uint16" in refused.value.details()
    finally:
        client.close()
        launcher.stop()


def _threads_after_a_batch(launcher: LocalLauncher) -> int:
    client = PlainClient(launcher.address)
    users, items = sample_ids(20_000)
    client.scores(users, items)
    client.close()
    return psutil.Process(launcher.pid).num_threads()


def test_settings_are_applied_and_reported(tiny_model: ModelLocation) -> None:
    """The settings line follows env and flags, and so does the thread count: each
    intra-op or inter-op thread is one more thread, and OpenMP's team grows with
    OMP_NUM_THREADS once oneDNN runs the model's MatMul."""
    launcher = started(tiny_model, ServerSettings(1, 1, 1))
    try:
        assert reported_settings(launcher.logs())["intra_op"] == "1"
        baseline = _threads_after_a_batch(launcher)

        launcher.start(ServerSettings(1, 4, 3, extra_env={"KMP_BLOCKTIME": "0"}))
        launcher.wait_until_available(START_DEADLINE_S)
        reported = reported_settings(launcher.logs())
        assert (reported["intra_op"], reported["inter_op"], reported["omp_num_threads"],
                reported["kmp_blocktime"], reported["version"]) == ("4", "3", "1", "0", "2")
        assert _threads_after_a_batch(launcher) - baseline >= (4 - 1) + (3 - 1)

        launcher.start(ServerSettings(8, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        assert reported_settings(launcher.logs())["omp_num_threads"] == "8"
        assert _threads_after_a_batch(launcher) - baseline >= 8 - 1
    finally:
        launcher.stop()


def test_flags_win_over_environment(tiny_model: ModelLocation) -> None:
    settings = ServerSettings(1, 2, 1, extra_env={"TENSORFLOW_INTRA_OP_PARALLELISM": "3",
                                                  "TENSORFLOW_INTER_OP_PARALLELISM": "3"})
    launcher = started(tiny_model, settings)
    try:
        reported = reported_settings(launcher.logs())
        assert (reported["intra_op"], reported["inter_op"]) == ("2", "1")
    finally:
        launcher.stop()


def test_tensor_content_flag_packs_the_responses(tiny_model: ModelLocation) -> None:
    launcher = LocalLauncher(tiny_model, program=(*EMBEDDED_SERVER, "--enable_model_warmup",
                                                  "--enable_serialization_as_tensor_content"))
    try:
        launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        client = PlainClient(launcher.address)
        users, items = sample_ids(50)
        response = client.predict(client.request(user_id=users, item_id=items))
        client.close()
        rating = response.outputs["rating"]
        assert rating.tensor_content and not rating.float_val
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["item_id"]), items)
        assert "ignoring flags this server does not use: --enable_model_warmup" in launcher.logs()
    finally:
        launcher.stop()


def test_autotune_serve_answers_a_plain_client(tiny_model: ModelLocation) -> None:
    launcher = LocalLauncher(tiny_model, program=(sys.executable, "-m", "autotune", "serve"))
    try:
        launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        client = PlainClient(launcher.address)
        users, items = sample_ids(3)
        assert client.scores(users, items).shape == (3, 1)
        client.close()
    finally:
        launcher.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_stops_the_server_gracefully_even_right_after_it_is_ready(
        tiny_model: ModelLocation, signum: int) -> None:
    """The signal comes the moment the model is AVAILABLE, while the server is still
    entering its wait: the window where a handler that takes a lock could deadlock."""
    launcher = started(tiny_model, ServerSettings(1, 1, 1))
    process = psutil.Process(launcher.pid)
    process.send_signal(signum)
    try:
        assert process.wait(timeout=30) == 0
    except psutil.TimeoutExpired:
        pytest.fail(f"still running 30s after {signal.Signals(signum).name}:\n{launcher.logs()}")
    finally:
        launcher.stop()
    assert f"autotune-serving: stopping: {signal.Signals(signum).name}" in launcher.logs()
    assert "autotune-serving: stopped" in launcher.logs()


def test_bad_option_exits_at_once_with_its_reason(tmp_path) -> None:
    started_at = time.monotonic()
    finished = subprocess.run([sys.executable, "-m", "autotune.serving", "--model_base_path",
                               str(tmp_path), "--tensorflow_intra_op_parallelism=-2"],
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert "--tensorflow_intra_op_parallelism must be >= 0" in finished.stderr
    assert time.monotonic() - started_at < 10
