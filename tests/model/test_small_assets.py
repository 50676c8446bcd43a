"""The shared `small_assets` fixture keeps its promise: a feasible model, files in place."""

import numpy as np

from autotune.model.card import read_model_card


def test_small_assets_clear_the_default_accuracy_floor(small_assets):
    card = small_assets.model_card
    assert card["hr"] >= 0.22 and card["ndcg"] >= 0.11
    assert card["hr"] > card["itempop_hr"] + 0.1
    assert (small_assets.version_dir / "saved_model.pb").is_file()
    assert read_model_card(small_assets.model_dir) == card


def test_small_assets_eval_set_follows_the_contract(small_assets):
    with np.load(small_assets.eval_path) as eval_set:
        assert eval_set["users"].dtype == np.int32 and eval_set["items"].dtype == np.int32
        assert eval_set["items"].shape == (len(eval_set["users"]), 1000)
