"""What a request needs to know of the served model, read from its metadata.

Input names and dtypes come from the model's `serving_default` signature as the server
reports it (`GetModelMetadata` over gRPC, `/metadata` over REST), so a model exported
with `item_id` as uint16 (the tutorial's way) is driven as correctly as the project's
int32 export. Both clients read it through `pick_signature`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tensorflow_serving.apis import get_model_metadata_pb2

from autotune.errors import UsageError
from autotune.serving.tensors import numpy_dtype


@dataclass(frozen=True)
class InputSpec:
    """One request tensor: its key in the signature and the dtype the model wants."""

    key: str
    dtype_enum: int

    @property
    def dtype(self) -> np.dtype:
        return numpy_dtype(self.dtype_enum)


@dataclass(frozen=True)
class Signature:
    """What a predict request needs to know about the served model."""

    name: str
    user: InputSpec
    item: InputSpec
    output_key: str


def pick_signature(model_name: str, signature_map: get_model_metadata_pb2.SignatureDefMap,
                   signature_name: str) -> Signature:
    """What a request needs of `signature_name` in a model's metadata: the user and item
    inputs with their dtypes, and the score output (`rating`, else the first)."""
    if signature_name not in signature_map.signature_def:
        raise UsageError(f"model {model_name!r} has no signature {signature_name!r}; "
                         f"it has {sorted(signature_map.signature_def)}")
    signature = signature_map.signature_def[signature_name]
    inputs = {key: info.dtype for key, info in signature.inputs.items()}
    user_key, item_key = _input_key(inputs, "user"), _input_key(inputs, "item")
    outputs = list(signature.outputs)
    output_key = "rating" if "rating" in outputs else outputs[0]
    return Signature(signature_name, InputSpec(user_key, inputs[user_key]),
                     InputSpec(item_key, inputs[item_key]), output_key)


def _input_key(inputs: dict[str, int], role: str) -> str:
    matches = [key for key in inputs if role in key.lower()]
    if len(matches) != 1:
        raise UsageError(f"cannot tell the {role} input among the signature inputs "
                         f"{sorted(inputs)}")
    return matches[0]
