"""`autotune --protocol rest`: both modes measured over REST to a report that says so, and
a study measured over one protocol is not resumed over the other."""

import json

import optuna
import pytest
from optuna.trial import TrialState

from autotune.errors import UsageError
from autotune.tuning.run import run_tuning
from processes import serving_processes


@pytest.mark.parametrize("mode, metric_attr", [("online", "latency_ms_p50"),
                                                ("batch", "throughput_sps")])
def test_a_rest_study_runs_to_a_report_that_names_the_protocol(tuning_options, small_assets,
                                                               mode, metric_attr):
    options = tuning_options(mode, protocol="rest", trials=2)
    assert run_tuning(options, assets=small_assets) == 0
    [name] = optuna.study.get_all_study_names(options.storage)
    assert "-rest-" in name  # its own study, beside the gRPC one
    study = optuna.load_study(study_name=name, storage=options.storage)
    assert study.user_attrs["protocol"] == "rest"
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2 and all(metric_attr in t.user_attrs for t in trials)
    assert all(t.user_attrs["accuracy_ok"] for t in trials)
    report = json.loads((options.report_dir / f"{name}.json").read_text())
    assert report["protocol"] == "rest" and report["best"] is not None
    assert "docker run -d -p 8501:8501" in report["best"]["docker_run"]
    assert "server local over REST" in (options.report_dir / f"{name}.md").read_text()
    assert not serving_processes()


@pytest.mark.parametrize("stored, run", [("grpc", "rest"), ("rest", "grpc"), (None, "rest")],
                         ids=["grpc then rest", "rest then grpc", "older study then rest"])
def test_resuming_over_another_protocol_is_refused(tuning_options, small_assets,
                                                   stored, run):
    """A study from before the protocol was recorded was measured over gRPC."""
    options = tuning_options("online", study_name="mine", protocol=run)
    study = optuna.create_study(storage=options.storage, study_name="mine")
    study.set_user_attr("mode", "online")
    if stored:
        study.set_user_attr("protocol", stored)
    with pytest.raises(UsageError, match=f"protocol '{stored or 'grpc'}' \\(this run: '{run}'\\)"):
        run_tuning(options, assets=small_assets)
    assert not serving_processes()
