"""NCF preprocessing, as the NCF tutorial's model expects its data.

From raw ratings to the training positives and the leave-one-out eval set:

1. Duplicate (user, item) pairs keep only their latest rating (MovieLens has none;
   this keeps a held-out item from also being a training positive).
2. Users with fewer than 20 ratings are dropped.
3. User and item ids are re-indexed from 0 in the order of their original ids (items:
   those the kept users rated).
4. Leave-one-out: each user's latest rating is held out for evaluation, the rest are
   training positives. Ties on the latest timestamp go to the highest original item
   id, so the split depends only on the data, never on the order of the file's lines.
5. Each user gets 999 eval negatives, drawn uniformly without replacement from the
   items they never rated, seeded. Where a user left fewer unrated items than that
   (a heavy user in a small dataset), the negatives are drawn with replacement from
   the unrated items, so every row still has 1000 candidates and the positive is
   still compared only with items the user never rated. A negative drawn twice counts
   twice in the positive's rank, as in any sample with replacement. Such rows are
   rare: none in ml-1m or the default synthetic set, a few heavy users in ml-100k.
   A user who rated every item cannot be ranked and gets no eval row (their ratings
   stay training positives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autotune.data.ratings import Ratings
from autotune.errors import UsageError

MIN_USER_RATINGS = 20
EVAL_NEGATIVES = 999
EVAL_PROTOCOL = {  # the choices above, in words, for the eval set manifest and the model card
    "users": f">= {MIN_USER_RATINGS} ratings; ids re-indexed from 0 in original id order",
    "held_out": "each user's latest rating; a timestamp tie goes to the highest original item id",
    "negatives": "uniform without replacement from the items the user never rated; with "
                 "replacement from those items where too few remain",
}


@dataclass(frozen=True)
class NcfData:
    """Training positives and the eval set, ids re-indexed from 0 (int32 arrays).

    `eval_items[r, 0]` is user `eval_users[r]`'s held-out positive, `eval_items[r, 1:]`
    its negatives.
    """

    train_users: np.ndarray
    train_items: np.ndarray
    eval_users: np.ndarray
    eval_items: np.ndarray
    num_users: int
    num_items: int


def _latest_per_pair(ratings: Ratings) -> Ratings:
    """One rating per (user, item), the latest one."""
    order = np.lexsort((ratings.timestamps, ratings.items, ratings.users))
    users, items, times = ratings.users[order], ratings.items[order], ratings.timestamps[order]
    last = np.ones(len(users), dtype=bool)
    last[:-1] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    return Ratings(users[last], items[last], times[last])


def _active_users_only(ratings: Ratings) -> Ratings:
    """The ratings of users with at least MIN_USER_RATINGS of them."""
    ids, counts = np.unique(ratings.users, return_counts=True)
    keep = np.isin(ratings.users, ids[counts >= MIN_USER_RATINGS])
    return Ratings(ratings.users[keep], ratings.items[keep], ratings.timestamps[keep])


def _split_latest(users: np.ndarray, items: np.ndarray,
                  timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(held_out, train) masks: each user's latest rating, ties to the highest item id."""
    order = np.lexsort((items, timestamps, users))
    held_out = np.zeros(len(users), dtype=bool)
    last_of_user = np.ones(len(users), dtype=bool)
    last_of_user[:-1] = users[order][1:] != users[order][:-1]
    held_out[order[last_of_user]] = True
    return held_out, ~held_out


def _rated_blocks(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int,
                  rows_per_block: int):
    """(first_user, rated) per block of users: `rated` a dense boolean (rows, items) slice.

    Built block by block so memory stays bounded on ml-20m and ml-latest."""
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    bounds = np.searchsorted(users, np.arange(0, num_users + rows_per_block, rows_per_block))
    for block, start in enumerate(range(0, num_users, rows_per_block)):
        rows = min(rows_per_block, num_users - start)
        rated = np.zeros((rows, num_items), dtype=bool)
        lo, hi = bounds[block], bounds[block + 1]
        rated[users[lo:hi] - start, items[lo:hi]] = True
        yield start, rated


def _sample_negatives(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int,
                      negatives: int, rng: np.random.Generator,
                      block_cells: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """(negatives, rankable): `negatives` unrated item ids per user, and who has any.

    Uniform without replacement via random keys with rated items pushed last; users
    with too few unrated items fall back to drawing with replacement (module docstring).
    """
    out = np.zeros((num_users, negatives), dtype=np.int32)
    rankable = np.ones(num_users, dtype=bool)
    take = min(negatives, num_items)
    for start, rated in _rated_blocks(users, items, num_users, num_items,
                                      max(1, block_cells // num_items)):
        keys = rng.random(rated.shape, dtype=np.float32)
        keys[rated] = 2.0
        rows = slice(start, start + len(rated))
        out[rows, :take] = np.argpartition(keys, take - 1, axis=1)[:, :take]
        unrated = num_items - rated.sum(axis=1)
        rankable[rows] = unrated > 0
        for row in np.flatnonzero((unrated < negatives) & (unrated > 0)):
            out[start + row] = rng.choice(np.flatnonzero(~rated[row]), size=negatives)
    return out, rankable


def build_ncf_data(ratings: Ratings, seed: int, negatives: int = EVAL_NEGATIVES) -> NcfData:
    """Training positives and leave-one-out eval set of `ratings` (see module docstring)."""
    ratings = _active_users_only(_latest_per_pair(ratings))
    if len(ratings) == 0:
        raise UsageError(f"no user has >= {MIN_USER_RATINGS} ratings; nothing to evaluate")
    user_ids, users = np.unique(ratings.users, return_inverse=True)
    item_ids, items = np.unique(ratings.items, return_inverse=True)
    num_users, num_items = len(user_ids), len(item_ids)
    held_out, train = _split_latest(users, items, ratings.timestamps)

    positive = np.empty(num_users, dtype=np.int64)
    positive[users[held_out]] = items[held_out]
    rng = np.random.default_rng([seed, 0xE7A1])
    negative_items, rankable = _sample_negatives(users, items, num_users, num_items,
                                                 negatives, rng)
    eval_users = np.flatnonzero(rankable)
    eval_items = np.concatenate([positive[eval_users, None], negative_items[eval_users]], axis=1)
    return NcfData(
        train_users=users[train].astype(np.int32),
        train_items=items[train].astype(np.int32),
        eval_users=eval_users.astype(np.int32),
        eval_items=eval_items.astype(np.int32),
        num_users=num_users,
        num_items=num_items,
    )
