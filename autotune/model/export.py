"""SavedModel export into a TF-Serving model base path, and the model card beside it.

    <model-dir>/<version>/saved_model.pb ...   numeric versions, highest is served
    <model-dir>/model_card.json                what the served version was built from
    <model-dir>/.autotune-model-dir.json       the versions autotune wrote (ownership)

Versioning: a (re-)export always gets the next version number, so a server watching
the base path (TF Serving polls it) swaps to the new model. The version is written
under a temporary non-numeric name (servers ignore non-numeric folders: none ever sees
a half-written version), loaded back to prove it serves, and only then renamed into
place. The versions it replaces are removed after that, and only those autotune wrote
(autotune.model.ownership); an export into a folder autotune does not own is refused.
Each version states the valid user and item id ranges (autotune.serving.ranges), so the
server refuses an unknown id in words instead of failing inside the graph, and carries
TF Serving's warmup records (`assets.extra/tf_serving_warmup_requests`: a batch-1
request and one of `WARMUP_BATCH_SIZES[-1]` rows), so any TF Serving that loads it, and
the embedded server, warm it up before it is AVAILABLE.

The export is a plain `tf.Module` with one `tf.function` signature (`serving_default`:
`user_id`, `item_id` int32 [None] -> `rating` float32 [None], the score, and `item_id`
float32 [None], the input ids echoed back as the tutorial's model does); loading it needs
no Keras.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from autotune.model.card import write_model_card
from autotune.model.config import (
    ITEM_INPUT,
    SERVING_SIGNATURE,
    USER_INPUT,
    WARMUP_BATCH_SIZES,
    NeuMFShape,
)
from autotune.model.neumf import NeuMF
from autotune.model.ownership import (
    claim,
    forget_version,
    numeric_versions,
    record_version,
    written_versions,
)
from autotune.paths import MODEL_NAME
from autotune.serving.ranges import write_input_ranges
from autotune.serving.tensors import encode_into
from autotune.serving.warmup import WARMUP_FILE, write_prediction_logs

__all__ = ["export_model", "numeric_versions", "warmup_logs"]


def _check_loads(path: Path) -> None:
    """Load the SavedModel at `path` back; raises unless it has the serving signature."""
    if SERVING_SIGNATURE not in tf.saved_model.load(str(path)).signatures:
        raise RuntimeError(f"the export at {path} lost its {SERVING_SIGNATURE} signature")


def warmup_logs(shape: NeuMFShape) -> list[prediction_log_pb2.PredictionLog]:
    """The export's warmup records: a request of each of `WARMUP_BATCH_SIZES` rows of
    valid (user, item) pairs, as TF Serving's warmup file holds them."""
    logs = []
    for rows in WARMUP_BATCH_SIZES:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.model_spec.signature_name = SERVING_SIGNATURE
        for name, count in ((USER_INPUT, shape.num_users), (ITEM_INPUT, shape.num_items)):
            encode_into(request.inputs[name], (np.arange(rows) % count).astype(np.int32),
                        packed=True)
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def export_model(model: NeuMF, model_dir: Path, card: dict) -> dict:
    """Save `model` as the next version under `model_dir` with `card`; the card as written.

    The written card gets a `version` field; see the module docstring for what is kept.
    """
    claim(model_dir)
    older = numeric_versions(model_dir)
    version = (older[-1] if older else 0) + 1
    staging = model_dir / f".export-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    tf.saved_model.save(model, str(staging), signatures={SERVING_SIGNATURE: model.serve})
    write_input_ranges(staging, {USER_INPUT: (0, model.shape.num_users - 1),
                                 ITEM_INPUT: (0, model.shape.num_items - 1)})
    write_prediction_logs(staging / WARMUP_FILE, warmup_logs(model.shape))
    _check_loads(staging)
    os.replace(staging, model_dir / str(version))
    record_version(model_dir, version)
    card = {**card, "version": version}
    write_model_card(model_dir, card)
    ours = set(written_versions(model_dir))
    for number in older:
        if number in ours:
            shutil.rmtree(model_dir / str(number), ignore_errors=True)
            forget_version(model_dir, number)
    return card
