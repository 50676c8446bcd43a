"""The on-disk NCF data of one dataset: `eval.npz`, `train.npz` and a manifest, cached.

Layout (docs/DESIGN.md), under `<data-dir>/<dataset>/`:

    eval.npz    users int32 [n], items int32 [n, 1000] (column 0 the held-out positive)
    train.npz   users int32, items int32: the training positives
    eval.json   manifest: fingerprint, sizes, seed, negatives

The fingerprint hashes everything the files depend on: the source's fingerprint (file
content, or generator shape and seed), the seed, the number of negatives and the
preprocessing version. The same inputs reuse the files; changed inputs rebuild them.
Files are written to temporary names and renamed, the manifest last, so an
interrupted build is never mistaken for a finished one. The manifest holds each file's
SHA-256: a file damaged later (truncated, overwritten) no longer matches, and the set
is rebuilt instead of failing deep inside a run (a manifest from before the checksums
is trusted only if its files load).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.data.movielens import file_fingerprint
from autotune.data.ncf import (
    EVAL_NEGATIVES,
    EVAL_PROTOCOL,
    MIN_USER_RATINGS,
    NcfData,
    build_ncf_data,
)
from autotune.data.sources import RatingsSource
from autotune.errors import UsageError
from autotune.paths import check_writable_folder, read_json_object

PREPROCESSING_VERSION = 1  # bump when build_ncf_data's output for the same inputs changes
EVAL_FILE, TRAIN_FILE, MANIFEST_FILE = "eval.npz", "train.npz", "eval.json"
CHECKSUMS = "sha256"


@dataclass(frozen=True)
class EvalSet:
    """A built eval set on disk: where its files are and what its manifest says."""

    directory: Path
    manifest: dict

    @property
    def eval_path(self) -> Path:
        return self.directory / EVAL_FILE

    @property
    def train_path(self) -> Path:
        return self.directory / TRAIN_FILE

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    def load(self) -> NcfData:
        """The arrays, as the model trainer takes them."""
        with np.load(self.eval_path) as eval_arrays, np.load(self.train_path) as train_arrays:
            return NcfData(train_users=train_arrays["users"], train_items=train_arrays["items"],
                           eval_users=eval_arrays["users"], eval_items=eval_arrays["items"],
                           num_users=self.manifest["num_users"],
                           num_items=self.manifest["num_items"])


def eval_set_fingerprint(source_fingerprint: str, seed: int, negatives: int) -> str:
    """The identity of an eval set: everything its content depends on."""
    inputs = {"source": source_fingerprint, "seed": seed, "negatives": negatives,
              "min_user_ratings": MIN_USER_RATINGS, "preprocessing": PREPROCESSING_VERSION}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _read_manifest(directory: Path) -> dict | None:
    return read_json_object(directory / MANIFEST_FILE)


def load_problem(path: Path) -> str | None:
    """Why the `.npz` file at `path` does not read whole (every array), or None."""
    try:
        with np.load(path) as arrays:
            for name in arrays.files:
                np.asarray(arrays[name])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        return f"{type(error).__name__}: {error}"
    return None


def files_intact(directory: Path, manifest: dict) -> bool:
    """Whether the eval and train files are those the manifest was written for."""
    files = [directory / EVAL_FILE, directory / TRAIN_FILE]
    if not all(path.is_file() for path in files):
        return False
    checksums = manifest.get(CHECKSUMS)
    if not isinstance(checksums, dict):
        return all(load_problem(path) is None for path in files)
    return all(checksums.get(path.name) == file_fingerprint(path) for path in files)


def open_eval_set(directory: Path) -> EvalSet:
    """The eval set already built in `directory`; a `UsageError` when there is none."""
    manifest = _read_manifest(directory)
    if manifest is None or not (directory / EVAL_FILE).is_file():
        raise UsageError(f"no eval set in {directory}; run `autotune prepare` first")
    return EvalSet(directory, manifest)


def _write_atomically(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as stream:
        write(stream)
    os.replace(temporary, path)


def _save(directory: Path, data: NcfData, manifest: dict) -> dict:
    """Write the files, then the manifest with their checksums; the manifest written."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST_FILE).unlink(missing_ok=True)
    _write_atomically(directory / EVAL_FILE, lambda stream: np.savez(
        stream, users=data.eval_users, items=data.eval_items))
    _write_atomically(directory / TRAIN_FILE, lambda stream: np.savez(
        stream, users=data.train_users, items=data.train_items))
    manifest = {**manifest, CHECKSUMS: {name: file_fingerprint(directory / name)
                                         for name in (EVAL_FILE, TRAIN_FILE)}}
    _write_atomically(directory / MANIFEST_FILE,
                      lambda stream: stream.write(json.dumps(manifest, indent=2).encode()))
    return manifest


def ensure_eval_set(source: RatingsSource, directory: Path, seed: int,
                    negatives: int = EVAL_NEGATIVES) -> EvalSet:
    """The eval set of `source` in `directory`: reused when current, else built and saved."""
    fingerprint = eval_set_fingerprint(source.fingerprint(), seed, negatives)
    manifest = _read_manifest(directory)
    if (manifest and manifest.get("fingerprint") == fingerprint
            and files_intact(directory, manifest)):
        return EvalSet(directory, manifest)
    check_writable_folder(directory, "--data-dir")  # now, not after the build
    data = build_ncf_data(source.load(), seed, negatives)
    manifest = {
        "fingerprint": fingerprint,
        "dataset": source.name,
        "seed": seed,
        "negatives": negatives,
        "num_users": data.num_users,
        "num_items": data.num_items,
        "train_positives": int(len(data.train_users)),
        "eval_users": int(len(data.eval_users)),
        "protocol": EVAL_PROTOCOL,
    }
    return EvalSet(directory, _save(directory, data, manifest))
