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


def test_encode_is_packed_and_tensorflow_reads_it() -> None:
    values = np.random.default_rng(0).random((4, 1)).astype(np.float32)
    proto = tensor_pb2.TensorProto()
    tensors.encode_into(proto, values)
    assert proto.tensor_content and not proto.float_val
    np.testing.assert_array_equal(tf.make_ndarray(proto), values)


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
