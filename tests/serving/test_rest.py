"""TF Serving's REST API of a running `autotune serve`, driven the way `curl` drives it:
plain HTTP requests with JSON bodies. Same scores as gRPC; every refusal gets TF
Serving's HTTP code and a one-line `{"error": ...}`, and the server keeps serving."""

from __future__ import annotations

import http.client
import json
import sys
from typing import Iterator

import numpy as np
import pytest

from autotune.launch import Launcher, ModelLocation, ServerSettings, make_launcher
from autotune.launch.local import LocalLauncher
from serving.fixtures import START_DEADLINE_S, PlainClient, sample_ids


@pytest.fixture(scope="module")
def served(tiny_model: ModelLocation) -> Iterator[LocalLauncher]:
    """`autotune serve` with REST on, gRPC and REST on ports of their own."""
    launcher = LocalLauncher(tiny_model, program=(sys.executable, "-m", "autotune", "serve"),
                             rest=True)
    launcher.start(ServerSettings(1, 1, 1))
    launcher.wait_until_available(START_DEADLINE_S)
    yield launcher
    launcher.stop()


def call(launcher: Launcher, method: str, path: str,
         body: str | bytes | None = None) -> tuple[int, dict]:
    """One HTTP request, as `curl -X <method> -d <body> http://<rest address><path>`."""
    host, port = launcher.rest_address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body,
                            headers={"Content-Type": "application/json"} if body else {})
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_model_status_and_metadata(served: LocalLauncher) -> None:
    status, body = call(served, "GET", "/v1/models/ncf")
    assert status == 200
    assert body == {"model_version_status": [{"version": "2", "state": "AVAILABLE",
                                              "status": {"error_code": "OK", "error_message": ""}}]}
    assert call(served, "GET", "/v1/models/ncf/versions/2")[0] == 200
    status, body = call(served, "GET", "/v1/models/ncf/metadata")
    assert status == 200 and body["model_spec"]["name"] == "ncf"
    assert body["model_spec"]["version"] == "2"
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert {name: spec["dtype"] for name, spec in signature["inputs"].items()} == {
        "user_id": "DT_INT32", "item_id": "DT_INT32"}
    assert {name: spec["dtype"] for name, spec in signature["outputs"].items()} == {
        "rating": "DT_FLOAT", "item_id": "DT_INT32"}


def test_columnar_and_row_predictions_give_the_grpc_scores(served: LocalLauncher) -> None:
    users, items = sample_ids(40, seed=7)
    grpc_client = PlainClient(served.address)
    by_grpc = grpc_client.scores(users, items)
    grpc_client.close()

    status, columnar = call(served, "POST", "/v1/models/ncf:predict", json.dumps(
        {"inputs": {"user_id": users.tolist(), "item_id": items.tolist()}}))
    assert status == 200
    np.testing.assert_array_equal(np.array(columnar["outputs"]["rating"], np.float32), by_grpc)
    assert columnar["outputs"]["item_id"] == items.tolist()

    instances = [{"user_id": int(u), "item_id": int(i)} for u, i in zip(users, items, strict=True)]
    status, rows = call(served, "POST", "/v1/models/ncf/versions/2:predict", json.dumps(
        {"signature_name": "serving_default", "instances": instances}))
    assert status == 200
    assert [row["item_id"] for row in rows["predictions"]] == items.tolist()
    np.testing.assert_array_equal(
        np.array([row["rating"] for row in rows["predictions"]], np.float32), by_grpc)


def _good_predict() -> str:
    return json.dumps({"inputs": {"user_id": [1, 2], "item_id": [3, 4]}})


@pytest.mark.parametrize("method, path, body, code, message", [
    ("POST", "/v1/models/ncf:predict", '{"inputs": {"user_id": [1], "item_id": [2]', 400,
     "JSON Parse error"),
    ("POST", "/v1/models/ncf:predict", "", 400, "JSON Parse error: The document is empty"),
    ("POST", "/v1/models/movies:predict", _good_predict(), 404, "model 'movies' not found"),
    ("GET", "/v1/models/movies", None, 404, "model 'movies' not found"),
    ("POST", "/v1/models/ncf/versions/7:predict", _good_predict(), 404, "version 7"),
    ("POST", "/v1/models/ncf:predict", '{"inputs": {"user": [1], "item_id": [2]}}', 400,
     "expects: item_id int32 [-1]; user_id int32 [-1]"),
    ("POST", "/v1/models/ncf:predict", '{"instances": [{"user": 1, "item_id": 2}]}', 400,
     "instances[0] has ['item_id', 'user'], expected objects with the signature's inputs"),
    ("POST", "/v1/models/ncf:predict", '{"instances": [1, 2]}', 400, "'instances' is a plain list"),
    ("POST", "/v1/models/ncf:predict", '{"inputs": {"user_id": [1.5], "item_id": [2]}}', 400,
     "input 'user_id' is float64, expected user_id int32 [-1]"),
    ("POST", "/v1/models/ncf:predict", '{"inputs": {"user_id": ["a"], "item_id": [2]}}', 400,
     "input 'user_id' is string"),
    ("POST", "/v1/models/ncf:predict", '{"inputs": {"user_id": [[1], 2], "item_id": [2]}}', 400,
     "input 'user_id' is not a list of equal-length lists"),
    ("POST", "/v1/models/ncf:predict", '{"inputs": {"user_id": [10000], "item_id": [2]}}', 400,
     "the model refused the inputs: indices[0] = 10000 is not in"),
    ("POST", "/v1/models/ncf:predict", '{"inputs": {"user_id": [1, 2, 3], "item_id": [2, 3]}}',
     400, "inputs of one request must have the same length, but 'item_id' has 2, 'user_id' has 3"),
    ("POST", "/v1/models/ncf:predict", '{"inputs": {}, "instances": []}', 400, "exactly one of"),
    ("POST", "/v1/models/ncf:classify", _good_predict(), 501, "classify is not served"),
    ("GET", "/v1/models/ncf:predict", None, 400, "Malformed request: GET /v1/models/ncf:predict"),
    ("GET", "/index.html", None, 404, "no REST API at /index.html"),
], ids=["malformed JSON", "empty body", "unknown model", "status of an unknown model",
      "unknown version", "wrong input name", "wrong instance key", "plain instances",
      "float for int", "string for int", "ragged list", "id beyond the embedding",
      "different lengths", "both formats", "classify", "GET predict", "outside the API"])
def test_bad_request_gets_tf_servings_code_and_one_line_and_the_server_keeps_serving(
        served: LocalLauncher, method: str, path: str, body: str | None, code: int,
        message: str) -> None:
    status, answer = call(served, method, path, body)
    assert status == code
    assert list(answer) == ["error"] and message in answer["error"]
    assert "\n" not in answer["error"]
    assert call(served, "POST", "/v1/models/ncf:predict", _good_predict())[0] == 200


def test_one_kept_alive_connection_serves_many_requests(served: LocalLauncher) -> None:
    host, port = served.rest_address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for _ in range(20):
            connection.request("POST", "/v1/models/ncf:predict", body=_good_predict())
            response = connection.getresponse()
            assert response.status == 200
            assert len(json.loads(response.read())["outputs"]["rating"]) == 2
    finally:
        connection.close()


def test_rest_is_off_unless_asked(tiny_model: ModelLocation) -> None:
    launcher = LocalLauncher(tiny_model)
    assert "--rest_api_port=0" in launcher.command(ServerSettings(1, 1, 1), 8500)
    assert launcher.rest_address is None


@pytest.mark.docker
def test_the_image_serves_rest_with_the_grpc_scores(tiny_model: ModelLocation,
                                                    serving_image: str) -> None:
    """REST in the image: on 8501 unless told otherwise (as TF Serving's image), here
    on a free port since the host network is shared."""
    import docker

    entrypoint = docker.from_env().containers.run(
        serving_image, entrypoint=["cat", "/usr/bin/tf_serving_entrypoint.sh"], remove=True)
    assert b"--rest_api_port=8501" in entrypoint
    with make_launcher("docker", tiny_model, image=serving_image, rest=True) as launcher:
        launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        users, items = sample_ids(30, seed=3)
        status, body = call(launcher, "POST", "/v1/models/ncf:predict", json.dumps(
            {"inputs": {"user_id": users.tolist(), "item_id": items.tolist()}}))
        grpc_client = PlainClient(launcher.address)
        by_grpc = grpc_client.scores(users, items)
        grpc_client.close()
    assert status == 200
    np.testing.assert_array_equal(np.array(body["outputs"]["rating"], np.float32), by_grpc)
