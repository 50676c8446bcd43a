"""The REST client of a TF-Serving-compatible server: what `--protocol rest` measures with.

The same surface as the gRPC `ServingClient` (`request`, `send`, `predict`,
`signature`), so the measurements and the accuracy gate run unchanged over either
protocol. As a production client would: one pool of kept-alive HTTP connections
(urllib3), JSON bodies built once per request (`request`, outside any timed loop) in
TF Serving's columnar format, `{"inputs": {"user_id": [...], "item_id": [...]}}`, and
the scores read from the answer's `outputs`. The signature comes from
`GET /v1/models/<name>/metadata`, as the gRPC client reads `GetModelMetadata`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import urllib3
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from autotune.measure.signature import pick_signature

JSON_HEADERS = {"Content-Type": "application/json"}


class RestError(Exception):
    """The server refused a request or stopped answering; the message says which and why."""


class RestClient:
    """A connection pool to one server's REST API and one model; a context manager.

    `connections` bounds the requests outstanding at once (`send_async` runs each on a
    thread of a pool that size, the gRPC client's futures' counterpart)."""

    def __init__(self, address: str, model_name: str, signature_name: str = "serving_default",
                 timeout_s: float = 120.0, connections: int = 2) -> None:
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
        self.signature = pick_signature(model_name, signature_map, signature_name)

    def __enter__(self) -> "RestClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._pool.close()

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

    def request(self, users: np.ndarray, items: np.ndarray) -> bytes:
        """The JSON body of a predict request for these pairs, typed as the signature wants."""
        user, item = self.signature.user, self.signature.item
        inputs = {user.key: np.asarray(users).ravel().astype(user.dtype, copy=False),
                  item.key: np.asarray(items).ravel().astype(item.dtype, copy=False)}
        return orjson.dumps({"signature_name": self.signature.name, "inputs": inputs},
                            option=orjson.OPT_SERIALIZE_NUMPY)

    def send(self, body: bytes) -> np.ndarray:
        """POST a prepared body; the scores, one per pair."""
        outputs = self._call("POST", self._predict_path, body)["outputs"]
        scores = outputs[self.signature.output_key] if isinstance(outputs, dict) else outputs
        return np.asarray(scores, dtype=np.float32).ravel()

    def send_async(self, body: bytes) -> Future[np.ndarray]:
        """POST a prepared body without waiting; `receive` its future for the scores."""
        return self._senders.submit(self.send, body)

    def receive(self, future: Future[np.ndarray]) -> np.ndarray:
        """The scores of a request sent with `send_async`, once it is answered."""
        return future.result()

    def predict(self, users: np.ndarray, items: np.ndarray, batch_size: int = 100_000,
                in_flight: int = 2) -> np.ndarray:
        """Scores for any number of pairs, in requests of `batch_size` pairs, up to
        `in_flight` of them outstanding (the client encodes while the server computes)."""
        users, items = np.asarray(users).ravel(), np.asarray(items).ravel()
        starts = range(0, len(users), batch_size)
        with ThreadPoolExecutor(max_workers=in_flight) as pool:
            scores = list(pool.map(
                lambda start: self.send(self.request(users[start:start + batch_size],
                                                     items[start:start + batch_size])), starts))
        return np.concatenate(scores) if scores else np.empty(0, dtype=np.float32)
