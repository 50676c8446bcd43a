"""`model_card.json`: what an exported model was built from and how accurate it is.

Lives next to the numeric versions in the model base path. Readers (the tuner's
accuracy gate, `autotune prepare`'s freshness check, people) need no TensorFlow.
Fields: dataset, dataset_fingerprint (of the eval set), users, items,
train_positives, eval_users, eval_negatives, epochs, seed, k, hr, ndcg, itempop_hr,
itempop_ndcg, train_seconds, training (all settings), signature (its inputs, and its
outputs: `rating` the score, `item_id` the input ids echoed back as the tutorial's
model gives them), eval_protocol (how the eval set was built and ties ranked, in
words), version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from autotune.paths import read_json_object

MODEL_CARD_FILE = "model_card.json"


def write_model_card(model_dir: Path, card: dict) -> None:
    """Write `model_card.json` atomically."""
    temporary = model_dir / f".{MODEL_CARD_FILE}.tmp"
    temporary.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, model_dir / MODEL_CARD_FILE)


def read_model_card(model_dir: Path) -> dict | None:
    """The model card under `model_dir`, or None when there is none (or it is unreadable,
    or not a JSON object: the model is then not current and is rebuilt)."""
    return read_json_object(model_dir / MODEL_CARD_FILE)
