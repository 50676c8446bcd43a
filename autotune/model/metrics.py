"""HR@K and NDCG@K of a leave-one-out ranking, the two numbers the accuracy floor is on.

Each row of a score matrix belongs to one user: column 0 is the held-out positive, the
other columns are that user's sampled negatives. The positive's rank is the number of
negatives placed ahead of it, and ties count against the model (pessimistic): a
negative scoring equal to the positive ranks ahead of it. So a constant model gets
HR 0, not a lucky HR 1, and the result never depends on the order of the columns.
A NaN score counts against the model too: a NaN negative ranks ahead of the positive
and a NaN positive ranks last, so a broken model cannot pass the floor.
"""

from __future__ import annotations

import numpy as np

#: the ranking cut-off of HR@k and NDCG@k: the NCF tutorial's HR@10 and NDCG@10
TOP_K = 10
HR_LABEL = f"HR@{TOP_K}"
NDCG_LABEL = f"NDCG@{TOP_K}"
TIE_RULE = "pessimistic: a negative scoring equal to the positive (or NaN) ranks ahead of it"


def positive_ranks(scores: np.ndarray) -> np.ndarray:
    """The 0-based rank of each row's positive (column 0) among its row, ties pessimistic."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"scores must be a (users, candidates) matrix, got shape {scores.shape}")
    positive = scores[:, :1]
    negatives = scores[:, 1:]
    ahead = (negatives >= positive) | np.isnan(negatives) | np.isnan(positive)
    return ahead.sum(axis=1)


def hit_rate_and_ndcg(scores: np.ndarray, k: int = TOP_K) -> tuple[float, float]:
    """HR@k and NDCG@k over a (users, candidates) score matrix whose column 0 is the positive.

    HR@k is the share of rows whose positive ranks in the top k; NDCG@k is the mean of
    log(2) / log(rank + 2) with the 0-based rank, 0 outside the top k. Ties are broken
    pessimistically (see the module docstring). An empty matrix gives (0.0, 0.0).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ranks = positive_ranks(scores)
    if ranks.size == 0:
        return 0.0, 0.0
    hits = ranks < k
    gains = np.where(hits, np.log(2.0) / np.log(ranks + 2.0), 0.0)
    return float(hits.mean()), float(gains.mean())
