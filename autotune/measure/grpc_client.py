"""The gRPC client of a TF-Serving-compatible server (what the trials measure through).

A channel to one server and model with no message size limit; requests are built once
from numpy (`tensor_content`, typed as the model's signature wants: autotune.measure.signature),
never inside a timed loop, and sent blocking (`send`) or as futures (`send_async`). The
REST client (autotune.measure.rest_client) has the same surface, so the measurements
and the accuracy gate do not know which protocol they drive.
"""

from __future__ import annotations

from collections import deque

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from autotune.measure.signature import InputSpec, Signature, pick_signature
from autotune.serving.tensors import decode

#: no message size limit: a large --batch-size or gate request can pass gRPC's 4 MiB default
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


class ServingClient:
    """A channel to one server and model; use as a context manager to close it."""

    def __init__(self, address: str, model_name: str, signature_name: str = "serving_default",
                 timeout_s: float = 120.0) -> None:
        self.address = address
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.signature = self._read_signature(signature_name)

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _read_signature(self, signature_name: str) -> Signature:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        response = self._stub.GetModelMetadata(request, timeout=self.timeout_s)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return pick_signature(self.model_name, signature_map, signature_name)

    def request(self, users: np.ndarray, items: np.ndarray) -> predict_pb2.PredictRequest:
        """A predict request for these (user, item) pairs, typed as the signature wants."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = self.signature.name
        request.output_filter.append(self.signature.output_key)
        for spec, values in ((self.signature.user, users), (self.signature.item, items)):
            request.inputs[spec.key].CopyFrom(_tensor_proto(np.asarray(values).ravel(), spec))
        return request

    def send(self, request: predict_pb2.PredictRequest) -> np.ndarray:
        """Send a prepared request; the scores, one per pair."""
        return self._scores(self._stub.Predict(request, timeout=self.timeout_s))

    def send_async(self, request: predict_pb2.PredictRequest) -> grpc.Future:
        """Send a prepared request without waiting; `receive` its future for the scores."""
        return self._stub.Predict.future(request, timeout=self.timeout_s)

    def receive(self, future: grpc.Future) -> np.ndarray:
        """The scores of a request sent with `send_async`, once it is answered."""
        return self._scores(future.result())

    def predict(self, users: np.ndarray, items: np.ndarray, batch_size: int = 100_000,
                in_flight: int = 2) -> np.ndarray:
        """Scores for any number of pairs, in requests of `batch_size` pairs.

        Up to `in_flight` requests are outstanding, so the client encodes the next batch
        while the server computes the current one.
        """
        users, items = np.asarray(users).ravel(), np.asarray(items).ravel()
        pending: deque[grpc.Future] = deque()
        scores: list[np.ndarray] = []
        for start in range(0, len(users), batch_size):
            request = self.request(users[start:start + batch_size], items[start:start + batch_size])
            pending.append(self.send_async(request))
            if len(pending) >= in_flight:
                scores.append(self.receive(pending.popleft()))
        scores.extend(self.receive(future) for future in pending)
        return np.concatenate(scores) if scores else np.empty(0, dtype=np.float32)

    def _scores(self, response: predict_pb2.PredictResponse) -> np.ndarray:
        return decode(response.outputs[self.signature.output_key]).ravel()


def _tensor_proto(values: np.ndarray, spec: InputSpec) -> tensor_pb2.TensorProto:
    """A packed 1-D TensorProto of `values` cast to the input's dtype."""
    return tensor_pb2.TensorProto(
        dtype=spec.dtype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))]),
        tensor_content=values.astype(spec.dtype, copy=False).tobytes(),
    )


