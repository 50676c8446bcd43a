"""Short studies in both modes with real local servers: baselines, attrs, report files."""

import json
import os
import socket

import optuna
from optuna.trial import TrialState

from autotune.racing.record import SINGLE_INSTANCE
from autotune.stats import MIN_PAIRS
from autotune.tuning.run import run_tuning
from processes import serving_processes

STUDY_ATTRS = {"mode", "host", "server", "image", "model_dir", "min_hr", "min_ndcg", "batch_size"}
REPORT_KEYS = {"best", "baselines", "speedup", "host", "mode", "trials", "tied", "racing",
               "recommendation", "measurement"}


def _check_study(options, mode_attrs: set[str]) -> tuple[optuna.Study, dict]:
    names = optuna.study.get_all_study_names(options.storage)
    assert len(names) == 1
    study = optuna.load_study(study_name=names[0], storage=options.storage)
    assert STUDY_ATTRS <= set(study.user_attrs)
    assert study.user_attrs["mode"] == options.mode.name and study.user_attrs["server"] == "local"
    assert study.user_attrs["host"]["physical_cores"] >= 1

    trials = study.get_trials(states=(TrialState.COMPLETE,))
    # a trial shown slower than the best while it measured is pruned (never the baselines)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert len(trials) + len(pruned) == options.trials
    assert [t.user_attrs.get("baseline") for t in trials[:2]] == ["tutorial", "image-defaults"]
    for trial in trials:
        assert mode_attrs | {"hr", "ndcg", "accuracy_ok", "startup_s", "precision", "converged"} \
            <= set(trial.user_attrs)
        assert trial.user_attrs["worker"] == f"{socket.gethostname()}:{os.getpid()}"
        assert trial.user_attrs["accuracy_ok"] and set(trial.constraints) >= {"hr", "ndcg"}
    assert "racing" in study.user_attrs

    report = json.loads((options.report_dir / f"{study.study_name}.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["best"]["params"] and report["best"]["source"] == "racing"
    racing = report["racing"]
    assert racing["rounds"] >= 1 and racing["stopped"] in ("budget", "one left", "tied within 2%")
    raced = {name for f in racing["finalists"] for name in f["baselines"]}
    # the baselines are raced, and the best single instance where `instances` was searched
    searched = any("instances" in t.params for t in trials)
    assert raced == {"tutorial", "image-defaults"} | ({SINGLE_INSTANCE} if searched else set())
    recommended = next(f for f in racing["finalists"] if f["trial"] == report["best"]["trial"])
    measured = [value for value in recommended["values"] if value is not None]
    assert (report["best"]["ci95"] is not None) == (len(measured) >= MIN_PAIRS)
    assert report["tied"][0]["trial"] == report["best"]["trial"] or len(report["tied"]) > 1
    assert report["recommendation"].startswith("Recommended: ")
    assert report["best"]["hr"] >= options.min_hr and report["best"]["ndcg"] >= options.min_ndcg
    assert set(report["speedup"]) == {"tutorial", "image-defaults"}
    for name, claim in report["speedup"].items():
        baseline = next(f for f in racing["finalists"] if name in f["baselines"])
        if baseline is recommended:  # the recommendation itself: nothing to compare with
            assert claim == {"ratio": 1.0, "ci95": None, "significant": False,
                             "is_recommended": True}
            continue
        assert set(claim) == {"ratio", "ci95", "significant"}
        pairs = sum(a is not None and b is not None
                    for a, b in zip(recommended["values"], baseline["values"], strict=True))
        assert (claim["ratio"] is None) == (pairs == 0)
        assert (claim["ci95"] is None) == (pairs < MIN_PAIRS)
        assert claim["ratio"] is None or claim["ratio"] > 0
        assert claim["significant"] == (claim["ci95"] is not None
                                        and not claim["ci95"][0] <= 1 <= claim["ci95"][1])
    assert report["trials"]["COMPLETE"] == len(trials) and report["trials"]["infeasible"] == 0
    assert (options.report_dir / f"{study.study_name}.md").read_text().startswith("# autotune")
    env = (options.report_dir / f"{study.study_name}.env").read_text()
    assert "OMP_NUM_THREADS=" in env and "TENSORFLOW_INTRA_OP_PARALLELISM=" in env
    assert "docker run -d -p 8500:8500" in report["best"]["docker_run"]
    page = (options.report_dir / f"{study.study_name}.html").read_text()
    assert "Optimisation history" in page and "<h2>Racing</h2>" in page
    return study, report


def test_online_study(tuning_options, small_assets):
    options = tuning_options("online", trials=3, objective="p95", confirm_budget=40)
    assert run_tuning(options, assets=small_assets) == 0
    study, report = _check_study(options, {"latency_ms_mean", "latency_ms_p50", "latency_ms_p95",
                                           "latency_ms_p99"})
    assert study.metric_names == ["latency_ms"] and study.direction.name == "MINIMIZE"
    assert study.trials[0].params == {"omp_num_threads": 1, "intra_op_parallelism": 1,
                                      "inter_op_parallelism": 1}
    assert study.trials[1].value == study.trials[1].user_attrs["latency_ms_p95"]
    assert "Latency distribution" in (options.report_dir / f"{study.study_name}.html").read_text()
    assert not serving_processes()


def test_batch_study(tuning_options, small_assets):
    options = tuning_options("batch", trials=3)
    assert run_tuning(options, assets=small_assets) == 0
    study, report = _check_study(options, {"throughput_sps"})
    assert study.metric_names == ["throughput_sps"] and study.direction.name == "MAXIMIZE"
    assert study.user_attrs["batch_size"] == options.batch_size
    assert report["best"]["value"] > 0
    assert all(len(t.user_attrs["request_sps"]) == options.iterations
               for t in study.get_trials(states=(TrialState.COMPLETE,)))
    assert "Throughput per request" in (options.report_dir / f"{study.study_name}.html").read_text()
    assert not serving_processes()
