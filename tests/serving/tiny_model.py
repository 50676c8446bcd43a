"""A tiny recommender SavedModel with the NCF contract signature, made in seconds.

`serving_default`: inputs `user_id` (int32, [None]) and `item_id` (int32, or uint16 as
the tutorial exports it, [None]); outputs `rating` (float32, [None, 1]) and `item_id`
(the ids echoed back as int32, as the tutorial's model does). Each version gets
different weights, so a test can tell which version a server serves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

USERS = 50
ITEMS = 200


class TinyRecommender(tf.Module):
    """User and item embeddings through a small dense layer (a MatMul, so oneDNN and its
    OpenMP threads take part, as in NCF's MLP), squashed to (0, 1)."""

    def __init__(self, seed: int, item_dtype: tf.DType) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.users = tf.Variable(rng.normal(size=(USERS, 8)).astype(np.float32))
        self.items = tf.Variable(rng.normal(size=(ITEMS, 8)).astype(np.float32))
        self.dense = tf.Variable(rng.normal(size=(16, 64)).astype(np.float32))
        self.out = tf.Variable(rng.normal(size=(64, 1)).astype(np.float32) / 8)
        self.serve = tf.function(self._score, input_signature=[
            tf.TensorSpec([None], tf.int32, name="user_id"),
            tf.TensorSpec([None], item_dtype, name="item_id"),
        ])

    def _score(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        users = tf.gather(self.users, user_id)
        items = tf.gather(self.items, tf.cast(item_id, tf.int32))
        hidden = tf.nn.relu(tf.matmul(tf.concat([users, items], axis=1), self.dense))
        return {"rating": tf.sigmoid(tf.matmul(hidden, self.out)),
                "item_id": tf.cast(item_id, tf.int32)}


def export_tiny_model(base_path: Path, versions: tuple[int, ...] = (1, 2),
                      item_dtype: tf.DType = tf.int32) -> Path:
    """Write `base_path/<version>/` for each version; return `base_path`."""
    for version in versions:
        module = TinyRecommender(seed=version, item_dtype=item_dtype)
        tf.saved_model.save(module, str(base_path / str(version)),
                            signatures={"serving_default": module.serve})
    return base_path


def in_process_scores(version_path: Path, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The scores the SavedModel gives when called in this process (the reference)."""
    signature = tf.saved_model.load(str(version_path)).signatures["serving_default"]
    item_dtype = signature.structured_input_signature[1]["item_id"].dtype
    return signature(user_id=tf.constant(users, tf.int32),
                     item_id=tf.constant(items, item_dtype))["rating"].numpy()
