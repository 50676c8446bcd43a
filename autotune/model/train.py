"""Training NeuMF on implicit feedback: every positive with freshly sampled negatives.

Each epoch pairs every training positive with `negatives_per_positive` items drawn
uniformly from those the user has no training positive for (resampled every epoch,
as in the NCF paper), shuffles, and runs Adam on binary cross-entropy in large
batches inside one `tf.function` step, so a CPU epoch over ml-1m takes seconds.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf

from autotune.data.ncf import NcfData
from autotune.model.config import TrainingConfig
from autotune.model.neumf import NeuMF


class TrainingObserver(Protocol):
    """Told about progress, e.g. to draw a progress bar."""

    def epoch_started(self, epoch: int, steps: int) -> None: ...

    def step_done(self, loss: float) -> None: ...

    def epoch_done(self, epoch: int, loss: float) -> None: ...


class PositiveSet:
    """Membership test for (user, item) training positives, vectorised."""

    def __init__(self, users: np.ndarray, items: np.ndarray, num_items: int) -> None:
        self._num_items = num_items
        self._keys = np.unique(users.astype(np.int64) * num_items + items)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self._num_items + items
        found = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return self._keys[found] == keys


def sample_negatives(users: np.ndarray, positives: PositiveSet, num_items: int,
                     rng: np.random.Generator, max_rounds: int = 50) -> np.ndarray:
    """One item per entry of `users` that the user has no positive for.

    Redraws collisions until none remain, up to `max_rounds` (a user who rated every
    item would otherwise never finish; such leftovers keep their last draw).
    """
    items = rng.integers(num_items, size=len(users), dtype=np.int32)
    for _ in range(max_rounds):
        clash = np.flatnonzero(positives.contains(users, items))
        if clash.size == 0:
            break
        items[clash] = rng.integers(num_items, size=clash.size, dtype=np.int32)
    return items


def _epoch_examples(data: NcfData, positives: PositiveSet, config: TrainingConfig,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled (users, items, labels) of one epoch: positives plus fresh negatives."""
    negative_users = np.repeat(data.train_users, config.negatives_per_positive)
    negative_items = sample_negatives(negative_users, positives, data.num_items, rng)
    users = np.concatenate([data.train_users, negative_users])
    items = np.concatenate([data.train_items, negative_items])
    labels = np.concatenate([np.ones(len(data.train_users), np.float32),
                             np.zeros(len(negative_users), np.float32)])
    order = rng.permutation(len(users))
    return users[order], items[order], labels[order]


def train(model: NeuMF, data: NcfData, config: TrainingConfig,
          observer: TrainingObserver | None = None) -> list[float]:
    """Train `model` in place on `data`'s positives; returns the mean loss per epoch."""
    optimizer = tf.keras.optimizers.Adam(learning_rate=config.learning_rate)
    variables = model.trainable_variables

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([None], tf.float32)])
    def step(users: tf.Tensor, items: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                labels=labels, logits=model.logits(users, items)))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng([config.seed, 0x7A17])
    positives = PositiveSet(data.train_users, data.train_items, data.num_items)
    losses = []
    for epoch in range(config.epochs):
        users, items, labels = _epoch_examples(data, positives, config, rng)
        steps = -(-len(users) // config.batch_size)
        if observer:
            observer.epoch_started(epoch, steps)
        total = 0.0
        for start in range(0, len(users), config.batch_size):
            batch = slice(start, start + config.batch_size)
            loss = float(step(users[batch], items[batch], labels[batch]))
            total += loss
            if observer:
                observer.step_done(loss)
        losses.append(total / steps)
        if observer:
            observer.epoch_done(epoch, losses[-1])
    return losses
