"""The report from stored trials: best feasible only, confirmation first, speed-ups, files."""

import json

import optuna
import pytest

from autotune.accuracy import AccuracyResult
from autotune.errors import NoFeasibleTrialError, UsageError
from autotune.launch.docker import docker_run_command
from autotune.report import build_report, print_stored_report, publish_report
from autotune.report.html import render_html
from autotune.report.markdown import render_markdown
from autotune.schema import StudyAttr, record_accuracy
from autotune.space import settings_from_params

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
THREADS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")


def _study(direction: str, storage: str | None = None, name: str = "s") -> optuna.Study:
    study = optuna.create_study(direction=direction, storage=storage, study_name=name)
    study.set_user_attr("mode", "online" if direction == "minimize" else "batch")
    study.set_user_attr("model_dir", "/m/ncf")
    study.set_user_attr("image", "autotune/serving:mkl")
    study.set_metric_names(["latency_ms" if direction == "minimize" else "throughput_sps"])
    return study


def _measured(study: optuna.Study, threads: tuple[int, int, int], value: float, hr: float = 0.5,
              baseline: str | None = None) -> None:
    study.enqueue_trial(dict(zip(THREADS, threads, strict=True)),
                        user_attrs={"baseline": baseline} if baseline else None)
    trial = study.ask()
    for name in THREADS:
        trial.suggest_int(name, 1, 4)
    record_accuracy(trial, AccuracyResult(hr=hr, ndcg=0.3, min_hr=0.22, min_ndcg=0.11))
    study.tell(trial, value)


def _online_study() -> optuna.Study:
    study = _study("minimize")
    _measured(study, (1, 1, 1), 2.0, baseline="tutorial")
    _measured(study, (2, 2, 2), 3.0, baseline="image-defaults")
    _measured(study, (2, 1, 1), 1.0, hr=0.1)  # fastest, but below the HR floor
    _measured(study, (1, 2, 1), 1.5)
    return study


def test_best_is_the_best_feasible_trial_and_speedups_are_ratios():
    report = build_report(_online_study())
    assert report["best"]["trial"] == 3 and report["best"]["value"] == 1.5
    assert report["best"]["source"] == "search" and report["best"]["ci95"] is None
    assert report["speedup"] == pytest.approx({"tutorial": 2.0 / 1.5, "image-defaults": 2.0})
    assert report["trials"] == {"COMPLETE": 4, "total": 4, "infeasible": 1}
    assert report["baselines"]["tutorial"]["value"] == 2.0
    assert report["best"]["env"]["OMP_NUM_THREADS"] == "1"
    assert report["best"]["env"]["TENSORFLOW_INTRA_OP_PARALLELISM"] == "2"


def test_confirmation_means_decide_when_there_are_some():
    study = _online_study()
    study.set_user_attr(StudyAttr.CONFIRMATION, {"rounds": 3, "configs": [
        {"trial": 3, "params": study.trials[3].params, "feasible": True, "baselines": [],
         "mean": 1.8, "ci95": [1.7, 1.9]},
        {"trial": 0, "params": study.trials[0].params, "feasible": True, "baselines": ["tutorial"],
         "mean": 1.6, "ci95": [1.5, 1.7]},
        {"trial": 1, "params": study.trials[1].params, "feasible": True,
         "baselines": ["image-defaults"], "mean": 3.2, "ci95": [3.0, 3.4]},
    ]})
    report = build_report(study)
    assert report["best"]["trial"] == 0 and report["best"]["baseline"] == "tutorial"
    assert report["best"]["ci95"] == [1.5, 1.7] and report["best"]["source"] == "confirmation"
    assert report["speedup"] == pytest.approx({"tutorial": 1.0, "image-defaults": 2.0})


def test_throughput_speedup_is_best_over_baseline():
    study = _study("maximize")
    _measured(study, (2, 2, 1), 100.0, baseline="tutorial")
    _measured(study, (1, 1, 1), 250.0)
    report = build_report(study)
    assert report["best"]["value"] == 250.0 and report["speedup"] == {"tutorial": 2.5}


def test_docker_run_command_carries_every_setting():
    settings = settings_from_params({"omp_num_threads": 2, "intra_op_parallelism": 2,
                                     "inter_op_parallelism": 1, "kmp_blocktime": 0,
                                     "kmp_affinity": "granularity=fine,compact,1,0",
                                     "cpuset": "0-1"})
    command = docker_run_command(settings, "/data/models/ncf", "autotune/serving:mkl")
    assert command.startswith("docker run -d -p 8500:8500 -v /data/models/ncf:/models/ncf "
                              "-e MODEL_NAME=ncf -e OMP_NUM_THREADS=2 ")
    assert "-e KMP_BLOCKTIME=0" in command
    assert "KMP_AFFINITY=granularity=fine,compact,1,0" in command
    assert command.endswith("--cpuset-cpus=0-1 autotune/serving:mkl")


def test_docker_run_command_mounts_the_batching_file_and_passes_the_flags(tmp_path):
    settings = settings_from_params({"omp_num_threads": 1, "intra_op_parallelism": 1,
                                     "inter_op_parallelism": 1, "enable_batching": True,
                                     "max_batch_size": 128, "batch_timeout_micros": 1000,
                                     "num_batch_threads": 2})
    command = docker_run_command(settings, "/data/models/ncf", "tensorflow/serving:latest",
                                 batching_file=tmp_path / "s.batching_parameters.txt")
    assert (f"-v {tmp_path}/s.batching_parameters.txt:/config/batching_parameters.txt:ro"
            in command)
    assert command.endswith("tensorflow/serving:latest --enable_batching=true "
                            "--batching_parameters_file=/config/batching_parameters.txt")


def test_files_note_and_stored_report(tmp_path):
    storage = f"sqlite:///{tmp_path}/studies.db"
    study = _study("minimize", storage, name="online-h-synthetic")
    _measured(study, (1, 1, 1), 2.0, baseline="tutorial")
    publish_report(study, tmp_path / "reports", quiet=True)
    report = json.loads((tmp_path / "reports" / "online-h-synthetic.json").read_text())
    assert {"best", "baselines", "speedup", "host", "mode", "trials"} <= set(report)
    env_file = tmp_path / "reports" / "online-h-synthetic.env"
    assert env_file.read_text().startswith("MODEL_NAME=ncf\n")
    note_keys = [key for key in study._storage.get_study_system_attrs(study._study_id)
                 if key.startswith("dashboard:note_str:")]
    assert note_keys  # the Markdown summary is the study's dashboard note

    assert print_stored_report(storage, None, tmp_path / "again") == 0
    page = (tmp_path / "again" / "online-h-synthetic.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    infeasible = _study("minimize", storage, name="other")
    _measured(infeasible, (1, 1, 1), 2.0, hr=0.0)
    with pytest.raises(UsageError):
        print_stored_report(storage, None, tmp_path / "again")  # two studies: which one?
    with pytest.raises(NoFeasibleTrialError):
        print_stored_report(storage, "other", tmp_path / "again")


def test_importances_are_a_short_table():
    report = build_report(_online_study())
    assert set(report["importances"]) == set(THREADS)
    assert sum(report["importances"].values()) == pytest.approx(1.0)
    markdown = render_markdown(report)
    assert "## Which knob matters" in markdown
    assert all(f"| {name} | " in markdown for name in THREADS)


def test_importances_need_a_few_varied_trials():
    study = _study("minimize")
    _measured(study, (1, 1, 1), 2.0)
    _measured(study, (2, 2, 2), 1.0)
    report = build_report(study)
    assert report["importances"] == {} and "Which knob matters" not in render_markdown(report)


def test_html_shows_infeasible_trials_and_baselines():
    study = _online_study()
    page = render_html(study, build_report(study))
    assert page.startswith("<!DOCTYPE html>") and "<script src=" not in page  # self-contained
    slices = [f"Slice: {name}" for name in THREADS]
    for title in ("Optimisation history", "Parameter importances", *slices):
        assert f"<h2>{title}</h2>" in page
    # trial 2 missed the HR floor: grey in Optuna's history and in every slice
    assert page.count('"name":"Infeasible Trial"') == 1 + len(THREADS)
    assert "tutorial (trial 0)" in page and "image-defaults (trial 1)" in page  # reference lines
    assert "<h2>Confirmation</h2>" not in page  # nothing re-measured: no empty plot
