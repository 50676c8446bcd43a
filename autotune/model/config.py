"""What defines a NeuMF model and its training, free of TensorFlow.

Kept apart from the TensorFlow code so that checking whether an exported model is
current (its card names these settings) needs no TensorFlow import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SERVING_SIGNATURE = "serving_default"
USER_INPUT, ITEM_INPUT, SCORE_OUTPUT = "user_id", "item_id", "rating"


def signature_description() -> dict:
    """The serving signature's names and dtypes, as the model card records them."""
    return {"name": SERVING_SIGNATURE, "inputs": {USER_INPUT: "int32", ITEM_INPUT: "int32"},
            "outputs": {SCORE_OUTPUT: "float32"}}


@dataclass(frozen=True)
class NeuMFShape:
    """The sizes that define a NeuMF model; defaults are the NCF tutorial's."""

    num_users: int
    num_items: int
    mf_dim: int = 8
    layers: tuple[int, ...] = (64, 32, 16, 8)

    def __post_init__(self) -> None:
        if self.layers[0] % 2:
            raise ValueError(f"the first MLP layer must be even (two embeddings), got {self.layers[0]}")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train; defaults tuned for a fast CPU run on ml-1m-sized data."""

    epochs: int = 4
    batch_size: int = 8192
    learning_rate: float = 0.005
    negatives_per_positive: int = 4
    seed: int = 0


def training_settings(shape: NeuMFShape, config: TrainingConfig) -> dict:
    """Everything about a model except its data, JSON-shaped, as the model card records it."""
    return {**asdict(config), "mf_dim": shape.mf_dim, "layers": list(shape.layers)}
