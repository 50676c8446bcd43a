"""HR@K / NDCG@K on hand-made score matrices, ties and NaNs included."""

import math

import numpy as np
import pytest

from autotune.model.metrics import hit_rate_and_ndcg, positive_ranks


def test_positive_on_top_is_a_full_hit():
    scores = np.array([[0.9, 0.1, 0.2, 0.3]])
    assert hit_rate_and_ndcg(scores, k=10) == (1.0, 1.0)


def test_rank_gives_the_ndcg_discount():
    # positive ranks 2nd (0-based rank 1) in row 0, 3rd (rank 2) in row 1
    scores = np.array([[0.5, 0.9, 0.1, 0.0],
                       [0.5, 0.9, 0.8, 0.1]])
    hr, ndcg = hit_rate_and_ndcg(scores, k=10)
    assert hr == 1.0
    assert ndcg == pytest.approx((math.log(2) / math.log(3) + math.log(2) / math.log(4)) / 2)


def test_outside_top_k_counts_zero():
    scores = np.array([[0.5, 0.9, 0.8, 0.7],   # rank 3: outside top 2
                       [0.9, 0.1, 0.2, 0.3]])  # rank 0
    assert hit_rate_and_ndcg(scores, k=2) == (0.5, 0.5)


def test_ties_rank_the_positive_behind_equal_negatives():
    assert positive_ranks(np.array([[0.5, 0.5, 0.5, 0.1]])).tolist() == [2]
    constant = np.zeros((50, 1000))
    assert hit_rate_and_ndcg(constant) == (0.0, 0.0)


def test_ties_do_not_depend_on_column_order():
    row = np.array([0.5, 0.7, 0.5, 0.2, 0.5])
    shuffled = np.concatenate([row[:1], row[1:][::-1]])
    assert hit_rate_and_ndcg(row[None, :], k=3) == hit_rate_and_ndcg(shuffled[None, :], k=3)


def test_nan_scores_count_against_the_model():
    scores = np.array([[np.nan, 0.1, 0.2],
                       [0.9, np.nan, 0.1]])
    assert positive_ranks(scores).tolist() == [2, 1]
    assert hit_rate_and_ndcg(scores, k=1) == (0.0, 0.0)


def test_matches_a_per_row_reference_on_random_scores():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 20, size=(200, 1000)).astype(np.float32)  # many ties
    hits, gains = [], []
    for row in scores:
        rank = sum(1 for negative in row[1:] if negative >= row[0])
        hits.append(rank < 10)
        gains.append(math.log(2) / math.log(rank + 2) if rank < 10 else 0.0)
    hr, ndcg = hit_rate_and_ndcg(scores)
    assert hr == pytest.approx(np.mean(hits)) and ndcg == pytest.approx(np.mean(gains))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        hit_rate_and_ndcg(np.zeros(5))
    with pytest.raises(ValueError):
        hit_rate_and_ndcg(np.zeros((2, 5)), k=0)
    assert hit_rate_and_ndcg(np.zeros((0, 1000))) == (0.0, 0.0)
