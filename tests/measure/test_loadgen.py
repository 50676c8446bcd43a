"""The LoadGen adapter over several server instances: LoadGen's queries go to them in turn.

Two real gRPC Predict servers in this process (each counts what it answers) stand for
two instances; a short Server-scenario run must reach both, equally."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from autotune.measure.loadgen import CLIENT_PROCESSES, PredictSUT, RunSettings
from autotune.serving.tensors import encode_into

SHORT_RUN = RunSettings(bound_ms=1000.0, min_duration_s=0.5, min_queries=400, max_duration_s=3.0)


class CountingPrediction(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers every Predict with one rating and counts them."""

    def __init__(self) -> None:
        self.answered = 0
        self._lock = threading.Lock()
        self._response = predict_pb2.PredictResponse()
        encode_into(self._response.outputs["rating"], np.full((1, 1), 0.5, np.float32))

    def Predict(self, request, context):  # noqa: N802 (gRPC's name)
        with self._lock:
            self.answered += 1
        return self._response


def _serve(servicer: CountingPrediction) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def test_queries_are_shared_out_over_the_instances(loadgen_client, tmp_path) -> None:
    servicers = [CountingPrediction(), CountingPrediction()]
    servers, addresses = zip(*(_serve(servicer) for servicer in servicers), strict=True)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ncf"
    try:
        with PredictSUT(list(addresses), [request.SerializeToString()],
                        client=loadgen_client) as sut:
            result = sut.run(400.0, SHORT_RUN, tmp_path / "run")
    finally:
        for server in servers:
            server.stop(None)
    counts = [servicer.answered for servicer in servicers]
    assert result.errors == 0 and sum(counts) == result.queries >= 400
    # each client process sends its share to the instances in turn: one apart at most each
    assert abs(counts[0] - counts[1]) <= CLIENT_PROCESSES, counts
