"""The one in-memory form every ratings source produces: parallel id and time arrays.

Readers of the MovieLens files and the synthetic generator both return `Ratings`, so
the NCF preprocessing never knows where the data came from. Only who rated what and
when matters for implicit feedback; the star values are not kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ratings:
    """One rating per index: `users[i]` rated `items[i]` at `timestamps[i]` (all int64)."""

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray

    def __post_init__(self) -> None:
        lengths = {len(self.users), len(self.items), len(self.timestamps)}
        if len(lengths) != 1:
            raise ValueError(f"ratings arrays differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.users)
