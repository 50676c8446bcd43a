"""The eval set as the tuner uses it: real (user, item) pairs for load, user rows for the gate.

`eval.npz` holds `users` (int32, [n]) and `items` (int32, [n, 1000]) with column 0 the
held-out positive (see docs/DESIGN.md). Measurements send pairs drawn from it, so the server
works on the ids and embeddings real traffic touches; the accuracy gate scores whole
rows, all users or a seeded sample of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class EvalRows:
    """One row per user: the user id and its candidate items, the positive first."""

    users: np.ndarray
    items: np.ndarray

    @classmethod
    def load(cls, path: Path) -> "EvalRows":
        with np.load(path) as data:
            return cls(users=np.asarray(data["users"]), items=np.asarray(data["items"]))

    def sample_users(self, count: int | None, seed: int) -> "EvalRows":
        """`count` rows chosen with `seed` (all rows when `count` is None or too large)."""
        if count is None or count >= len(self.users):
            return self
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(self.users), size=count, replace=False))
        return EvalRows(users=self.users[rows], items=self.items[rows])

    def flat_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (user, candidate) pair, row by row: users repeated, items flattened."""
        return np.repeat(self.users, self.items.shape[1]), self.items.ravel()

    def random_pairs(self, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """`count` pairs drawn uniformly (with replacement) from all candidate pairs."""
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, self.items.shape[0], size=count)
        columns = rng.integers(0, self.items.shape[1], size=count)
        return self.users[rows], self.items[rows, columns]
