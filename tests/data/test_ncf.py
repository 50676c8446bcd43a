"""NCF preprocessing invariants: filtering, re-indexing, leave-one-out and eval negatives."""

import numpy as np
import pytest

from autotune.data.ncf import build_ncf_data
from autotune.data.ratings import Ratings
from autotune.data.synthetic import SyntheticShape, generate_ratings
from autotune.errors import UsageError


def ratings_of(rows: list[tuple[int, int, int]]) -> Ratings:
    users, items, times = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
    return Ratings(users, items, times)


@pytest.fixture(scope="module")
def synthetic():
    ratings = generate_ratings(SyntheticShape(users=150, items=1500, ratings=9_000), seed=2)
    return ratings, build_ncf_data(ratings, seed=5)


def rated_sets(data) -> dict[int, set[int]]:
    rated: dict[int, set[int]] = {}
    for user, item in zip(data.train_users.tolist(), data.train_items.tolist(), strict=True):
        rated.setdefault(user, set()).add(item)
    for user, item in zip(data.eval_users.tolist(), data.eval_items[:, 0].tolist(), strict=True):
        rated[user].add(item)
    return rated


def test_one_row_of_1000_int32_candidates_per_user(synthetic):
    ratings, data = synthetic
    assert data.eval_items.shape == (150, 1000) and data.eval_items.dtype == np.int32
    assert data.eval_users.tolist() == list(range(150))
    assert len(data.train_users) + len(data.eval_users) == len(ratings)


def test_negatives_are_distinct_never_rated_and_never_the_positive(synthetic):
    _, data = synthetic
    rated = rated_sets(data)
    for user, row in zip(data.eval_users.tolist(), data.eval_items, strict=True):
        negatives = set(row[1:].tolist())
        assert len(negatives) == 999
        assert row[0] not in negatives and not negatives & rated[user]


def test_the_held_out_item_is_the_users_latest():
    rows = [(9, 100 + i, 1000 + i) for i in range(25)]          # latest: item 124
    rows += [(4, 200 + i, 5000) for i in range(20)]             # all tied: highest id 219
    data = build_ncf_data(ratings_of(rows), seed=0, negatives=9)
    # users re-indexed by original id: 4 -> 0, 9 -> 1; items by original id
    item_ids = sorted({item for _, item, _ in rows})
    assert data.eval_users.tolist() == [0, 1]
    assert [item_ids[i] for i in data.eval_items[:, 0]] == [219, 124]
    assert 124 not in [item_ids[i] for i in data.train_items[data.train_users == 1]]


def test_split_does_not_depend_on_line_order():
    rows = [(1, i, 7 if i % 3 else 9) for i in range(30)]
    forward = build_ncf_data(ratings_of(rows), seed=0, negatives=5)
    backward = build_ncf_data(ratings_of(rows[::-1]), seed=0, negatives=5)
    assert np.array_equal(forward.eval_items[:, 0], backward.eval_items[:, 0])


def test_users_below_20_ratings_are_dropped_and_ids_reindexed():
    rows = [(50, i, i) for i in range(20)] + [(7, i, i) for i in range(19)]
    rows += [(3, 1000 + i, i) for i in range(25)]
    data = build_ncf_data(ratings_of(rows), seed=0, negatives=3)
    assert data.num_users == 2 and data.eval_users.tolist() == [0, 1]
    assert data.num_items == 45
    assert set(np.concatenate([data.train_items, data.eval_items[:, 0]])) == set(range(45))


def test_duplicate_pairs_keep_the_latest_and_count_once():
    rows = [(1, i, i) for i in range(20)] + [(1, 0, 100)] + [(2, 50 + i, i) for i in range(20)]
    data = build_ncf_data(ratings_of(rows), seed=0, negatives=3)
    assert (data.train_users == 0).sum() == 19 and data.eval_items[0, 0] == 0


def test_few_unrated_items_are_drawn_with_replacement_from_unrated_only():
    rows = [(1, i, i) for i in range(40)] + [(2, i, i) for i in range(30, 50)]
    data = build_ncf_data(ratings_of(rows), seed=0)
    rated = rated_sets(data)
    assert data.eval_items.shape == (2, 1000)
    for user, row in zip(data.eval_users.tolist(), data.eval_items, strict=True):
        assert not set(row[1:].tolist()) & rated[user]
    assert set(data.eval_items[0, 1:].tolist()) == set(range(40, 50))


def test_a_user_who_rated_everything_has_no_eval_row():
    rows = [(1, i, i) for i in range(25)] + [(2, i, i) for i in range(20)]
    data = build_ncf_data(ratings_of(rows), seed=0, negatives=4)
    assert data.eval_users.tolist() == [1]
    assert (data.train_users == 0).sum() == 24


def test_negatives_follow_the_seed(synthetic):
    ratings, data = synthetic
    assert np.array_equal(build_ncf_data(ratings, seed=5).eval_items, data.eval_items)
    assert not np.array_equal(build_ncf_data(ratings, seed=6).eval_items, data.eval_items)


def test_no_active_user_is_a_usage_error():
    with pytest.raises(UsageError, match=">= 20 ratings"):
        build_ncf_data(ratings_of([(1, 1, 1), (1, 2, 2)]), seed=0)
