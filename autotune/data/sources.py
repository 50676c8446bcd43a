"""Where ratings come from: a MovieLens file or the synthetic generator, behind one face.

A source knows its fingerprint (what the eval set cache compares) and how to load its
ratings, so the preprocessing and the cache never branch on the dataset kind.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from autotune.data.movielens import existing_ratings_path, file_fingerprint, load_movielens
from autotune.data.ratings import Ratings
from autotune.data.synthetic import SyntheticShape, generate_ratings

SYNTHETIC = "synthetic"
GENERATOR_VERSION = 1  # bump when the generator's output for a given shape and seed changes


class RatingsSource(Protocol):
    """Ratings with an identity."""

    name: str

    def fingerprint(self) -> str: ...

    def load(self) -> Ratings: ...


@dataclass(frozen=True)
class SyntheticSource:
    """The generator at one shape and seed; its fingerprint is those parameters."""

    shape: SyntheticShape
    seed: int
    name: str = SYNTHETIC

    def fingerprint(self) -> str:
        parameters = {"generator": GENERATOR_VERSION, "seed": self.seed, **asdict(self.shape)}
        return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()

    def load(self) -> Ratings:
        return generate_ratings(self.shape, self.seed)


@dataclass(frozen=True)
class MovieLensSource:
    """A MovieLens ratings file; its fingerprint is the file's content hash."""

    name: str
    data_dir: Path

    def fingerprint(self) -> str:
        return file_fingerprint(existing_ratings_path(self.name, self.data_dir))

    def load(self) -> Ratings:
        return load_movielens(self.name, self.data_dir)
