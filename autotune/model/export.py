"""SavedModel export into a TF-Serving model base path, and the model card beside it.

    <model-dir>/<version>/saved_model.pb ...   numeric versions, highest is served
    <model-dir>/model_card.json                what the served version was built from

Versioning: a (re-)export always gets the next version number, so a server watching
the base path (TF Serving polls it) swaps to the new model, and then the older
versions are removed, so the base path holds exactly the model the card describes.
The version is written under a temporary non-numeric name and renamed, because
servers ignore non-numeric folders: no server ever sees a half-written version.

The export is a plain `tf.Module` with one `tf.function` signature (`serving_default`:
`user_id`, `item_id` int32 [None] -> `rating` float32 [None]); loading it needs no Keras.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import tensorflow as tf

from autotune.model.card import write_model_card
from autotune.model.config import SERVING_SIGNATURE
from autotune.model.neumf import NeuMF


def numeric_versions(model_dir: Path) -> list[int]:
    """The version numbers present under a model base path, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(int(entry.name) for entry in model_dir.iterdir()
                  if entry.is_dir() and entry.name.isdigit())


def export_model(model: NeuMF, model_dir: Path, card: dict) -> dict:
    """Save `model` as the next version under `model_dir` with `card`; the card as written.

    The written card gets a `version` field; older versions are removed (module docstring).
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    older = numeric_versions(model_dir)
    version = (older[-1] if older else 0) + 1
    staging = model_dir / f".export-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    tf.saved_model.save(model, str(staging), signatures={SERVING_SIGNATURE: model.serve})
    os.replace(staging, model_dir / str(version))
    card = {**card, "version": version}
    write_model_card(model_dir, card)
    for number in older:
        shutil.rmtree(model_dir / str(number), ignore_errors=True)
    return card
