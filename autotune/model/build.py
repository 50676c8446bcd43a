"""From an eval set to an exported model with its card: train, measure, export.

The reference accuracy on the card is measured here, in-process, on the full eval
set, next to the item-popularity ranker's on the same set, so a reader of the card
(or the tuner's accuracy gate) can compare a served model against both.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import tensorflow as tf

from autotune.data.eval_set import EvalSet
from autotune.data.ncf import EVAL_PROTOCOL
from autotune.model.config import (
    NeuMFShape,
    TrainingConfig,
    signature_description,
    training_settings,
)
from autotune.model.evaluate import evaluate, itempop_hr_ndcg
from autotune.model.export import export_model
from autotune.model.metrics import TIE_RULE, TOP_K
from autotune.model.neumf import NeuMF
from autotune.model.train import train


class EpochProgress(Protocol):
    """Shown the training as it goes: steps with their loss, and each epoch's accuracy."""

    def epoch_started(self, epoch: int, steps: int) -> None: ...

    def step_done(self, loss: float) -> None: ...

    def epoch_measured(self, epoch: int, loss: float, hr: float, ndcg: float) -> None: ...


class _MeasuringObserver:
    """A training observer that measures HR/NDCG after each epoch for an `EpochProgress`."""

    def __init__(self, progress: EpochProgress, measure: Callable[[], tuple[float, float]]) -> None:
        self._progress, self._measure = progress, measure

    def epoch_started(self, epoch: int, steps: int) -> None:
        self._progress.epoch_started(epoch, steps)

    def step_done(self, loss: float) -> None:
        self._progress.step_done(loss)

    def epoch_done(self, epoch: int, loss: float) -> None:
        self._progress.epoch_measured(epoch, loss, *self._measure())


def build_model(dataset: str, eval_set: EvalSet, model_dir: Path, shape: NeuMFShape,
                config: TrainingConfig, progress: EpochProgress | None = None) -> dict:
    """Train NeuMF on the eval set's training positives, export it; the written model card."""
    data = eval_set.load()
    model = NeuMF(shape, seed=config.seed)

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return tf.sigmoid(model.logits(tf.constant(users), tf.constant(items))).numpy()

    def measure() -> tuple[float, float]:
        return evaluate(score, data.eval_users, data.eval_items, TOP_K)

    started = time.monotonic()
    train(model, data, config, _MeasuringObserver(progress, measure) if progress else None)
    train_seconds = time.monotonic() - started
    hr, ndcg = measure()
    itempop_hr, itempop_ndcg = itempop_hr_ndcg(data.train_items, data.num_items,
                                               data.eval_items, TOP_K)
    card = {
        "dataset": dataset,
        "dataset_fingerprint": eval_set.fingerprint,
        "users": data.num_users,
        "items": data.num_items,
        "train_positives": int(len(data.train_users)),
        "eval_users": int(len(data.eval_users)),
        "eval_negatives": int(data.eval_items.shape[1] - 1),
        "epochs": config.epochs,
        "seed": config.seed,
        "k": TOP_K,
        "hr": hr,
        "ndcg": ndcg,
        "itempop_hr": itempop_hr,
        "itempop_ndcg": itempop_ndcg,
        "train_seconds": round(train_seconds, 1),
        "training": training_settings(shape, config),
        "signature": signature_description(),
        "eval_protocol": {**EVAL_PROTOCOL, "ranking_ties": TIE_RULE},
    }
    return export_model(model, model_dir, card)
