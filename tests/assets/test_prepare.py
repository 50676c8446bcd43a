"""`prepare_assets`: builds once, skips when current, rebuilds on changed inputs."""

import subprocess
import sys

import pytest

import autotune.model.train
from autotune.assets.prepare import prepare_assets, print_prepared
from autotune.data.synthetic import SyntheticShape
from autotune.errors import UsageError
from autotune.model.card import write_model_card
from autotune.model.config import batch_size_for
from autotune.model.export import numeric_versions

TINY = SyntheticShape(users=60, items=200, ratings=3_000)


def prepare(tmp_path, **options):
    options = {"epochs": 1, "quiet": True, "synthetic_shape": TINY, **options}
    return prepare_assets(data_dir=tmp_path / "data", model_dir=tmp_path / "model", **options)


def test_current_assets_are_reused_without_training(tmp_path, monkeypatch):
    first = prepare(tmp_path)
    monkeypatch.setattr(autotune.model.train, "train", lambda *a, **k: pytest.fail("retrained"))
    again = prepare(tmp_path)
    assert again == first and numeric_versions(tmp_path / "model") == [1]


def test_changed_training_settings_retrain_into_the_next_version(tmp_path):
    prepare(tmp_path)
    more_epochs = prepare(tmp_path, epochs=2)
    assert more_epochs.model_card["version"] == 2 and more_epochs.model_card["epochs"] == 2
    assert numeric_versions(tmp_path / "model") == [2]


def test_changed_data_retrains(tmp_path):
    first = prepare(tmp_path)
    other_seed = prepare(tmp_path, seed=1)
    assert other_seed.model_card["dataset_fingerprint"] != first.model_card["dataset_fingerprint"]
    assert other_seed.model_card["version"] == 2


def test_a_model_exported_with_an_older_signature_is_re_exported(tmp_path):
    """A model from before `item_id` was echoed gets today's signature on the next run."""
    first = prepare(tmp_path)
    write_model_card(tmp_path / "model", {**first.model_card, "signature": {
        **first.model_card["signature"], "outputs": {"rating": "float32"}}})
    again = prepare(tmp_path)
    assert again.model_card["version"] == 2
    assert again.model_card["signature"]["outputs"] == {"rating": "float32",
                                                        "item_id": "float32"}


def test_card_describes_data_model_and_baseline(tmp_path):
    assets = prepare(tmp_path, seed=4)
    card = assets.model_card
    assert (card["dataset"], card["users"], card["items"], card["eval_negatives"]) == (
        "synthetic", 60, 200, 999)
    assert card["train_positives"] == TINY.ratings - 60
    assert card["seed"] == 4 and card["epochs"] == 1
    assert 0 <= card["itempop_hr"] <= 1 and 0 <= card["hr"] <= 1
    assert "with replacement" in card["eval_protocol"]["negatives"]
    assert card["eval_protocol"]["ranking_ties"].startswith("pessimistic")
    assert assets.eval_path == tmp_path / "data" / "synthetic" / "eval.npz"
    assert (assets.version_dir / "saved_model.pb").is_file()


def test_defaults_live_under_autotune_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTUNE_HOME", str(tmp_path / "home"))
    assets = prepare_assets(epochs=1, quiet=True, synthetic_shape=TINY)
    assert assets.eval_path == tmp_path / "home" / "data" / "synthetic" / "eval.npz"
    assert assets.model_dir == tmp_path / "home" / "models" / "synthetic" / "ncf"


def test_quiet_prints_nothing_and_progress_shows_epochs(tmp_path, capfd):
    prepare(tmp_path)
    assert capfd.readouterr() == ("", "")
    prepare(tmp_path / "loud", epochs=2, quiet=False)
    progress = capfd.readouterr().err
    assert "epoch 1/2" in progress and "epoch 2/2 HR@10" in progress and "loss" in progress


def test_print_prepared_shows_paths_and_accuracy(tmp_path, capsys):
    assets = prepare(tmp_path)
    print_prepared(assets)
    out = capsys.readouterr().out
    assert str(assets.eval_path) in out and str(assets.version_dir) in out
    assert f"HR@10 {assets.model_card['hr']:.4f}" in out
    assert f"item popularity: HR@10 {assets.model_card['itempop_hr']:.4f}" in out


def test_download_is_for_movielens_only(tmp_path):
    with pytest.raises(UsageError, match="synthetic dataset needs no download"):
        prepare(tmp_path, download=True)


def test_batch_size_is_large_but_leaves_enough_steps():
    assert batch_size_for(994_169) == 8192
    assert batch_size_for(29_700) == 1024 and 29_700 * 5 / 1024 >= 100
    assert batch_size_for(100) == 256


def test_checking_current_assets_needs_no_tensorflow():
    code = ("import sys, autotune.assets.prepare, autotune.data, autotune.model.card; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
