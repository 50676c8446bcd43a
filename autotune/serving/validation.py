"""Checking a request against the served model, and decoding its inputs.

Every way a request can be wrong becomes a `RequestError` with the gRPC status TF
Serving uses (NOT_FOUND for another model or version, INVALID_ARGUMENT for the rest)
and a message saying what was expected. Checks run on the declared shapes before any
value is decoded, so an oversize request costs nothing; then, before the graph runs,
inputs of one batch must have the same length, and ids must lie in the range the model
states (autotune.serving.ranges), so no request reaches the graph to fail there. gRPC
(TensorProtos) and REST (arrays read from JSON) go through the same checks, so both
refuse the same requests.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import model_pb2

from autotune.serving import tensors
from autotune.serving.model import InputSpec, ServedModel, ServedSignature

DEFAULT_SIGNATURE = "serving_default"


class RequestError(Exception):
    """A request the server refuses: the gRPC status code and a clear message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_model(model: ServedModel, name: str, version: int | None = None,
                version_label: str = "") -> None:
    """NOT_FOUND unless `name` is the served model (and `version`, if given, its version)."""
    if name != model.name:
        raise RequestError(grpc.StatusCode.NOT_FOUND,
                           f"model '{name}' not found: this server serves '{model.name}'")
    if version is not None and version != model.version:
        raise RequestError(grpc.StatusCode.NOT_FOUND,
                           f"version {version} of model '{model.name}' not found: "
                           f"this server serves version {model.version}")
    if version_label:
        raise RequestError(grpc.StatusCode.NOT_FOUND,
                           f"version label '{version_label}' not found: labels are not "
                           f"supported, version {model.version} is served")


def check_model_spec(model: ServedModel, spec: model_pb2.ModelSpec) -> None:
    """`check_model` for a gRPC request's ModelSpec."""
    check_model(model, spec.name, spec.version.value if spec.HasField("version") else None,
                spec.version_label)


def find_signature(model: ServedModel, signature_name: str) -> ServedSignature:
    """The signature named (default `serving_default`), INVALID_ARGUMENT if there is none."""
    key = signature_name or DEFAULT_SIGNATURE
    try:
        return model.signatures[key]
    except KeyError:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"signature '{key}' not found; the model has: "
                           f"{', '.join(sorted(model.signatures))}") from None


def resolve_signature(model: ServedModel, spec: model_pb2.ModelSpec) -> ServedSignature:
    """The signature a gRPC request asks for (default `serving_default`)."""
    check_model_spec(model, spec)
    return find_signature(model, spec.signature_name)


def select_outputs(signature: ServedSignature, output_filter: Sequence[str]) -> tuple[str, ...]:
    """The outputs to answer with: those of `output_filter`, or all of them when empty."""
    wanted = tuple(output_filter) or signature.output_names
    unknown = set(wanted) - set(signature.output_names)
    if unknown:
        raise _invalid(f"output_filter names {sorted(unknown)} not in the signature "
                       f"'{signature.key}', whose outputs are {list(signature.output_names)}")
    return wanted


def expected_inputs(signature: ServedSignature) -> str:
    """`item_id int32 [-1]; user_id int32 [-1]`: what a request must carry."""
    return "; ".join(spec.describe() for spec in signature.inputs.values())


def _check_names(signature: ServedSignature, names: Iterable[str]) -> None:
    if set(names) != set(signature.inputs):
        raise _invalid(f"inputs {sorted(names)} do not match the signature "
                       f"'{signature.key}', which expects: {expected_inputs(signature)}")


def decode_inputs(signature: ServedSignature, inputs: Mapping[str, tensor_pb2.TensorProto],
                  max_batch_size: int) -> dict[str, np.ndarray]:
    """A gRPC request's inputs as arrays of the signature's dtypes, or a `RequestError`."""
    _check_names(signature, inputs)
    _check_same_length(signature, {name: tensors.shape_of(proto) for name, proto in inputs.items()})
    return {name: _decode_input(spec, inputs[name], max_batch_size)
            for name, spec in signature.inputs.items()}


def check_arrays(signature: ServedSignature, inputs: Mapping[str, np.ndarray],
                 max_batch_size: int) -> dict[str, np.ndarray]:
    """Decoded inputs (a REST request's) as arrays of the signature's dtypes, or a
    `RequestError`: the checks `decode_inputs` makes."""
    _check_names(signature, inputs)
    _check_same_length(signature, {name: array.shape for name, array in inputs.items()})
    arrays = {}
    for name, spec in signature.inputs.items():
        _check_shape(spec, inputs[name].shape, max_batch_size)
        _check_range(spec, inputs[name])
        arrays[name] = _as_dtype(spec, inputs[name])
    return arrays


def _check_same_length(signature: ServedSignature,
                       shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Inputs whose first dimension is the batch must all have the same batch size."""
    lengths = {name: shapes[name][0] for name, spec in signature.inputs.items()
               if spec.shape and spec.shape[0] is None and shapes[name]}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"'{name}' has {length:,}" for name, length in sorted(lengths.items()))
        raise _invalid(f"inputs of one request must have the same length, but {sizes}: "
                       "send one value of each input per example")


def _invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _check_shape(spec: InputSpec, shape: tuple[int, ...], max_batch_size: int) -> None:
    if spec.shape is not None and (
            len(shape) != len(spec.shape)
            or any(want not in (None, got) for want, got in zip(spec.shape, shape, strict=True))):
        raise _invalid(f"input '{spec.name}' has shape {list(shape)}, expected {spec.describe()}")
    if shape and shape[0] > max_batch_size:
        raise _invalid(f"input '{spec.name}' has a batch of {shape[0]:,}, more than the "
                       f"server's maximum of {max_batch_size:,} (--max_batch_size)")


def _decode_input(spec: InputSpec, proto: tensor_pb2.TensorProto,
                  max_batch_size: int) -> np.ndarray:
    shape = tensors.shape_of(proto)
    _check_shape(spec, shape, max_batch_size)
    try:
        array = tensors.decode(proto, shape)
    except tensors.TensorDecodeError as error:
        raise _invalid(f"input '{spec.name}': {error}; expected {spec.describe()}") from None
    _check_range(spec, array)
    return _as_dtype(spec, array)


def _check_range(spec: InputSpec, array: np.ndarray) -> None:
    """INVALID_ARGUMENT for the first id outside the range the model states (values that
    are not numbers are left to `_as_dtype` to refuse)."""
    if spec.valid_range is None or not array.size or array.dtype.kind not in "iuf":
        return
    low, high = spec.valid_range
    if low <= array.min() and array.max() <= high:
        return
    outside = np.flatnonzero((array < low) | (array > high))
    if outside.size:
        index = int(outside[0])
        raise _invalid(f"input '{spec.name}' has id {array.flat[index]} at position {index}, "
                       f"outside the model's range [{low}, {high}]"
                       + (f" ({outside.size:,} ids outside)" if outside.size > 1 else ""))


def _as_dtype(spec: InputSpec, array: np.ndarray) -> np.ndarray:
    """Integers cast to integers and floats to floats (a model exported with `uint16`
    ids serves `int32` requests); any other dtype mismatch is refused."""
    if array.dtype == spec.dtype:
        return array
    if array.dtype.kind in "iu" and spec.dtype.kind in "iu":
        limits = np.iinfo(spec.dtype)
        if array.size and (array.min() < limits.min or array.max() > limits.max):
            raise _invalid(f"input '{spec.name}' has values outside the range of "
                           f"{spec.dtype.name} [{limits.min}, {limits.max}]")
        return array.astype(spec.dtype)
    if array.dtype.kind == "f" and spec.dtype.kind == "f":
        return array.astype(spec.dtype)
    raise _invalid(f"input '{spec.name}' is {tensors.label(array.dtype)}, "
                   f"expected {spec.describe()}")
