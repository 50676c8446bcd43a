"""NeuMF, the NCF paper's model: a GMF branch and an MLP branch fused into one score.

    GMF:  user_mf * item_mf                         (element-wise, mf_dim wide)
    MLP:  [user_mlp, item_mlp] -> 64 -> 32 -> 16 -> 8  (ReLU; the first width is the
          concatenated embeddings, so each side embeds layers[0] / 2)
    out:  sigmoid(w . [GMF, MLP] + b)

A plain `tf.Module` holding `tf.Variable`s rather than a Keras model: the exported
SavedModel then needs nothing from Keras at load time, and `tf.saved_model.load` is
fast in the embedded server.
"""

from __future__ import annotations

import itertools
import zlib

import tensorflow as tf

from autotune.model.config import ITEM_INPUT, ITEM_OUTPUT, SCORE_OUTPUT, USER_INPUT, NeuMFShape


def _stream(name: str) -> int:
    """A per-variable seed component that is stable across processes (unlike hash())."""
    return zlib.crc32(name.encode())


def _embedding(rows: int, width: int, name: str, seed: int) -> tf.Variable:
    initial = tf.random.stateless_normal([rows, width], seed=[seed, _stream(name)], stddev=0.01)
    return tf.Variable(initial, name=name)


def _dense(fan_in: int, fan_out: int, name: str, seed: int) -> tuple[tf.Variable, tf.Variable]:
    limit = (6.0 / (fan_in + fan_out)) ** 0.5  # Glorot uniform
    kernel = tf.random.stateless_uniform([fan_in, fan_out], seed=[seed, _stream(name)],
                                         minval=-limit, maxval=limit)
    return (tf.Variable(kernel, name=f"{name}_kernel"),
            tf.Variable(tf.zeros([fan_out]), name=f"{name}_bias"))


class NeuMF(tf.Module):
    """NeuMF scores for (user, item) id pairs; `logits` for training, `serve` for export."""

    def __init__(self, shape: NeuMFShape, seed: int = 0) -> None:
        super().__init__(name="neumf")
        half = shape.layers[0] // 2
        self.shape = shape
        self.user_mf = _embedding(shape.num_users, shape.mf_dim, "user_mf", seed)
        self.item_mf = _embedding(shape.num_items, shape.mf_dim, "item_mf", seed)
        self.user_mlp = _embedding(shape.num_users, half, "user_mlp", seed)
        self.item_mlp = _embedding(shape.num_items, half, "item_mlp", seed)
        self.hidden = [_dense(fan_in, fan_out, f"mlp_{index}", seed)
                       for index, (fan_in, fan_out)
                       in enumerate(itertools.pairwise(shape.layers))]
        self.output_kernel, self.output_bias = _dense(shape.mf_dim + shape.layers[-1], 1,
                                                      "output", seed)

    def logits(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        """Pre-sigmoid scores, shape [batch]."""
        gmf = tf.gather(self.user_mf, users) * tf.gather(self.item_mf, items)
        mlp = tf.concat([tf.gather(self.user_mlp, users), tf.gather(self.item_mlp, items)], axis=1)
        for kernel, bias in self.hidden:
            mlp = tf.nn.relu(tf.matmul(mlp, kernel) + bias)
        fused = tf.concat([gmf, mlp], axis=1)
        return tf.squeeze(tf.matmul(fused, self.output_kernel) + self.output_bias, axis=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name=USER_INPUT),
                                  tf.TensorSpec([None], tf.int32, name=ITEM_INPUT)])
    def serve(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """The serving signature: the sigmoid score per pair (higher = more liked), and the
        item ids echoed back as float32, as the tutorial's exported model gives them (its
        client reads both outputs' `float_val`)."""
        return {SCORE_OUTPUT: tf.sigmoid(self.logits(user_id, item_id)),
                ITEM_OUTPUT: tf.cast(item_id, tf.float32)}
