"""The gRPC client of a TF-Serving-compatible server (what the trials measure through).

A channel to one server and model with no message size limit; requests are built once
from `RequestRows` (each input packed in `tensor_content`, typed as the model's
signature wants: autotune.measure.signature), never inside a timed loop, and sent
blocking (`send`) or as futures (`send_async`); the answer is every output asked for,
decoded. The REST client (autotune.measure.rest_client) has the same surface, so the
measurements and the gates do not know which protocol they drive.
"""

from __future__ import annotations

from collections import deque

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from autotune.measure.rows import RequestRows
from autotune.measure.signature import Signature, find_signature, read_signatures
from autotune.serving.tensors import decode, encode_into

#: no message size limit: a large --batch-size or gate request can pass gRPC's 4 MiB default
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
#: what a client answers: each output asked for, by name
Outputs = dict[str, np.ndarray]


class ServingClient:
    """A channel to one server and model; use as a context manager to close it."""

    def __init__(self, address: str, model_name: str, timeout_s: float = 120.0) -> None:
        self.address = address
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.signatures = self._read_signatures()

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _read_signatures(self) -> dict[str, Signature]:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        response = self._stub.GetModelMetadata(request, timeout=self.timeout_s)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return read_signatures(signature_map)

    def signature(self, name: str) -> Signature:
        """The served model's signature `name` (`UsageError` when it has none such)."""
        return find_signature(self.model_name, self.signatures, name)

    def request(self, rows: RequestRows) -> predict_pb2.PredictRequest:
        """A predict request of `rows`, each input typed as the signature wants."""
        signature = self.signature(rows.signature)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature.name
        request.output_filter.extend(rows.outputs)
        for name, values in rows.arrays.items():
            spec = signature.inputs.get(name)
            typed = values if spec is None else values.astype(spec.dtype, copy=False)
            encode_into(request.inputs[name], typed, packed=True)
        return request

    def send(self, request: predict_pb2.PredictRequest) -> Outputs:
        """Send a prepared request; its outputs."""
        return _outputs(self._stub.Predict(request, timeout=self.timeout_s))

    def send_async(self, request: predict_pb2.PredictRequest) -> grpc.Future:
        """Send a prepared request without waiting; `receive` its future for the outputs."""
        return self._stub.Predict.future(request, timeout=self.timeout_s)

    def receive(self, future: grpc.Future) -> Outputs:
        """The outputs of a request sent with `send_async`, once it is answered."""
        return _outputs(future.result())

    def predict(self, rows: RequestRows, batch_size: int = 100_000, in_flight: int = 2) -> Outputs:
        """The outputs of any number of rows, in requests of `batch_size` rows, joined.

        Up to `in_flight` requests are outstanding, so the client encodes the next batch
        while the server computes the current one.
        """
        pending: deque[grpc.Future] = deque()
        answers: list[Outputs] = []
        for start in range(0, len(rows), batch_size):
            request = self.request(rows.take(slice(start, start + batch_size)))
            pending.append(self.send_async(request))
            if len(pending) >= in_flight:
                answers.append(self.receive(pending.popleft()))
        answers.extend(self.receive(future) for future in pending)
        return join_outputs(answers)


def _outputs(response: predict_pb2.PredictResponse) -> Outputs:
    return {name: decode(proto) for name, proto in response.outputs.items()}


def join_outputs(answers: list[Outputs]) -> Outputs:
    """The outputs of consecutive requests, joined along the first dimension."""
    if not answers:
        return {}
    return {name: np.concatenate([answer[name] for answer in answers]) for name in answers[0]}
