"""The synthetic generator: shape, determinism and MovieLens-like marginals."""

import numpy as np
import pytest

from autotune.data.synthetic import (
    FIRST_TIMESTAMP,
    LAST_TIMESTAMP,
    SyntheticShape,
    generate_ratings,
)

SMALL = SyntheticShape(users=200, items=300, ratings=12_000)


def test_small_shape_has_the_requested_counts():
    ratings = generate_ratings(SMALL, seed=1)
    assert len(ratings) == SMALL.ratings
    assert np.unique(ratings.users).tolist() == list(range(1, SMALL.users + 1))
    assert np.unique(ratings.items).tolist() == list(range(1, SMALL.items + 1))


def test_every_user_has_at_least_20_distinct_items():
    ratings = generate_ratings(SMALL, seed=1)
    assert np.bincount(ratings.users).min(initial=10**9, where=np.bincount(ratings.users) > 0) >= 20
    pairs = ratings.users * (SMALL.items + 1) + ratings.items
    assert len(np.unique(pairs)) == len(ratings)


def test_same_seed_same_data_other_seed_other_data():
    first, again, other = (generate_ratings(SMALL, seed) for seed in (7, 7, 8))
    for name in ("users", "items", "timestamps"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.items, other.items)


def test_timestamps_fall_in_movielens_1m_range():
    ratings = generate_ratings(SMALL, seed=1)
    assert FIRST_TIMESTAMP <= ratings.timestamps.min() <= ratings.timestamps.max() <= LAST_TIMESTAMP


def test_default_shape_is_movielens_1m_with_a_long_tail():
    ratings = generate_ratings()
    users = np.bincount(ratings.users)[1:]
    assert (len(users), len(np.unique(ratings.items)), len(ratings)) == (6040, 3706, 1_000_209)
    assert users.min() >= 20
    items = np.sort(np.bincount(ratings.items)[1:])[::-1]
    assert items[:371].sum() > 0.3 * len(ratings)  # the top 10% of items
    assert items[0] > 8 * np.median(items) and items[-1] < 10


@pytest.mark.parametrize("shape", [dict(users=10, items=10, ratings=200),
                                   dict(users=10, items=100, ratings=100),
                                   dict(users=10, items=100, ratings=900)])
def test_impossible_shapes_are_rejected(shape):
    with pytest.raises(ValueError):
        SyntheticShape(**shape)
