"""Recorded requests: what a run sends to a model that is not the NCF one.

TF Serving's convention for "requests that represent this model's traffic" is its
warmup file, `<version>/assets.extra/tf_serving_warmup_requests`: a TFRecord file of
`tensorflow.serving.PredictionLog` records (at most 1,000), each a `predict_log` with a
`PredictRequest` and, optionally, the `PredictResponse` it got. `--requests FILE` names
such a file; without it a model that is not autotune's NCF export is measured from its
own warmup file (autotune.tuning.traffic).

`read_records` decodes every record's inputs (and recorded outputs) into `RequestRows`,
and `check_records` checks them against the model's signature before the first trial:
the names, dtypes and shapes the signature states (dtypes exactly, as TF Serving wants
them), and one first dimension shared by a record's inputs and outputs, along which
requests are split (online) and joined (batch). Whatever does not fit is a `UsageError`
naming the file, the record and the input, and what the signature wants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2

from autotune.errors import UsageError
from autotune.measure.rows import DEFAULT_SIGNATURE, RequestRows
from autotune.measure.signature import Signature, TensorSpec
from autotune.serving.tensors import TensorDecodeError, decode, label
from autotune.serving.warmup import PREDICT_LOG, WarmupError, read_prediction_logs

#: what a record's response holds: each recorded output, by name
Outputs = dict[str, np.ndarray]
#: hex digits of a file's digest kept in the study (and its host class)
DIGEST_CHARS = 16


@dataclass(frozen=True)
class Records:
    """The decoded requests of a PredictionLog file: one `RequestRows` per record (all
    for one signature) and each record's recorded outputs (None where it has none)."""

    path: Path
    requests: tuple[RequestRows, ...]
    responses: tuple[Outputs | None, ...]
    digest: str

    @property
    def signature(self) -> str:
        return self.requests[0].signature

    @property
    def largest(self) -> int:
        """The rows of the largest record (the default batch of batch mode)."""
        return max(len(request) for request in self.requests)

    def rows(self) -> RequestRows:
        """Every record's rows in order, asking for the outputs any record asks for (all
        of them when one asks for none)."""
        filters = [request.outputs for request in self.requests]
        outputs = () if not all(filters) else tuple(dict.fromkeys(o for f in filters for o in f))
        joined = RequestRows.join(self.requests)
        return RequestRows(joined.arrays, joined.signature, outputs)

    def describe(self) -> dict[str, object]:
        """What the study records of them: the file, its digest, records and rows, and
        how many carry a response."""
        return {"file": str(self.path.resolve()), "digest": self.digest,
                "records": len(self.requests), "rows": sum(map(len, self.requests)),
                "with_responses": sum(response is not None for response in self.responses)}


def read_records(path: Path) -> Records:
    """Every record of a PredictionLog TFRecord file, decoded; `UsageError` naming the file
    and the record when it is not one, or a record is not a decodable Predict request."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no requests file {path}: give a TFRecord file of tensorflow.serving."
                         "PredictionLog records (TF Serving's warmup format)")
    requests, responses = [], []
    try:
        for index, log in enumerate(read_prediction_logs(path)):
            if log.WhichOneof("log_type") != PREDICT_LOG:
                raise UsageError(f"{path}: record {index} holds no {PREDICT_LOG} (it is "
                                 f"{log.WhichOneof('log_type') or 'an empty PredictionLog'}); "
                                 "each record must be a PredictionLog with a predict_log")
            requests.append(_request_rows(log.predict_log.request, index, path))
            responses.append(_response(log.predict_log.response, index, path))
    except WarmupError as error:
        raise UsageError(str(error)) from None
    if not requests:
        raise UsageError(f"{path} holds no records: write PredictionLog records with a "
                         "predict_log each (see README, 'Tune your own model')")
    _check_one_signature(requests, path)
    return Records(path, tuple(requests), tuple(responses),
                   hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_CHARS])


def _decoded(tensors: Mapping[str, tensor_pb2.TensorProto], what: str, path: Path) -> Outputs:
    """Decoded tensors, each named in a `UsageError` when it does not decode."""
    arrays = {}
    for name, proto in sorted(tensors.items()):
        try:
            arrays[name] = decode(proto)
        except TensorDecodeError as error:
            raise UsageError(f"{path}: {what} '{name}' does not decode: {error}") from None
    return arrays


def _request_rows(request: predict_pb2.PredictRequest, index: int, path: Path) -> RequestRows:
    arrays = _decoded(request.inputs, f"record {index}: input", path)
    try:
        return RequestRows(arrays, request.model_spec.signature_name or DEFAULT_SIGNATURE,
                           tuple(request.output_filter))
    except ValueError:
        shapes = ", ".join(f"'{name}' {_shape(array)}" for name, array in arrays.items())
        raise UsageError(f"{path}: record {index}: its inputs ({shapes or 'none'}) do not share "
                         "a first dimension, along which autotune splits and joins requests"
                         ) from None


def _response(response: predict_pb2.PredictResponse, index: int, path: Path) -> Outputs | None:
    if not response.outputs:
        return None
    return _decoded(response.outputs, f"record {index}: response output", path)


def _check_one_signature(requests: list[RequestRows], path: Path) -> None:
    for index, request in enumerate(requests):
        if request.signature != requests[0].signature:
            raise UsageError(f"{path}: record {index} asks for signature {request.signature!r} "
                             f"and record 0 for {requests[0].signature!r}: keep the records "
                             "of one signature")


def check_records(records: Records, signatures: Mapping[str, Signature]) -> Signature:
    """`UsageError` for the first record that does not fit its signature (see the module
    docstring); the signature they fit."""
    path = records.path
    signature = signatures.get(records.signature)
    if signature is None:
        raise UsageError(f"{path}: the records ask for signature {records.signature!r}; the "
                         f"model has {sorted(signatures)}")
    for index, (request, response) in enumerate(zip(records.requests, records.responses,
                                                    strict=True)):
        where = f"{path}: record {index}"
        _check_names(where, "input", set(request.arrays), signature.inputs, signature)
        for name, array in request.arrays.items():
            _check_tensor(where, "input", signature.inputs[name], array)
        unknown = set(request.outputs) - set(signature.outputs)
        if unknown:
            raise UsageError(f"{where} asks for output {sorted(unknown)[0]!r}, which signature "
                             f"{signature.name!r} does not have (its outputs: "
                             f"{sorted(signature.outputs)})")
        for name, array in (response or {}).items():
            if name not in signature.outputs:
                raise UsageError(f"{where}: its response has output {name!r}, which signature "
                                 f"{signature.name!r} does not have (its outputs: "
                                 f"{sorted(signature.outputs)})")
            _check_tensor(where, "response output", signature.outputs[name], array)
            if array.ndim == 0 or len(array) != len(request):
                raise UsageError(f"{where}: its response output {name!r} has shape "
                                 f"{_shape(array)} for a request of {len(request)} rows: "
                                 "each row's outputs must be along the first dimension")
    return signature


def _check_names(where: str, what: str, given: set[str], wanted: Mapping[str, TensorSpec],
                 signature: Signature) -> None:
    unknown, missing = sorted(given - set(wanted)), sorted(set(wanted) - given)
    if unknown:
        raise UsageError(f"{where}: {what} {unknown[0]!r} is not in signature "
                         f"{signature.name!r}, which wants: {signature.expects()}")
    if missing:
        raise UsageError(f"{where} lacks {what} {wanted[missing[0]].describe()} of signature "
                         f"{signature.name!r}, which wants: {signature.expects()}")


def _check_tensor(where: str, what: str, spec: TensorSpec, array: np.ndarray) -> None:
    """The dtype exactly (TF Serving converts none), the rank and every fixed dimension."""
    if array.dtype != spec.dtype:
        raise UsageError(f"{where}: {what} {spec.key!r} is {label(array.dtype)}; the "
                         f"signature wants {spec.describe()}")
    if spec.shape is not None and (
            array.ndim != len(spec.shape)
            or any(want not in (None, got)
                   for want, got in zip(spec.shape, array.shape, strict=True))):
        raise UsageError(f"{where}: {what} {spec.key!r} has shape {_shape(array)}; the "
                         f"signature wants {spec.describe()}")


def _shape(array: np.ndarray) -> str:
    """`[1,12]`: a shape as the signature's is written (autotune.serving.tensors.describe)."""
    return str(list(array.shape)).replace(" ", "")
