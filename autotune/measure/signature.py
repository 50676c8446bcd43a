"""What a request needs to know of the served model's signatures, and the NCF model's roles.

Input and output names, dtypes and shapes come from the model's SignatureDefs: as the
server reports them (`GetModelMetadata` over gRPC, `/metadata` over REST), which both
clients read to type their requests (a model exported with `item_id` as uint16, the
tutorial's way, is driven as correctly as the project's int32 export); or from the
served version's `saved_model.pb` on disk (`model_signature`), which the tuner reads
before any server runs, to check recorded requests against the model and to find the
NCF model's user and item inputs (`pair_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from autotune.errors import UsageError
from autotune.measure.rows import DEFAULT_SIGNATURE, RequestRows
from autotune.serving import tensors
from autotune.serving.model import ModelLoadError, latest_version, read_signature_defs


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: its key, dtype and shape (None: any rank;
    a None dimension: any size)."""

    key: str
    dtype_enum: int
    shape: tuple[int | None, ...] | None = None

    @property
    def dtype(self) -> np.dtype:
        return tensors.numpy_dtype(self.dtype_enum)

    def describe(self) -> str:
        """`user_id int32 [-1]`, as the server's messages name an input."""
        return tensors.describe(self.key, self.dtype, self.shape)


@dataclass(frozen=True)
class Signature:
    """What a predict request needs to know about one signature of the served model."""

    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def expects(self) -> str:
        """`features float32 [-1,13]; ids int64 [-1,26]`: the inputs a request must carry."""
        return "; ".join(spec.describe() for spec in self.inputs.values())


def _spec(key: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
    shape = (None if info.tensor_shape.unknown_rank else
             tuple(None if dim.size < 0 else dim.size for dim in info.tensor_shape.dim))
    return TensorSpec(key, info.dtype, shape)


def read_signatures(signature_map: get_model_metadata_pb2.SignatureDefMap) -> dict[str, Signature]:
    """Every signature of a model's SignatureDefMap, by name."""
    return {name: Signature(name, {key: _spec(key, info) for key, info in sorted(d.inputs.items())},
                            {key: _spec(key, info) for key, info in sorted(d.outputs.items())})
            for name, d in signature_map.signature_def.items()}


def find_signature(model_name: str, signatures: dict[str, Signature],
                   name: str = DEFAULT_SIGNATURE) -> Signature:
    """The signature `name` of a model, else `UsageError` naming the ones it has."""
    if name not in signatures:
        raise UsageError(f"model {model_name!r} has no signature {name!r}; "
                         f"it has {sorted(signatures)}")
    return signatures[name]


def model_signatures(model_dir: Path) -> dict[str, Signature]:
    """The signatures of the version a server would serve from `model_dir`, read from its
    `saved_model.pb` (nothing is loaded); `UsageError` when there is none to read."""
    try:
        return read_signatures(read_signature_defs(latest_version(Path(model_dir))[1]))
    except ModelLoadError as error:
        raise UsageError(f"the model in {model_dir} cannot be served: {error}") from None


@dataclass(frozen=True)
class PairInputs:
    """The NCF model's roles: its user and item inputs and its score output."""

    user: str
    item: str
    score: str


#: the project's NCF export (autotune.model.config)
NCF_INPUTS = PairInputs("user_id", "item_id", "rating")


def pair_rows(users: np.ndarray, items: np.ndarray,
              inputs: PairInputs = NCF_INPUTS) -> RequestRows:
    """The rows of requests scoring (user, item) pairs: the model's user and item inputs,
    asking for its score output only."""
    return RequestRows({inputs.user: np.asarray(users).ravel(),
                        inputs.item: np.asarray(items).ravel()}, outputs=(inputs.score,))


def pair_inputs(signature: Signature) -> PairInputs:
    """The user and item inputs (the one input whose name has `user`, the one with
    `item`) and the score output (`rating`, else the first) of a recommender shaped like
    the NCF model; `UsageError` when the signature is not so shaped."""
    user, item = _input_key(signature, "user"), _input_key(signature, "item")
    score = "rating" if "rating" in signature.outputs else next(iter(signature.outputs))
    return PairInputs(user, item, score)


def _input_key(signature: Signature, role: str) -> str:
    matches = [key for key in signature.inputs if role in key.lower()]
    if len(matches) != 1 or len(signature.inputs) != 2:
        raise UsageError(f"cannot tell the {role} input among the signature inputs "
                         f"{sorted(signature.inputs)}")
    return matches[0]
