"""The served model: the highest numeric version of a SavedModel, loaded once.

Everything a request needs is prepared at load time: the concrete function of every
signature, the input specs requests are checked against (with the id ranges the model
states, autotune.serving.ranges), and the SignatureDef map that `GetModelMetadata`
returns (read from `saved_model.pb`, as TF Serving does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from autotune.serving import tensors
from autotune.serving.ranges import read_input_ranges


class ModelLoadError(RuntimeError):
    """The model base path holds no SavedModel version that can be loaded."""


@dataclass(frozen=True)
class InputSpec:
    """One signature input: its dtype and its shape (`None` dims are free)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...] | None  # None: any rank
    #: inclusive range of valid ids, when the model states one
    valid_range: tuple[int, int] | None = None

    def describe(self) -> str:
        """`user_id int32 [-1]`, in TF Serving's shape notation (-1 = any size)."""
        return tensors.describe(self.name, self.dtype, self.shape)


class ServedSignature:
    """A signature's concrete function with its input specs, callable on numpy arrays."""

    def __init__(self, key: str, function: Callable[..., Mapping[str, tf.Tensor]],
                 ranges: Mapping[str, tuple[int, int]] | None = None) -> None:
        self.key = key
        self._function = function
        specs = function.structured_input_signature[1]
        ranges = ranges or {}
        self.inputs: dict[str, InputSpec] = {
            name: InputSpec(name, np.dtype(spec.dtype.as_numpy_dtype),
                            None if spec.shape.rank is None else tuple(spec.shape.as_list()),
                            ranges.get(name))
            for name, spec in sorted(specs.items())
        }
        self.output_names: tuple[str, ...] = tuple(sorted(function.structured_outputs))

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature; raises `tf.errors.OpError` on what the graph rejects.

        Inputs become tensors first: the function converts numpy arrays itself, but
        through a slower path (about 0.1 ms more per call).
        """
        outputs = self._function(**{name: tf.constant(array) for name, array in inputs.items()})
        return {name: tensor.numpy() for name, tensor in outputs.items()}


def latest_version(base_path: Path) -> tuple[int, Path]:
    """The highest numeric version folder holding a `saved_model.pb`, as TF Serving picks."""
    if not base_path.is_dir():
        raise ModelLoadError(f"model base path {base_path} does not exist or is not a folder")
    versions = [(int(child.name), child) for child in base_path.iterdir()
                if child.name.isdigit() and (child / "saved_model.pb").is_file()]
    if not versions:
        raise ModelLoadError(
            f"no version to serve under {base_path}: expected <number>/saved_model.pb")
    return max(versions)


class ServedModel:
    """One model name, one loaded version and its signatures."""

    def __init__(self, name: str, base_path: Path) -> None:
        self.name = name
        self.version, self.path = latest_version(base_path)
        try:
            self._loaded = tf.saved_model.load(str(self.path))
        except Exception as error:  # noqa: BLE001 (a damaged file fails in any way:
            # a truncated variables file raises IndexError "Read less bytes than requested")
            raise ModelLoadError(f"cannot load SavedModel {self.path}: "
                                 f"{type(error).__name__}: {error}") from error
        ranges = read_input_ranges(self.path)
        self.signatures: dict[str, ServedSignature] = {
            key: ServedSignature(key, function, ranges)
            for key, function in self._loaded.signatures.items()
        }
        if not self.signatures:
            raise ModelLoadError(f"SavedModel {self.path} has no signatures to serve")
        self.signature_def_map = read_signature_defs(self.path, self.signatures)


def read_signature_defs(version_path: Path, keys: Iterable[str] | None = None
                        ) -> get_model_metadata_pb2.SignatureDefMap:
    """The SignatureDefs a version's `saved_model.pb` states, as TF Serving reads them
    (`keys` only, when given; else every one but TensorFlow's internal `__...` entries).
    Reading them loads nothing, so the tuner checks requests against a model cheaply;
    `ModelLoadError` when the file is missing or not a SavedModel."""
    try:
        saved_model = saved_model_pb2.SavedModel.FromString(
            (version_path / "saved_model.pb").read_bytes())
    except (OSError, DecodeError) as error:
        raise ModelLoadError(f"cannot read {version_path / 'saved_model.pb'}: {error}") from None
    wanted = set(keys) if keys is not None else None
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for meta_graph in saved_model.meta_graphs:
        for key, signature_def in meta_graph.signature_def.items():
            if (key in wanted) if wanted is not None else not key.startswith("__"):
                signature_map.signature_def[key].CopyFrom(signature_def)
    return signature_map
