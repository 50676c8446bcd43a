"""TF Serving's REST API over the served model, on `--rest_api_port`.

Routes, formats and status codes follow TF Serving's `http_rest_api_handler.cc` and
`json_tensor.cc`:

    GET  /v1/models/<name>[/versions/<n>|/labels/<l>]            GetModelStatus as JSON
    GET  /v1/models/<name>[/versions/<n>|/labels/<l>]/metadata   GetModelMetadata as JSON
    POST /v1/models/<name>[/versions/<n>|/labels/<l>]:predict    Predict

A predict body is `{"signature_name": ..., "instances": [...]}` (row format: one object
per example, or plain values for a one-input signature) or `{"inputs": {...}}`
(columnar: one list per input); the answer is `{"predictions": [...]}` or
`{"outputs": ...}` in the same format, with every output of the signature. Floats are
written in their shortest float32 form, as TF Serving writes them. A refused request gets
`{"error": "<one line>"}` with TF Serving's HTTP code for its gRPC status (400
INVALID_ARGUMENT, 404 NOT_FOUND, 501 UNIMPLEMENTED, ...).

The requests go through the same checks as gRPC's (autotune.serving.validation: shapes,
lengths, the model's id ranges) into the same loaded model and the same runner (batched
when `--enable_batching`), so both protocols refuse alike and share the thread settings.
Unlike TF Serving, unsigned 16-bit ids (the tutorial's `item_id`) are read and written.

The HTTP side is waitress (a production WSGI server: HTTP/1.1 keep-alive, a pool of
`--rest_api_num_threads` request threads, as TF Serving's libevent server has); JSON is
read and written by orjson, which handles numpy arrays directly.

Memory is bounded whatever the clients send. Parsing JSON into Python objects costs 4
to 8 times the body (row format the most), so: a body over `MAX_BODY_BYTES` (32 MiB; a
1,000,000-pair request in the columnar format takes about 20 MB) gets 413 from waitress
before it is read; a body over `LARGE_BODY_BYTES` waits on disk (waitress spools it)
and is read and parsed only while no other large body is (`_LARGE_PARSE`), so a few
clients sending large bodies at once cost what one costs (before: four refused 52 MB
bodies took the server from 1.2 to 3.3 GB).
"""

from __future__ import annotations

import contextlib
import re
import threading
from http import HTTPStatus
from typing import Any, Callable, Iterable, Mapping

import grpc
import numpy as np
import orjson
import tensorflow as tf
import waitress
from google.protobuf import json_format
from google.protobuf.message import Message
from waitress import wasyncore

from autotune.serving.batching import Runner, unbatched
from autotune.serving.model import ServedModel, ServedSignature
from autotune.serving.service import (
    SIGNATURE_DEF_FIELD,
    graph_refusal,
    metadata_response,
    status_response,
)
from autotune.serving.validation import (
    RequestError,
    check_arrays,
    check_model,
    expected_inputs,
    find_signature,
)

#: TF Serving's paths (http_rest_api_util.cc), matched case-insensitively as there
_API_PREFIX = re.compile(r"/v1/.*", re.IGNORECASE)
_MODEL = (r"/v1/models(?:/(?P<name>[^/:]+))?"
          r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?")
_PREDICT_PATH = re.compile(_MODEL + r":(?P<method>classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(_MODEL + r"(?:/(?P<metadata>metadata))?", re.IGNORECASE)
#: TF Serving's HTTP code for each gRPC status (http_server.cc, ToHTTPStatusCode)
HTTP_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
#: the largest request body taken (larger: 413 before it is read; module docstring)
MAX_BODY_BYTES = 32 << 20
#: a body larger than this waits on disk and is parsed while no other such body is
LARGE_BODY_BYTES = 1 << 20
#: held while a large body is read and parsed into arrays (not while the model runs)
_LARGE_PARSE = threading.Lock()
#: answers this large stay in memory (waitress spools larger ones to disk)
_OUT_BUFFER_BYTES = 1 << 30

StartResponse = Callable[[str, list[tuple[str, str]]], object]


def _invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _json_default(value: object) -> object:
    """What orjson cannot write itself: string tensors (bytes, object arrays)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _dumps(document: object) -> bytes:
    return orjson.dumps(document, default=_json_default, option=_JSON_OPTIONS)


def _message_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


class RestApi:
    """The WSGI application: routes a request, answers JSON, never raises."""

    def __init__(self, model: ServedModel, max_batch_size: int, run: Runner = unbatched) -> None:
        """`run` runs each predict's model call, as for gRPC (directly, or batched)."""
        self._model = model
        self._max_batch_size = max_batch_size
        self._run = run

    def __call__(self, environ: Mapping[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        try:
            code, body = HTTPStatus.OK, self._answer(environ)
        except RequestError as error:
            code = HTTPStatus(HTTP_CODES.get(error.code, 500))
            body = _dumps({"error": " ".join(error.message.split())})
        start_response(f"{code.value} {code.phrase}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _answer(self, environ: Mapping[str, Any]) -> bytes:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if not _API_PREFIX.fullmatch(path):
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"no REST API at {path}: the API is under /v1/models/<name>")
        route = (_PREDICT_PATH if method == "POST" else _STATUS_PATH).fullmatch(path)
        if method not in ("GET", "POST") or route is None:
            raise _invalid(f"Malformed request: {method} {path}")
        name, label = route["name"] or "", route["label"] or ""
        version = int(route["version"]) if route["version"] else None
        if method == "POST":
            if route["method"].lower() != "predict":
                raise RequestError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"{route['method']} is not served: this server answers predict")
            return self._predict(name, version, label, environ)
        if not name:
            raise _invalid("Missing model name in request.")
        check_model(self._model, name, version, label)
        if route["metadata"]:
            response = metadata_response(self._model)
            return _dumps({"model_spec": _message_json(response.model_spec),
                           "metadata": {SIGNATURE_DEF_FIELD: _message_json(
                               self._model.signature_def_map)}})
        return _dumps(_message_json(status_response(self._model)))

    def _predict(self, name: str, version: int | None, label: str,
                 environ: Mapping[str, Any]) -> bytes:
        length = _content_length(environ)
        with _LARGE_PARSE if length > LARGE_BODY_BYTES else contextlib.nullcontext():
            signature, arrays, row_format = self._decode(
                name, version, label, environ["wsgi.input"].read(length))
        try:
            outputs = self._run(signature, arrays)
        except tf.errors.InvalidArgumentError as error:
            raise _invalid(graph_refusal(error.message)) from None
        except tf.errors.OpError as error:
            raise RequestError(grpc.StatusCode.INTERNAL, error.message) from None
        return _dumps(_predictions(outputs) if row_format else _outputs(outputs))

    def _decode(self, name: str, version: int | None, label: str,
                body: bytes) -> tuple[ServedSignature, dict[str, np.ndarray], bool]:
        """A predict body as its signature, the checked input arrays and whether it was in
        the row format; the parsed JSON is dropped on return."""
        document = _parse(body)
        signature_name = document.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise _invalid("'signature_name' must be a string")
        check_model(self._model, name, version, label)
        signature = find_signature(self._model, signature_name)
        row_format = "instances" in document
        if row_format == ("inputs" in document):
            raise _invalid("the body must have exactly one of 'instances' (row format) or "
                           "'inputs' (columnar format)")
        values = (_rows(document["instances"], signature) if row_format
                  else _columns(document["inputs"], signature))
        return signature, check_arrays(signature, {key: _array(key, value, signature)
                                                   for key, value in values.items()},
                                       self._max_batch_size), row_format


def _content_length(environ: Mapping[str, Any]) -> int:
    """The body's length (waitress sets it, also for a chunked body it has read)."""
    length = environ.get("CONTENT_LENGTH") or "0"
    return int(length) if length.isdigit() else 0


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise _invalid("JSON Parse error: The document is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise _invalid(f"JSON Parse error: {error}") from None
    if not isinstance(document, dict):
        raise _invalid("JSON Value: the body is not a JSON object")
    return document


def _rows(instances: object, signature: ServedSignature) -> dict[str, list]:
    """The row format's values per input: `[{"user_id": 1, "item_id": 2}, ...]`, or
    `[v1, v2, ...]` when the signature has a single input."""
    if not isinstance(instances, list) or not instances:
        raise _invalid("'instances' must be a non-empty list")
    names = sorted(signature.inputs)
    if not isinstance(instances[0], dict):
        if len(names) > 1:
            raise _invalid(f"'instances' is a plain list, but the signature '{signature.key}' "
                           f"has several inputs: send objects with {expected_inputs(signature)}")
        return {names[0]: instances}
    for index, row in enumerate(instances):
        if not isinstance(row, dict) or sorted(row) != names:
            keys = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise _invalid(f"instances[{index}] has {keys}, expected objects with the "
                           f"signature's inputs: {expected_inputs(signature)}")
    return {name: [row[name] for row in instances] for name in names}


def _columns(inputs: object, signature: ServedSignature) -> dict[str, object]:
    """The columnar format's values per input: `{"user_id": [...], "item_id": [...]}`, or
    one list when the signature has a single input."""
    if isinstance(inputs, dict):
        return inputs
    if len(signature.inputs) > 1:
        raise _invalid(f"'inputs' is a plain list, but the signature '{signature.key}' has "
                       f"several inputs: send an object with {expected_inputs(signature)}")
    return {next(iter(signature.inputs)): inputs}


def _array(name: str, value: object, signature: ServedSignature) -> np.ndarray:
    """A JSON value as an array; numbers become floats where the input wants floats (JSON
    has one number type), an empty list takes the input's type (an empty batch is
    answered, as over gRPC), anything else keeps its own type for the dtype check."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise _invalid(f"input '{name}' is not a list of equal-length lists") from None
    if array.dtype.kind in "US":
        return array.astype(object)
    if array.dtype == np.dtype(object):
        raise _invalid(f"input '{name}' holds values that are not numbers, or lists of "
                       "unequal length")
    spec = signature.inputs.get(name)
    if spec is not None and (array.size == 0  # `[]` has no type (numpy reads it as float64)
                             or spec.dtype.kind == "f" and array.dtype.kind in "iu"):
        return array.astype(spec.dtype)
    return array


def _predictions(outputs: Mapping[str, np.ndarray]) -> dict[str, object]:
    """The row format answer: one value per example, or one object per example when the
    signature has several outputs."""
    names = sorted(outputs)
    if len(names) == 1:
        return {"predictions": outputs[names[0]]}
    batch = {len(outputs[name]) for name in names}
    if len(batch) > 1:
        raise _invalid(f"outputs {names} have different batch sizes {sorted(batch)}: use "
                       "the columnar format ('inputs')")
    rows = zip(*(list(outputs[name]) for name in names), strict=True)
    return {"predictions": [dict(zip(names, row, strict=True)) for row in rows]}


def _outputs(outputs: Mapping[str, np.ndarray]) -> dict[str, object]:
    """The columnar answer: the output itself, or an object of all outputs."""
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values()))}
    return {"outputs": dict(sorted(outputs.items()))}


class RestServer:
    """`RestApi` served by waitress on `host:port` from a background thread."""

    def __init__(self, api: RestApi, host: str, port: int, threads: int) -> None:
        """Bind now (`OSError` when the port is taken); serve once `start()` is called."""
        self._map: dict = {}
        self._server = waitress.create_server(
            api, map=self._map, host=host, port=port, threads=threads,
            ident="autotune-serving", inbuf_overflow=LARGE_BODY_BYTES,
            outbuf_overflow=_OUT_BUFFER_BYTES, max_request_body_size=MAX_BODY_BYTES)
        self._thread = threading.Thread(target=self._server.run, name="rest-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace_s: float) -> None:
        """Close every socket from inside the server's own loop (the only thread that may
        touch them), let the requests in progress finish, wait up to `grace_s`."""
        self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))
        self._thread.join(grace_s)
