"""The report from stored trials: best feasible only, the racing's verdict, claims, files."""

import json
import statistics

import optuna
import pytest

from autotune.errors import NoFeasibleTrialError, UsageError
from autotune.launch.docker import docker_run_command
from autotune.measure.accuracy import AccuracyResult
from autotune.record.schema import StudyAttr, record_constraints
from autotune.report import build_report, print_stored_report, publish_report
from autotune.report.html import render_html
from autotune.report.markdown import render_markdown
from autotune.search.space import settings_from_params

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
              baseline: str | None = None, **attrs: object) -> None:
    study.enqueue_trial(dict(zip(THREADS, threads, strict=True)),
                        user_attrs={**attrs, **({"baseline": baseline} if baseline else {})})
    trial = study.ask()
    for name in THREADS:
        trial.suggest_int(name, 1, 4)
    record_constraints(trial, AccuracyResult(hr=hr, ndcg=0.3, min_hr=0.22, min_ndcg=0.11))
    study.tell(trial, value)


def _online_study() -> optuna.Study:
    study = _study("minimize")
    _measured(study, (1, 1, 1), 2.0, baseline="tutorial")
    _measured(study, (2, 2, 2), 3.0, baseline="image-defaults")
    _measured(study, (2, 1, 1), 1.0, hr=0.1)  # fastest, but below the HR floor
    _measured(study, (1, 2, 1), 1.5)
    return study


def _search_only(ratio: float) -> dict:
    return {"ratio": pytest.approx(ratio), "ci95": None, "significant": False}


def test_without_racing_the_best_search_trial_is_reported_and_no_speedup_claimed():
    report = build_report(_online_study())
    assert report["best"]["trial"] == 3 and report["best"]["value"] == 1.5
    assert report["best"]["source"] == "search" and report["best"]["ci95"] is None
    assert report["speedup"] == {"tutorial": _search_only(2.0 / 1.5),
                                 "image-defaults": _search_only(2.0)}
    assert "no speed-up is claimed" in report["recommendation"] and report["racing"] is None
    assert report["trials"] == {"COMPLETE": 4, "total": 4, "infeasible": 1}
    assert report["baselines"]["tutorial"]["value"] == 2.0
    assert report["best"]["env"]["OMP_NUM_THREADS"] == "1"
    assert report["best"]["env"]["TENSORFLOW_INTRA_OP_PARALLELISM"] == "2"
    assert "1.33x from single measurements: no interval, no claim" in render_markdown(report)


def _finalist(study: optuna.Study, number: int, values: list[float], **fields) -> dict:
    trial = study.trials[number]
    return {"trial": number, "params": trial.params, "feasible": True,
            "baselines": [trial.user_attrs["baseline"]] if "baseline" in trial.user_attrs else [],
            "values": values, "failures": [], "dropped_round": None, "dropped_reason": None,
            **fields}


def _race(study: optuna.Study, stopped: str, *finalists: dict) -> None:
    """Store a four-round race of `finalists` (minimize, 2% precision, 55 s of 60)."""
    study.set_user_attr(StudyAttr.RACING, {
        "direction": "minimize", "precision": 0.02, "budget_s": 60.0, "alpha": 0.05,
        "rounds": 4, "seconds": 55.0, "stopped": stopped, "finalists": list(finalists)})


def test_the_racing_decides_ties_recommendation_and_claims():
    study = _online_study()
    rounds = [1.0, 1.2, 0.9, 1.1]
    _race(study, "budget",
          _finalist(study, 3, rounds),  # (1, 2, 1): four threads
          _finalist(study, 0,  # the tutorial
                    [v * (1.05, 0.96)[i % 2] for i, v in enumerate(rounds)]),
          _finalist(study, 1, [2 * v for v in rounds[:3]] + [None], dropped_round=3,
                    dropped_reason="slower"))  # image defaults
    report = build_report(study)
    assert report["best"]["trial"] == 3 and report["best"]["source"] == "racing"
    assert report["best"]["value"] == pytest.approx(statistics.geometric_mean(rounds))
    assert len(report["best"]["ci95"]) == 2 and report["best"]["rounds"] == 4
    assert [t["trial"] for t in report["tied"]] == [3, 0]
    assert "could not be told apart" in report["recommendation"]
    tutorial, defaults = report["speedup"]["tutorial"], report["speedup"]["image-defaults"]
    assert not tutorial["significant"] and tutorial["ci95"][0] < 1 < tutorial["ci95"][1]
    assert defaults == {"ratio": pytest.approx(2.0), "ci95": pytest.approx([2.0, 2.0]),
                        "significant": True}
    assert report["baselines"]["image-defaults"]["source"] == "racing"
    assert report["racing"]["rounds"] == 4 and report["racing"]["stopped"] == "budget"
    assert report["racing"]["dropped"] == [{"trial": 1, "params": study.trials[1].params,
                                            "round": 3, "reason": "slower"}]
    markdown = render_markdown(report)
    assert "| tutorial | " in markdown and "| no significant difference (95% CI" in markdown
    assert "| 2.00x (faster; 95% CI 2.00-2.00x) |" in markdown
    assert "## Statistically tied with the fastest" in markdown and "| the fastest |" in markdown
    assert "4 rounds in 55 s (budget 60 s), stopped: budget." in markdown


def test_a_baseline_that_is_the_recommendation_is_not_compared_with_itself():
    study = _online_study()
    rounds = [1.0, 1.2, 0.9, 1.1]
    _race(study, "one left",
          _finalist(study, 0, rounds),  # the tutorial, the fastest
          _finalist(study, 3, [1.5 * v for v in rounds]))
    report = build_report(study)
    assert report["best"]["trial"] == 0
    assert report["speedup"]["tutorial"]["is_recommended"]
    assert not report["speedup"]["tutorial"]["significant"]
    assert "| is the recommended configuration |" in render_markdown(report)
    assert "1.00-1.00x" not in render_markdown(report)


def test_throughput_speedup_is_best_over_baseline():
    study = _study("maximize")
    _measured(study, (2, 2, 1), 100.0, baseline="tutorial")
    _measured(study, (1, 1, 1), 250.0)
    report = build_report(study)
    assert report["best"]["value"] == 250.0 and report["speedup"] == {"tutorial": _search_only(2.5)}


def test_the_report_says_which_trials_stopped_at_the_measurement_cap():
    study = _study("minimize")
    study.set_user_attr("precision", 0.02)
    _measured(study, (1, 1, 1), 2.0, baseline="tutorial", precision=0.015, converged=True)
    _measured(study, (2, 1, 1), 1.5, precision=0.034, converged=False)
    _measured(study, (1, 2, 1), 1.7, precision=None, converged=False)
    report = build_report(study)
    assert report["measurement"] == {"precision": 0.02, "capped": [
        {"trial": 1, "precision": 0.034}, {"trial": 2, "precision": None}]}
    assert ("2 trial(s) stopped at the measurement cap before their 95% interval was within ±2%: "
            "trial 1 (±3.4%), trial 2 (no interval).") in render_markdown(report)


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
    assert "<h2>Racing</h2>" not in page  # nothing raced: no empty plot


def test_several_instances_report_cpusets_memory_and_the_gain_over_one():
    study = _study("maximize")
    for instances, value in ((1, 100.0), (2, 150.0), (1, 120.0)):
        study.enqueue_trial({**dict(zip(THREADS, (1, 1, 1), strict=True)), "instances": instances})
        trial = study.ask()
        for name in THREADS:
            trial.suggest_int(name, 1, 4)
        trial.suggest_categorical("instances", [1, 2])
        if instances == 2:
            trial.set_user_attr("cpusets", ["0", "1"])
            trial.set_user_attr("cpuset_mems", ["0", "1"])
        trial.set_user_attr("rss_mb", 300.0 * instances)
        record_constraints(trial, AccuracyResult(hr=0.5, ndcg=0.3, min_hr=0.22, min_ndcg=0.11))
        study.tell(trial, value)
    report = build_report(study)
    assert report["best"]["trial"] == 1 and report["best"]["instances"] == 2
    assert report["best"]["cpusets"] == ["0", "1"] and report["best"]["rss_mb"] == 600.0
    assert report["single_instance"]["trial"] == 2
    assert report["single_instance"]["speedup_of_best"]["ratio"] == pytest.approx(150.0 / 120.0)
    first, second = report["best"]["docker_run"].splitlines()
    assert "-p 8500:8500" in first and "--cpuset-cpus=0" in first and "--cpuset-mems=0" in first
    assert "-p 8501:8500" in second and "--cpuset-cpus=1" in second and "--cpuset-mems=1" in second
    markdown = render_markdown(report)
    assert "2 instance(s) on CPUs `0`, `1`" in markdown
    assert "1.25x from single measurements" in markdown
    assert "600 MB" in markdown
    page = render_html(study, report)  # the HTML report states them as the summary does
    assert "2 instance(s) on CPUs <code>0</code>, <code>1</code>" in page
    assert "--cpuset-cpus=1" in page


def _intervals(report: dict) -> list:
    """Every interval of a value the report states (best, baselines, tied, not raced)."""
    entries = [report["best"], *report["baselines"].values(), *report["tied"],
               *report["not_raced"]]
    return [entry["ci95"] for entry in entries if entry and entry.get("ci95")]


def test_no_interval_is_negative_or_drawn_from_one_or_two_values():
    """A rate's spread over a few rounds gave "859 requests/s (95% CI -318 to 2,036)" from
    two rounds, and "644 (95% CI 644 to 644)" from one: intervals now live on the log scale
    and need three rounds."""
    study = _study("maximize")
    _measured(study, (1, 1, 1), 300.0, baseline="tutorial")
    _measured(study, (2, 1, 1), 900.0)
    _measured(study, (1, 2, 1), 850.0)
    study.set_user_attr(StudyAttr.RACING, {
        "direction": "maximize", "precision": 0.02, "budget_s": 60.0, "alpha": 0.05,
        "rounds": 3, "seconds": 55.0, "stopped": "budget", "finalists": [
            _finalist(study, 1, [100.0, 2000.0, 60.0]),  # wildly spread: a t interval < 0
            _finalist(study, 2, [859.0, None, None]),  # one measurement
            _finalist(study, 0, [320.0, 310.0, None])]})  # two rounds
    report = build_report(study)
    intervals = _intervals(report)
    assert intervals and all(low > 0 for low, _ in intervals)
    assert report["best"]["rounds"] == 3 and report["best"]["ci95"][0] > 0
    assert [t["trial"] for t in report["tied"]] == [1]
    assert [(t["trial"], t["rounds"], t["ci95"]) for t in report["not_raced"]] == [
        (2, 1, None), (0, 2, None)]
    assert report["baselines"]["tutorial"]["ci95"] is None
    assert "not raced long enough" in report["recommendation"]
    markdown = render_markdown(report)
    assert "(one measurement)" in markdown and "(two rounds)" in markdown
    assert "## Not raced long enough to compare" in markdown
    assert "-" not in "".join(line for line in markdown.splitlines() if "95% CI" in line
                               and "CI -" in line)
