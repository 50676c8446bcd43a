"""TensorProto <-> numpy, against TensorFlow's own make_tensor_proto / make_ndarray."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from autotune.serving import tensors


@pytest.mark.parametrize("values", [
    np.arange(6, dtype=np.int32).reshape(2, 3),
    np.array([1, 65535], np.uint16),
    np.array([-1, 2**40], np.int64),
    np.array([[0.5], [1.5]], np.float32),
    np.array([0.25, -2.0], np.float16),
    np.array([True, False]),
])
def test_decode_reads_what_tensorflow_writes(values: np.ndarray) -> None:
    np.testing.assert_array_equal(tensors.decode(tf.make_tensor_proto(values)), values)


def test_typed_fields_decode_and_a_single_value_fills_the_shape() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64)
    proto.tensor_shape.dim.add(size=3)
    proto.int64_val.append(9)
    np.testing.assert_array_equal(tensors.decode(proto), [9, 9, 9])
    proto.int64_val.extend([1, 2])
    np.testing.assert_array_equal(tensors.decode(proto), [9, 1, 2])


def test_half_values_are_bit_patterns() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_HALF)
    proto.tensor_shape.dim.add(size=1)
    proto.half_val.append(int(np.array([1.5], np.float16).view(np.uint16)[0]))
    assert tensors.decode(proto).tolist() == [1.5]


_ENCODED = [
    (np.random.default_rng(0).random((4, 1)).astype(np.float32), "float_val"),
    (np.random.default_rng(1).random((500, 1)).astype(np.float32), "float_val"),
    (np.array([0.5, -1e300, 3.0]), "double_val"),
    (np.random.default_rng(2).normal(size=300), "double_val"),
    (np.array([-(2**31), -1, 0, 127, 128, 2**31 - 1], np.int32), "int_val"),
    (np.array([-(2**63), -1, 2**62, 2**63 - 1], np.int64), "int64_val"),
    (np.array([0, 300, 65535], np.uint16), "int_val"),
    (np.array([-128, 5, 127], np.int8), "int_val"),
    (np.array([0, 2**32 - 1], np.uint32), "uint32_val"),
    (np.array([0, 2**64 - 1], np.uint64), "uint64_val"),
    (np.array([1.5, -0.25, 65504], np.float16), "half_val"),
    (np.array([True, False, True]), "bool_val"),
    (np.array([b"ab", b""], dtype=object), "string_val"),
    (np.zeros((0, 3), np.float32), "float_val"),
]


@pytest.mark.parametrize("values, field", _ENCODED, ids=[field for _, field in _ENCODED])
def test_encode_fills_the_typed_field_as_tf_servings_as_proto_field(values: np.ndarray,
                                                                     field: str) -> None:
    proto = tensor_pb2.TensorProto()
    tensors.encode_into(proto, values)
    assert not proto.tensor_content
    expected = values.view(np.uint16) if field == "half_val" else values
    assert list(getattr(proto, field)) == expected.ravel().tolist()
    np.testing.assert_array_equal(tf.make_ndarray(proto), values)
    np.testing.assert_array_equal(tensors.decode(proto), values)


def test_packed_encoding_writes_tensor_content_only() -> None:
    values = np.random.default_rng(0).random((4, 1)).astype(np.float32)
    proto = tensor_pb2.TensorProto()
    tensors.encode_into(proto, values, packed=True)
    assert proto.tensor_content and not proto.float_val
    np.testing.assert_array_equal(tf.make_ndarray(proto), values)


def test_unpacked_float_values_on_the_wire_are_still_read() -> None:
    """A sender may write each value as its own record (legal protobuf): read them all."""
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add(size=2)
    wire = b"".join(b"\x2d" + np.array([value], "<f4").tobytes() for value in (0.5, 2.0))
    proto.MergeFromString(wire)
    assert tensors.decode(proto).tolist() == [0.5, 2.0]


@pytest.mark.parametrize("mutate, message", [
    (lambda p: setattr(p, "tensor_content", b"\0" * 5), "tensor_content has 5 bytes"),
    (lambda p: setattr(p, "dtype", types_pb2.DT_COMPLEX64), "dtype complex64 is not supported"),
    (lambda p: p.tensor_shape.dim.add(size=-1), "negative dimension"),
])
def test_malformed_tensors_say_what_is_wrong(mutate, message: str) -> None:
    proto = tf.make_tensor_proto(np.arange(3, dtype=np.int32))
    mutate(proto)
    with pytest.raises(tensors.TensorDecodeError, match=message):
        tensors.decode(proto)
