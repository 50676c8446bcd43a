"""`--mode server` for real: LoadGen against local embedded servers, a short study.

The runs are short and the bound generous (the suite shares two busy cores); what is
checked is the shape of the answer: every trial's `qps_at_slo` with the rates it tried,
a best that met the bound and was raced with the tutorial's, the report's
latency-vs-rate tables, LoadGen's logs of the best kept, a batching trial on two pinned
instances sharing the load (on a host of two cores or more), and a host that misses the
bound at the lowest rate failing its trial.
"""

from __future__ import annotations

import json
import math

import optuna
import pytest
from optuna.trial import TrialState

from autotune.errors import NoFeasibleTrialError
from autotune.measure.loadgen import client_program
from autotune.options import PeakPolicy, RunSettings
from autotune.record.schema import TrialAttr
from autotune.report.server_files import loadgen_log_root
from autotune.tuning.run import run_tuning
from autotune.tuning.trials import MAX_FAILURES_IN_A_ROW
from processes import serving_processes

#: a few short LoadGen runs per trial: ~500 queries each (early stopping's minimum for p99)
SHORT_RUNS = RunSettings(min_duration_s=0.5, min_queries=500, max_duration_s=3.0)
QUICK_SEARCH = PeakPolicy(start_qps=200, min_qps=100, precision=0.5, max_runs=3)
BATCHING = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1,
            "enable_batching": True, "max_batch_size": 32, "batch_timeout_micros": 1000,
            "num_batch_threads": 1, "instances": 2}


def _server_options(tuning_options, **overrides):
    short = {"p99_ms": 250.0, "loadgen_run": SHORT_RUNS, "peak_policy": QUICK_SEARCH}
    return tuning_options("server", **{**short, **overrides})


def test_server_study_reports_the_peak_rate_under_the_bound(tuning_options, small_assets):
    # Two trials: one with batching on (enqueued first), then the tutorial's baseline.
    options = _server_options(tuning_options, trials=2, study_name="server-study",
                              confirm_budget=60)
    study = optuna.create_study(storage=options.storage, study_name="server-study",
                                direction="maximize")
    study.enqueue_trial(BATCHING)
    assert run_tuning(options, assets=small_assets) == 0
    study = optuna.load_study(study_name="server-study", storage=options.storage)
    assert study.metric_names == ["qps_at_slo"] and study.user_attrs["p99_ms"] == 250.0
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    assert [t.user_attrs.get("baseline") for t in trials] == [None, "tutorial"]
    for trial in trials:
        rates = trial.user_attrs["rates_tried"]
        assert trial.value == trial.user_attrs["qps_at_slo"] > 0
        assert any(row["ok"] and row["qps"] == round(trial.value, 1) for row in rates)
        assert trial.user_attrs["slo_latency_ms_p99"] <= 250.0
        assert trial.user_attrs["accuracy_ok"]
        # the load came from the best client processes this host can build
        assert trial.user_attrs["loadgen_client"] == client_program().describe()
    batched = next(t for t in trials if t.params.get("enable_batching"))
    assert batched.params["max_batch_size"] == 32
    if "instances" in batched.params:  # searched where the host has two cores or more
        assert batched.params["instances"] == 2 and len(set(batched.user_attrs["cpusets"])) == 2

    report = json.loads((options.report_dir / "server-study.json").read_text())
    assert report["best"]["value"] > 0 and report["best"]["source"] == "racing"
    racing = report["racing"]  # both raced, each measurement a peak refined at the bound
    assert racing["rounds"] >= 1 and len(racing["finalists"]) == 2
    recommended = next(f for f in racing["finalists"] if f["trial"] == report["best"]["trial"])
    measured = [value for value in recommended["values"] if value is not None]
    assert (report["best"]["ci95"] is not None) == (len(measured) >= 3)
    assert report["best"]["rounds"] == len(measured)
    assert report["recommendation"].startswith("Recommended: ")
    tutorial_recommended = report["best"]["params"] == report["baselines"]["tutorial"]["params"]
    assert set(report["speedup"]["tutorial"]) == {"ratio", "ci95", "significant"} | (
        {"is_recommended"} if tutorial_recommended else set())
    assert report["p99_ms"] == 250.0 and report["best"]["rates_tried"]
    markdown = (options.report_dir / "server-study.md").read_text()
    assert "requests/s" in markdown and "## Latency vs rate" in markdown
    assert "### tutorial" in markdown
    kept = list(loadgen_log_root(options.report_dir, "server-study").iterdir())
    assert [str(folder) for folder in kept] == [report["best"]["loadgen_logs"]]
    assert list(kept[0].glob("run-*/mlperf_log_summary.txt"))
    if report["best"]["params"].get("enable_batching"):
        batching_file = options.report_dir / "server-study.batching_parameters.txt"
        assert "max_batch_size { value:" in batching_file.read_text()
        assert f"{batching_file.resolve()}:/config/batching_parameters.txt:ro" in \
            report["best"]["docker_run"]
    assert not serving_processes()


def test_a_host_missing_the_bound_at_the_lowest_rate_fails_the_trial(tuning_options, small_assets):
    # More trials than the failures in a row that end a study: a missed bound is a
    # finding about the configuration, so the run goes on, then says what bound to use.
    options = _server_options(tuning_options, trials=MAX_FAILURES_IN_A_ROW + 1, p99_ms=0.001,
                              study_name="missed")
    with pytest.raises(NoFeasibleTrialError) as raised:
        run_tuning(options, assets=small_assets)
    study = optuna.load_study(study_name="missed", storage=options.storage)
    # a suggestion repeating a configuration that missed is skipped, not measured again
    failed = [t for t in study.get_trials(states=(TrialState.FAIL,))
              if TrialAttr.DUPLICATE_OF not in t.user_attrs]
    assert len(failed) == MAX_FAILURES_IN_A_ROW + 1
    for trial in failed:
        assert trial.user_attrs["failure"].startswith(
            "misses p99 <= 0.001 ms even at the lowest rate, 100 requests/s")
        # every rate the search tried is kept, down to the lowest, all missed
        rates = trial.user_attrs["rates_tried"]
        assert rates and not any(row["ok"] for row in rates) and rates[-1]["qps"] == 100.0
    best = min(trial.user_attrs["missed_p99_ms"] for trial in failed)
    assert f"{len(failed)} missed p99 <= 0.001 ms even at 100 requests/s" in str(raised.value)
    assert f"(the best p99 there: {best:.2f} ms)" in str(raised.value)
    assert f"--p99-ms {math.ceil(1.5 * best)}" in str(raised.value)
    assert raised.value.exit_code == 3
    assert json.loads((options.report_dir / "missed.json").read_text())["best"] is None
    assert not serving_processes()
