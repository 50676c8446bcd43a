"""Scoring an eval set: the trained model's and the item-popularity ranker's HR/NDCG.

The popularity ranker (score = how many training positives an item has) is the
baseline the NCF paper compares against; the model card records both so a reader can
see the model learned more than popularity.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from autotune.model.metrics import TOP_K, hit_rate_and_ndcg

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def score_eval_set(score: ScoreFn, users: np.ndarray, items: np.ndarray,
                   pairs_per_call: int = 1 << 18) -> np.ndarray:
    """The (users, candidates) score matrix of an eval set, scored in large flat batches."""
    flat_users = np.repeat(users, items.shape[1]).astype(np.int32)
    flat_items = items.reshape(-1).astype(np.int32)
    scores = np.concatenate([
        np.asarray(score(flat_users[start:start + pairs_per_call],
                         flat_items[start:start + pairs_per_call])).reshape(-1)
        for start in range(0, len(flat_users), pairs_per_call)
    ])
    return scores.reshape(items.shape)


def evaluate(score: ScoreFn, users: np.ndarray, items: np.ndarray,
             k: int = TOP_K) -> tuple[float, float]:
    """HR@k and NDCG@k of a scoring function on an eval set."""
    return hit_rate_and_ndcg(score_eval_set(score, users, items), k)


def itempop_hr_ndcg(train_items: np.ndarray, num_items: int, eval_items: np.ndarray,
                    k: int = TOP_K) -> tuple[float, float]:
    """HR@k and NDCG@k of ranking each user's candidates by training popularity."""
    popularity = np.bincount(train_items, minlength=num_items).astype(np.float64)
    return hit_rate_and_ndcg(popularity[eval_items], k)
