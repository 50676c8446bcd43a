"""TensorProto <-> numpy, the fast way.

Requests carry their values either packed in `tensor_content` (what TF's
`make_tensor_proto` and fast clients send) or in the typed repeated field of their dtype
(`int_val`, `int64_val`, `float_val`, ...). Packed content is decoded without a copy by
`np.frombuffer`.

Responses are written as TF Serving writes them: by default in the typed field
(its `Tensor::AsProtoField`, kept for clients that read `outputs['rating'].float_val`),
or packed in `tensor_content` when the server runs with
`--enable_serialization_as_tensor_content`.

Filling `float_val` value by value from Python costs about 20 ms for 50,000 floats, far
more than the model takes. So `float_val` and `double_val` are written and read through
their wire format instead: a proto3 repeated number field is encoded packed, one
length-delimited record holding the little-endian values back to back, which is exactly
how a `bytes` field of the same number is encoded. `_PackedValues` declares those
numbers as `bytes`, so numpy builds the record (`tobytes()`) and protobuf's own parser
merges it into the TensorProto (0.1 ms), and reading goes the other way. The integer
fields hold varints, which protobuf appends from a list faster than numpy could encode
them (5 ms for 50,000), so they are appended.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from tensorflow.core.framework import tensor_pb2, types_pb2


class TensorDecodeError(ValueError):
    """A TensorProto that does not hold a valid tensor; the message says why."""


#: dtype enum -> (numpy dtype, the typed field that holds its values)
_DTYPES: dict[int, tuple[np.dtype, str]] = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    types_pb2.DT_HALF: (np.dtype(np.float16), "half_val"),
    types_pb2.DT_INT8: (np.dtype(np.int8), "int_val"),
    types_pb2.DT_INT16: (np.dtype(np.int16), "int_val"),
    types_pb2.DT_INT32: (np.dtype(np.int32), "int_val"),
    types_pb2.DT_INT64: (np.dtype(np.int64), "int64_val"),
    types_pb2.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    types_pb2.DT_UINT16: (np.dtype(np.uint16), "int_val"),
    types_pb2.DT_UINT32: (np.dtype(np.uint32), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype(np.uint64), "uint64_val"),
    types_pb2.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
    types_pb2.DT_STRING: (np.dtype(object), "string_val"),
}
_ENUM_OF_DTYPE: dict[np.dtype, int] = {
    dtype: enum for enum, (dtype, _) in _DTYPES.items() if dtype != np.dtype(object)
}
#: typed fields whose wire values are the little-endian numbers themselves
_FIXED_WIDTH_FIELDS = {"float_val": np.dtype("<f4"), "double_val": np.dtype("<f8")}
#: up to this many values, even a float field is appended (cheaper than numpy's set-up)
_FEW_VALUES = 16


def _packed_values_class() -> type:
    """A message with TensorProto's typed-field numbers declared as `bytes` (module docstring)."""
    number = {field.name: field.number for field in tensor_pb2.TensorProto.DESCRIPTOR.fields}
    file = descriptor_pb2.FileDescriptorProto(name="autotune/serving/packed_values.proto",
                                              package="autotune.serving", syntax="proto3")
    message = file.message_type.add(name="PackedValues")
    for name in _FIXED_WIDTH_FIELDS:
        message.field.add(name=name, number=number[name],
                          type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
                          label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("autotune.serving.PackedValues"))


_PackedValues = _packed_values_class()


def dtype_name(enum: int) -> str:
    """`DT_INT32` -> `int32`: the name a user knows from TensorFlow."""
    return types_pb2.DataType.Name(enum).removeprefix("DT_").lower()


def label(dtype: np.dtype) -> str:
    """A numpy dtype by TensorFlow's name (`int32`, `string` for bytes objects)."""
    return "string" if dtype == np.dtype(object) else dtype.name


def describe(name: str, dtype: np.dtype, shape: Sequence[int | None] | None) -> str:
    """`user_id int32 [-1]`: a signature's tensor as TF Serving's messages name it, in its
    shape notation (-1 = any size; `any shape` when the rank is free)."""
    dims = "any shape" if shape is None else str([-1 if d is None else d for d in shape])
    return f"{name} {label(dtype)} {dims}".replace(", ", ",")


def numpy_dtype(enum: int) -> np.dtype:
    """The numpy dtype of a TensorFlow dtype enum; `TensorDecodeError` if unsupported."""
    try:
        return _DTYPES[enum][0]
    except KeyError:
        raise TensorDecodeError(f"dtype {dtype_name(enum)} is not supported") from None


def shape_of(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    """The shape a TensorProto declares."""
    return tuple(dim.size for dim in proto.tensor_shape.dim)


def decode(proto: tensor_pb2.TensorProto, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The array a TensorProto holds (read-only when decoded from `tensor_content`).

    `shape` saves re-reading the declared shape when the caller already has it.
    """
    dtype = numpy_dtype(proto.dtype)
    shape = shape_of(proto) if shape is None else shape
    if any(size < 0 for size in shape):
        raise TensorDecodeError(f"shape {list(shape)} has a negative dimension")
    count = math.prod(shape)
    content = proto.tensor_content  # each read of the field copies its bytes
    if content and dtype != np.dtype(object):
        if len(content) != count * dtype.itemsize:
            raise TensorDecodeError(
                f"tensor_content has {len(content)} bytes, shape {list(shape)} "
                f"of {dtype.name} needs {count * dtype.itemsize}")
        return np.frombuffer(content, dtype=dtype).reshape(shape)
    return _decode_typed_values(proto, dtype, shape, count)


def _decode_typed_values(proto: tensor_pb2.TensorProto, dtype: np.dtype,
                         shape: tuple[int, ...], count: int) -> np.ndarray:
    field = _DTYPES[proto.dtype][1]
    if field in _FIXED_WIDTH_FIELDS and count > 1:
        raw = getattr(_PackedValues.FromString(proto.SerializeToString()), field)
        if len(raw) == count * dtype.itemsize:  # else not one packed record: read it below
            values = np.frombuffer(raw, dtype=_FIXED_WIDTH_FIELDS[field])
            return values.astype(dtype, copy=False).reshape(shape)
    values = list(getattr(proto, field))  # numpy reads a list faster than the container
    if dtype == np.dtype(np.float16):
        array = np.array(values, dtype=np.uint16).view(np.float16)
    else:
        array = np.array(values, dtype=dtype)
    if array.size == count:
        return array.reshape(shape)
    if array.size == 1:
        # As in TensorFlow: a single value fills the whole declared shape.
        return np.full(shape, array[0], dtype=dtype)
    raise TensorDecodeError(f"{field} has {array.size} values, shape {list(shape)} needs {count}")


def encode_into(proto: tensor_pb2.TensorProto, array: np.ndarray, packed: bool = False) -> None:
    """Write `array` into an (empty) TensorProto: in its dtype's typed field, as TF
    Serving does by default, or (`packed`) in `tensor_content`."""
    if array.dtype == np.dtype(object):
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(array.ravel().tolist())
    else:
        try:
            proto.dtype = _ENUM_OF_DTYPE[array.dtype]
        except KeyError:
            raise TensorDecodeError(f"cannot encode arrays of {array.dtype}") from None
        field = _DTYPES[proto.dtype][1]
        if packed:
            proto.tensor_content = np.ascontiguousarray(array).tobytes()
        elif field in _FIXED_WIDTH_FIELDS and array.size > _FEW_VALUES:
            record = array.ravel().astype(_FIXED_WIDTH_FIELDS[field], copy=False).tobytes()
            proto.MergeFromString(_PackedValues(**{field: record}).SerializeToString())
        else:  # half_val holds float16 bit patterns
            values = array.view(np.uint16) if array.dtype == np.float16 else array
            getattr(proto, field).extend(values.ravel().tolist())
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
