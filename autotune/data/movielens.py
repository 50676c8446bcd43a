"""Readers for the real MovieLens ratings files, found as `<data-dir>/<dataset>/<file>`.

    ml-1m      ratings.dat   UserID::MovieID::Rating::Timestamp
    ml-100k    u.data        user id <TAB> item id <TAB> rating <TAB> timestamp
    ml-20m     ratings.csv   header userId,movieId,rating,timestamp, then one row a line
    ml-latest  ratings.csv   same as ml-20m

Every line is checked: a malformed one is a `UsageError` naming the file, the line
number and what is wrong, so a truncated or edited file never turns silently into a
different eval set. Blank lines are skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.data.ratings import Ratings
from autotune.errors import UsageError


@dataclass(frozen=True)
class RatingsFormat:
    """How one MovieLens size stores its ratings."""

    filename: str
    separator: str
    header: str | None
    min_rows: int  # the documented row count (a lower bound for ml-latest, which grows)


FORMATS: dict[str, RatingsFormat] = {
    "ml-1m": RatingsFormat("ratings.dat", "::", None, 1_000_209),
    "ml-100k": RatingsFormat("u.data", "\t", None, 100_000),
    "ml-20m": RatingsFormat("ratings.csv", ",", "userId,movieId,rating,timestamp", 20_000_263),
    "ml-latest": RatingsFormat("ratings.csv", ",", "userId,movieId,rating,timestamp", 20_000_000),
}


def ratings_format(dataset: str) -> RatingsFormat:
    """The format of a MovieLens size; a `UsageError` for an unknown name."""
    try:
        return FORMATS[dataset]
    except KeyError:
        raise UsageError(f"unknown MovieLens dataset {dataset!r}; "
                         f"known: {', '.join(FORMATS)}") from None


def ratings_path(dataset: str, data_dir: Path) -> Path:
    """Where the ratings file of `dataset` lives under `data_dir`."""
    return data_dir / dataset / ratings_format(dataset).filename


def file_fingerprint(path: Path) -> str:
    """SHA-256 of a file's content: the identity of the data an eval set was built from
    (and of the eval set's own files, in its manifest)."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


_FIELDS = (("user id", int), ("item id", int), ("rating", float), ("timestamp", int))


def _parse_line(line: str, separator: str) -> tuple[int, int, int]:
    """(user, item, timestamp) of one ratings line; ValueError saying what is wrong."""
    fields = line.split(separator)
    if len(fields) != len(_FIELDS):
        raise ValueError(f"expected {len(_FIELDS)} fields separated by {separator!r}, "
                         f"found {len(fields)}")
    values = []
    for (name, parse), text in zip(_FIELDS, fields, strict=True):
        try:
            values.append(parse(text))
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a number") from None
    return values[0], values[1], values[3]


def read_ratings_file(path: Path, fmt: RatingsFormat) -> Ratings:
    """Parse one MovieLens ratings file; a `UsageError` on the first malformed line."""
    users: list[int] = []
    items: list[int] = []
    timestamps: list[int] = []
    with path.open(encoding="latin-1") as stream:
        for number, raw in enumerate(stream, start=1):
            line = raw.strip()
            if number == 1 and fmt.header is not None:
                if line != fmt.header:
                    raise UsageError(f"{path}:1: expected the header {fmt.header!r}, "
                                     f"found {line[:60]!r}")
                continue
            if not line:
                continue
            try:
                user, item, timestamp = _parse_line(line, fmt.separator)
            except ValueError as error:
                raise UsageError(f"{path}:{number}: malformed rating line {line[:60]!r}: "
                                 f"{error}") from None
            users.append(user)
            items.append(item)
            timestamps.append(timestamp)
    return Ratings(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                   np.array(timestamps, dtype=np.int64))


def existing_ratings_path(dataset: str, data_dir: Path) -> Path:
    """The ratings file of `dataset` under `data_dir`; a `UsageError` saying where it looked."""
    path = ratings_path(dataset, data_dir)
    if not path.is_file():
        raise UsageError(f"no {dataset} ratings at {path}; add --download to fetch them "
                         f"from GroupLens, or use --dataset synthetic")
    return path


def load_movielens(dataset: str, data_dir: Path) -> Ratings:
    """The ratings of a MovieLens size under `data_dir`; a `UsageError` if the file is missing."""
    return read_ratings_file(existing_ratings_path(dataset, data_dir), ratings_format(dataset))
