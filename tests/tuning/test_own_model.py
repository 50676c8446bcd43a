"""Tune your own model: a SavedModel that is not NCF's, measured from its own warmup
records in every mode and over REST, from a clean cache given only its folder, each to
a report; and the output-agreement gate, which makes every trial of a model with other
weights infeasible (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autotune.errors import NoFeasibleTrialError
from autotune.options import PeakPolicy, RunSettings
from autotune.tuning.run import run_tuning
from own_model import LARGEST, RECORDS, export_own_model, prediction_logs, write_requests
from processes import serving_processes

SHORT_RUNS = RunSettings(min_duration_s=0.5, min_queries=500, max_duration_s=3.0)
QUICK_SEARCH = PeakPolicy(start_qps=200, min_qps=100, precision=0.5, max_runs=3)
#: the modes and protocols, and what each trial of them records
STUDIES = {"online": ("grpc", "latency_ms_p50"), "batch": ("grpc", "throughput_sps"),
           "server": ("grpc", "qps_at_slo"), "online-rest": ("rest", "latency_ms_p50")}


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_own_model(tmp_path_factory.mktemp("own") / "ctr")


@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $AUTOTUNE_HOME: nothing prepared, nothing cached."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOTUNE_HOME", str(home))
    return home


def _options(tuning_options, study: str, model_dir: Path, **overrides: object):
    mode = study.split("-")[0]
    server = ({"p99_ms": 250.0, "loadgen_run": SHORT_RUNS, "peak_policy": QUICK_SEARCH}
              if mode == "server" else {})
    return tuning_options(mode, **{"model_dir": model_dir, "protocol": STUDIES[study][0],
                                   "trials": 2, "batch_size": None, **server, **overrides})


@pytest.mark.parametrize("study", list(STUDIES))
def test_a_study_of_your_own_model_from_its_warmup_records(tuning_options, own_model, clean_home,
                                                           study):
    options = _options(tuning_options, study, own_model)
    assert run_tuning(options) == 0
    assert not (clean_home / "data").exists() and not (clean_home / "models").exists()
    [name] = optuna.study.get_all_study_names(options.storage)
    assert name.startswith(f"{options.mode.name}-ctr-")  # its own class, named by the model
    stored = optuna.load_study(study_name=name, storage=options.storage)
    attrs = stored.user_attrs
    assert attrs["model_name"] == "ctr" and attrs["requests"]["records"] == RECORDS
    assert (attrs["rtol"], attrs["atol"], attrs["reference"]) == (1e-4, 1e-5, "in-process")
    assert attrs["min_hr"] is None and attrs["batch_size"] == (
        LARGEST if options.mode.batched else 1)
    trials = stored.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        assert STUDIES[study][1] in trial.user_attrs and trial.user_attrs["agreement_ok"]
        assert trial.user_attrs["max_abs_err"] <= 1e-5 and "hr" not in trial.user_attrs
        assert trial.constraints["agreement"] <= 0
    report = json.loads((options.report_dir / f"{name}.json").read_text())
    assert report["best"] is not None and report["model_name"] == "ctr"
    assert report["best"]["max_abs_err"] is not None and report["best"]["hr"] is None
    assert "-v " + f"{own_model.resolve()}:/models/ctr" in report["best"]["docker_run"]
    assert "-e MODEL_NAME=ctr" in report["best"]["docker_run"]
    markdown = (options.report_dir / f"{name}.md").read_text()
    assert "max abs err" in markdown and "recorded requests" in markdown
    assert not serving_processes()


def test_outputs_of_other_weights_make_every_trial_infeasible(tuning_options, own_model,
                                                             clean_home, tmp_path):
    """The same requests, with the responses the test model gave, against a model of the
    same signature and other weights: no trial agrees, the run ends with exit 3."""
    requests = write_requests(tmp_path / "recorded.tfrecord",
                              prediction_logs(answered_by=own_model / "1"))
    other = export_own_model(tmp_path / "other", seed=1, warmup=False)
    options = _options(tuning_options, "online", other, requests=requests, confirm_budget=0)
    with pytest.raises(NoFeasibleTrialError) as raised:
        run_tuning(options)
    assert raised.value.exit_code == 3
    message = str(raised.value)
    assert "2 measured (2 infeasible: 2 with outputs not within rtol 0.0001 and atol 1e-05 " \
           "of the reference (recorded responses)" in message and "the closest, trial " in message
    [name] = optuna.study.get_all_study_names(options.storage)
    stored = optuna.load_study(study_name=name, storage=options.storage)
    assert stored.user_attrs["reference"] == "recorded responses"
    for trial in stored.get_trials(states=(TrialState.COMPLETE,)):
        assert not trial.user_attrs["agreement_ok"] and trial.constraints["agreement"] > 0
        assert trial.user_attrs["max_abs_err"] > 1e-3
        assert trial.user_attrs["infeasible"].startswith("outputs disagree with the reference")
    report = json.loads((options.report_dir / f"{name}.json").read_text())
    assert report["best"] is None and report["trials"]["infeasible"] == 2
    assert "outputs within rtol 0.0001 and atol 1e-05 of the reference" in (
        options.report_dir / f"{name}.md").read_text()
    assert not serving_processes()


@pytest.mark.docker
def test_your_own_model_in_the_serving_image(tuning_options, own_model, clean_home,
                                            serving_image):
    """Mounted under its folder's name, warmed up by the image, measured from its records."""
    options = _options(tuning_options, "online", own_model, server="docker", image=serving_image,
                       trials=1, confirm_budget=0)
    assert run_tuning(options) == 0
    [name] = optuna.study.get_all_study_names(options.storage)
    [trial] = optuna.load_study(study_name=name, storage=options.storage).get_trials(
        states=(TrialState.COMPLETE,))
    assert trial.user_attrs["agreement_ok"] and trial.user_attrs["max_abs_err"] <= 1e-5
    report = json.loads((options.report_dir / f"{name}.json").read_text())
    assert report["best"]["docker_run"].endswith(serving_image)
    assert not serving_processes()
