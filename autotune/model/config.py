"""What defines a NeuMF model and its training, free of TensorFlow.

Kept apart from the TensorFlow code so that checking whether an exported model is
current (its card names these settings) needs no TensorFlow import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SERVING_SIGNATURE = "serving_default"
USER_INPUT, ITEM_INPUT, SCORE_OUTPUT = "user_id", "item_id", "rating"
#: the item ids echoed back (float32), as the tutorial's model outputs them beside the score
ITEM_OUTPUT = ITEM_INPUT
#: the rows of the warmup records written into each export (TF Serving replays them at
#: load): one online request, and the largest batch every configuration the tuner may
#: recommend accepts. TF Serving runs warmup through its batching layer, which refuses
#: a request larger than `max_batch_size` (server mode searches 32 and up) and so would
#: fail the load of a tuned batching server
WARMUP_BATCH_SIZES = (1, 32)


def signature_description() -> dict:
    """The serving signature's names and dtypes, as the model card records them."""
    return {"name": SERVING_SIGNATURE, "inputs": {USER_INPUT: "int32", ITEM_INPUT: "int32"},
            "outputs": {SCORE_OUTPUT: "float32", ITEM_OUTPUT: "float32"}}


@dataclass(frozen=True)
class NeuMFShape:
    """The sizes that define a NeuMF model; defaults are the NCF tutorial's."""

    num_users: int
    num_items: int
    mf_dim: int = 8
    layers: tuple[int, ...] = (64, 32, 16, 8)

    def __post_init__(self) -> None:
        if self.layers[0] % 2:
            raise ValueError("the first MLP layer must be even (two embeddings), "
                             f"got {self.layers[0]}")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train; defaults tuned for a fast CPU run on ml-1m-sized data."""

    epochs: int = 4
    batch_size: int = 8192
    learning_rate: float = 0.005
    negatives_per_positive: int = 4
    seed: int = 0


MAX_BATCH_SIZE, MIN_BATCH_SIZE, MIN_STEPS_PER_EPOCH = 8192, 256, 100


def batch_size_for(train_positives: int,
                   negatives_per_positive: int = TrainingConfig.negatives_per_positive) -> int:
    """Large batches for speed on CPU, but at least MIN_STEPS_PER_EPOCH steps an epoch.

    Small datasets would otherwise get a handful of Adam steps per epoch and learn
    nothing beyond popularity; ml-1m gets MAX_BATCH_SIZE.
    """
    examples = train_positives * (1 + negatives_per_positive)
    batch = MAX_BATCH_SIZE
    while batch > MIN_BATCH_SIZE and examples / batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


def training_settings(shape: NeuMFShape, config: TrainingConfig) -> dict:
    """Everything about a model except its data, JSON-shaped, as the model card records it."""
    return {**asdict(config), "mf_dim": shape.mf_dim, "layers": list(shape.layers)}
