"""The REST client of a TF-Serving-compatible server: what `--protocol rest` measures with.

The same surface as the gRPC `ServingClient` (`request`, `send`, `predict`,
`signatures`), so the measurements and the gates run unchanged over either protocol. As
a production client would: one pool of kept-alive HTTP connections (urllib3), JSON
bodies built once per request (`request`, outside any timed loop) in TF Serving's
columnar format, `{"inputs": {"user_id": [...], "item_id": [...]}}` (an input of more
dimensions as nested lists), and the outputs read from the answer's `outputs` (REST
answers every output of the signature; those asked for are kept), typed as the
signature states them. The signatures come from `GET /v1/models/<name>/metadata`, as
the gRPC client reads `GetModelMetadata`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import orjson
import urllib3
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from autotune.measure.grpc_client import Outputs, join_outputs
from autotune.measure.rows import RequestRows
from autotune.measure.signature import Signature, find_signature, read_signatures

JSON_HEADERS = {"Content-Type": "application/json"}


class RestError(Exception):
    """The server refused a request or stopped answering; the message says which and why."""


class RestRequest(NamedTuple):
    """A prepared predict call: its JSON body, and what reading its answer needs."""

    body: bytes
    signature: Signature
    outputs: tuple[str, ...]


class RestClient:
    """A connection pool to one server's REST API and one model; a context manager.

    `connections` bounds the requests outstanding at once (`send_async` runs each on a
    thread of a pool that size, the gRPC client's futures' counterpart)."""

    def __init__(self, address: str, model_name: str, timeout_s: float = 120.0,
                 connections: int = 2) -> None:
        host, port = address.rsplit(":", 1)
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._senders = ThreadPoolExecutor(max_workers=connections)
        self._pool = urllib3.HTTPConnectionPool(
            host, int(port), maxsize=connections, block=True, retries=False,
            timeout=urllib3.Timeout(total=timeout_s))
        self._predict_path = f"/v1/models/{model_name}:predict"
        metadata = self._call("GET", f"/v1/models/{model_name}/metadata")
        signature_map = json_format.ParseDict(metadata["metadata"]["signature_def"],
                                              get_model_metadata_pb2.SignatureDefMap(),
                                              ignore_unknown_fields=True)
        self.signatures = read_signatures(signature_map)

    def __enter__(self) -> "RestClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._pool.close()

    def signature(self, name: str) -> Signature:
        """The served model's signature `name` (`UsageError` when it has none such)."""
        return find_signature(self.model_name, self.signatures, name)

    def _call(self, method: str, path: str, body: bytes | None = None) -> Any:
        try:
            response = self._pool.request(method, path, body=body,
                                          headers=JSON_HEADERS if body else None)
        except urllib3.exceptions.HTTPError as error:
            raise RestError(f"{method} {path} failed: {error}") from error
        if response.status != 200:
            raise RestError(f"{method} {path}: HTTP {response.status}: "
                            f"{response.data.decode(errors='replace').strip()}")
        return orjson.loads(response.data)

    def request(self, rows: RequestRows) -> RestRequest:
        """The predict call of `rows`, each input typed as the signature wants."""
        signature = self.signature(rows.signature)
        inputs = {name: values if name not in signature.inputs
                  else values.astype(signature.inputs[name].dtype, copy=False)
                  for name, values in rows.arrays.items()}
        body = orjson.dumps({"signature_name": signature.name, "inputs": inputs},
                            option=orjson.OPT_SERIALIZE_NUMPY)
        return RestRequest(body, signature, rows.outputs)

    def send(self, request: RestRequest) -> Outputs:
        """POST a prepared call; the outputs it asked for (all when it named none)."""
        answer = self._call("POST", self._predict_path, request.body)["outputs"]
        signature = request.signature
        if not isinstance(answer, dict):  # a signature of one output answers it bare
            answer = {next(iter(signature.outputs)): answer}
        wanted = request.outputs or tuple(answer)
        return {name: np.asarray(answer[name], dtype=signature.outputs[name].dtype)
                if name in signature.outputs else np.asarray(answer[name])
                for name in wanted}

    def send_async(self, request: RestRequest) -> Future[Outputs]:
        """POST a prepared call without waiting; `receive` its future for the outputs."""
        return self._senders.submit(self.send, request)

    def receive(self, future: Future[Outputs]) -> Outputs:
        """The outputs of a call sent with `send_async`, once it is answered."""
        return future.result()

    def predict(self, rows: RequestRows, batch_size: int = 100_000, in_flight: int = 2) -> Outputs:
        """The outputs of any number of rows, in requests of `batch_size` rows, up to
        `in_flight` of them outstanding (the client encodes while the server computes)."""
        starts = range(0, len(rows), batch_size)
        with ThreadPoolExecutor(max_workers=in_flight) as pool:
            answers = list(pool.map(
                lambda start: self.send(self.request(rows.take(slice(start, start + batch_size)))),
                starts))
        return join_outputs(answers)
