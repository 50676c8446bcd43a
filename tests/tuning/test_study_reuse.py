"""No trial wasted, with real local servers: a repeated configuration is not measured again,
and a configuration made slow on purpose is pruned before its gate."""

from __future__ import annotations

import dataclasses
import json
import statistics

import optuna
from optuna.trial import TrialState

from autotune.options import LatencyPolicy
from autotune.record.schema import TrialAttr
from autotune.tuning.run import run_tuning
from processes import serving_processes
from throttled import threads_of, throttling

#: the configuration the slow launcher holds to a quarter of one CPU
SLOW = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 2}


def _study(options) -> optuna.Study:
    (name,) = optuna.study.get_all_study_names(options.storage)
    return optuna.load_study(study_name=name, storage=options.storage)


def _report(options, study: optuna.Study) -> dict:
    return json.loads((options.report_dir / f"{study.study_name}.json").read_text())


def test_a_repeated_configuration_is_skipped_and_a_new_one_measured(tuning_options,
                                                                      small_assets):
    options = tuning_options("online", trials=2, confirm_budget=0, max_threads=2)
    assert run_tuning(options, assets=small_assets) == 0  # the two baselines
    study = _study(options)
    tutorial = study.trials[0]
    study.enqueue_trial(dict(tutorial.params))  # planned again, as a warm start might
    assert run_tuning(dataclasses.replace(options, trials=1), assets=small_assets) == 0

    study = _study(options)
    skipped, fresh = study.trials[2], study.trials[3]
    assert skipped.params == tutorial.params and skipped.state == TrialState.FAIL
    assert skipped.user_attrs[TrialAttr.DUPLICATE_OF] == tutorial.number
    assert TrialAttr.STARTUP_S not in skipped.user_attrs  # no server was started for it
    # the budget of one bought a configuration no trial had measured
    assert fresh.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert TrialAttr.STARTUP_S in fresh.user_attrs
    assert fresh.params not in [t.params for t in study.trials[:3]]
    counts = _report(options, study)["trials"]
    assert counts["skipped"] == 1 and "FAIL" not in counts and counts["total"] == 3
    assert not serving_processes()


def test_a_space_measured_whole_ends_the_search(tuning_options, small_assets):
    # one thread each: a space of one configuration, both baselines clipped into it
    options = tuning_options("online", trials=4, confirm_budget=0, max_threads=1)
    assert run_tuning(options, assets=small_assets) == 0
    study = _study(options)
    measured = [t for t in study.trials if TrialAttr.STARTUP_S in t.user_attrs]
    assert [t.user_attrs[TrialAttr.BASELINE] for t in measured] == ["tutorial", "image-defaults"]
    (skipped,) = [t for t in study.trials if TrialAttr.DUPLICATE_OF in t.user_attrs]
    assert skipped.number == 2 and len(study.trials) == 3  # the budget's last trial never asked
    assert not serving_processes()


def test_a_configuration_made_slow_is_pruned_before_its_gate(tuning_options, small_assets,
                                                             cgroups):
    # short windows: the slow server's evidence comes in a few of them
    policy = LatencyPolicy(warmup_requests=5, window=10, max_requests=1000, max_seconds=10.0)
    options = tuning_options("online", trials=2, confirm_budget=0, latency_policy=policy)
    factory = throttling(lambda settings: threads_of(settings) == SLOW)
    assert run_tuning(options, assets=small_assets, launcher_factory=factory) == 0
    _study(options).enqueue_trial(SLOW)  # measured after the baselines, so it has a best
    options = dataclasses.replace(options, trials=1, confirm_budget=20)
    assert run_tuning(options, assets=small_assets, launcher_factory=factory) == 0

    study = _study(options)
    (slow,) = [t for t in study.trials if t.params == SLOW]
    assert slow.state == TrialState.PRUNED
    assert 3 <= len(slow.intermediate_values) < 100  # an interval's worth of windows, not all
    assert not {TrialAttr.HR, TrialAttr.NDCG, TrialAttr.ACCURACY_OK} & set(slow.user_attrs)
    best = min(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    # its windows' mean latency (a quota's stalls fall in some windows, not all)
    assert statistics.fmean(slow.intermediate_values.values()) > best
    report = _report(options, study)
    assert report["trials"]["PRUNED"] == 1
    assert slow.number not in [f["trial"] for f in report["racing"]["finalists"]]
    assert not serving_processes()
