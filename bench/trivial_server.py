"""A trivial TF-Serving-compatible Predict server: the same small answer to every request.

It measures the load generator, not a model: `bench/server.py` runs it as its own
process (so it does not share the load generator's interpreter) where the native twin
(`bench/trivial_server.cc`) cannot be built, and finds the highest rate the LoadGen
adapter sustains against it. An asyncio gRPC server, the cheapest Python server per
request; `fixed_response` is also the native server's answer.

    python bench/trivial_server.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from autotune.serving.tensors import encode_into


def fixed_response() -> predict_pb2.PredictResponse:
    """One `rating` of shape [1, 1], like the NCF model's answer to one pair."""
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "ncf"
    encode_into(response.outputs["rating"], np.full((1, 1), 0.5, np.float32))
    return response


class TrivialPrediction(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict answers at once, whatever the request."""

    def __init__(self) -> None:
        self._response = fixed_response()

    async def Predict(self, request: predict_pb2.PredictRequest,
                      context: grpc.aio.ServicerContext) -> predict_pb2.PredictResponse:
        return self._response


async def serve(port: int) -> None:
    server = grpc.aio.server()
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(TrivialPrediction(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"trivial server listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
