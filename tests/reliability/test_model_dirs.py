"""A model folder autotune did not create is never modified: served as it is, or refused
with the reason (exit 2) when it does not load. autotune deletes only versions it wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from autotune.assets.prepare import prepare_assets
from autotune.errors import UsageError
from autotune.model.config import NeuMFShape
from autotune.model.export import export_model, numeric_versions
from autotune.model.neumf import NeuMF
from autotune.model.ownership import MARKER_FILE
from autotune.tuning.run import run_tuning
from conftest import SMALL_EPOCHS, SMALL_SHAPE

from .tree import snapshot

#: a refusal needs TensorFlow's import and one load attempt, not a study
REFUSAL_S = 90


def _autotune(*args: str, timeout_s: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autotune", *args], capture_output=True,
                          text=True, timeout=timeout_s, env=os.environ.copy())


def _junk_model(folder):
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "saved_model.pb").write_bytes(b"not a SavedModel\n")
    (folder / "notes.txt").write_text("someone else's project\n")
    return folder


def test_a_junk_model_dir_is_refused_unchanged_before_any_trial(tmp_path):
    model_dir = _junk_model(tmp_path / "their-model")
    before = snapshot(model_dir)
    storage = f"sqlite:///{tmp_path}/studies.db"
    started = time.monotonic()
    run = _autotune("--mode", "online", "--server", "local", "--model-dir", str(model_dir),
                    "--storage", storage, "--report-dir", str(tmp_path / "reports"),
                    timeout_s=REFUSAL_S)
    assert run.returncode == 2, run.stderr[-2000:]
    (line,) = run.stderr.strip().splitlines()[-1:]
    assert line.startswith("autotune: error: ") and str(model_dir) in line
    assert "cannot be served" in line and "Error parsing message" in line
    assert time.monotonic() - started < REFUSAL_S
    assert snapshot(model_dir) == before
    assert not any(optuna.load_study(study_name=name, storage=storage).trials
                   for name in optuna.study.get_all_study_names(storage))


def test_prepare_refuses_a_junk_model_dir_unchanged(tmp_path):
    model_dir = _junk_model(tmp_path / "their-model")
    before = snapshot(model_dir)
    run = _autotune("prepare", "--model-dir", str(model_dir), timeout_s=REFUSAL_S)
    assert run.returncode == 2 and "cannot be served" in run.stderr, run.stderr[-2000:]
    assert snapshot(model_dir) == before


def test_a_users_own_model_is_served_as_it_is(tmp_path, small_assets, tuning_options):
    model_dir = tmp_path / "byo" / "ncf"
    shutil.copytree(small_assets.version_dir, model_dir / "7")
    before = snapshot(model_dir)
    assets = prepare_assets(data_dir=small_assets.eval_path.parents[1], model_dir=model_dir,
                            epochs=SMALL_EPOCHS, seed=0, quiet=True, synthetic_shape=SMALL_SHAPE)
    assert assets.foreign and assets.version_dir == model_dir / "7"
    options = tuning_options("online", trials=1, confirm_budget=0)
    assert run_tuning(options, assets=assets) == 0
    (name,) = optuna.study.get_all_study_names(options.storage)
    (trial,) = optuna.load_study(study_name=name, storage=options.storage).get_trials(
        states=(TrialState.COMPLETE,))
    assert trial.user_attrs["accuracy_ok"]
    assert snapshot(model_dir) == before


def test_an_export_deletes_only_the_versions_autotune_wrote(tmp_path):
    model = NeuMF(NeuMFShape(30, 40), seed=0)
    model_dir = tmp_path / "ncf"
    export_model(model, model_dir, {"note": "first"})
    export_model(model, model_dir, {"note": "second"})
    shutil.copytree(model_dir / "2", model_dir / "9")  # a version dropped in by hand
    hand_made = snapshot(model_dir / "9")
    card = export_model(model, model_dir, {"note": "third"})
    assert card["version"] == 10
    assert numeric_versions(model_dir) == [9, 10]
    assert snapshot(model_dir / "9") == hand_made
    assert (model_dir / MARKER_FILE).is_file()


def test_an_export_into_a_folder_autotune_did_not_create_is_refused(tmp_path):
    model_dir = _junk_model(tmp_path / "their-model")
    before = snapshot(model_dir)
    with pytest.raises(UsageError, match="did not write"):
        export_model(NeuMF(NeuMFShape(30, 40), seed=0), model_dir, {})
    assert snapshot(model_dir) == before
