"""Warm start: a second host class in the same storage starts from the first class's best.

The unit tests write studies straight into an in-memory storage (no server); the
integration test runs two short studies with real local servers on one SQLite storage.
"""

import json

import optuna
import pytest

from autotune.errors import UsageError
from autotune.fleet import make_host_class
from autotune.options import TuningOptions
from autotune.racing.record import Finalist, RaceRecord
from autotune.record.schema import StudyAttr, TrialAttr, is_feasible, params_key
from autotune.search.space import SearchSpace
from autotune.tuning.run import run_tuning
from autotune.tuning.warm_start import best_configurations, map_params, warm_start_sources
from processes import serving_processes
from trials import add_trial

STUDY_PARTS = {"mode": "online", "dataset": "synthetic", "space": "default"}


def _class(name: str, model: str = "m1"):
    return make_host_class({}, "local", model, STUDY_PARTS, manual_name=name)


def _tagged(storage, name: str, mode: str, host_class) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=name)
    study.set_user_attr(StudyAttr.MODE, mode)
    study.set_user_attr(StudyAttr.HOST_CLASS, host_class.as_attr())
    return study


def test_threads_scale_by_the_cores_and_every_knob_lands_in_this_space():
    space = SearchSpace(max_threads=4, instances=(1, 2, 4), kmp_blocktime=(0, 1, 10, 200),
                        kmp_affinity=("none",), cpuset=("none", "0-1"))
    defaults = {"kmp_affinity": "none", "kmp_blocktime": 200}
    wide = {"omp_num_threads": 16, "intra_op_parallelism": 2, "inter_op_parallelism": 1,
            "instances": 3, "kmp_blocktime": 7}
    assert map_params(wide, 0.25, space, defaults) == {
        "omp_num_threads": 4, "intra_op_parallelism": 1, "inter_op_parallelism": 1,
        "instances": 2, "kmp_blocktime": 10, "kmp_affinity": "none"}
    pinned = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1,
              "instances": 1, "cpuset": "0-7"}
    assert map_params(pinned, 2.0, space, defaults)["cpuset"] == "none"  # not offered here
    assert map_params(pinned, 2.0, space, defaults)["omp_num_threads"] == 2


def test_a_raced_source_gives_its_recommendation_first_then_its_best_trials():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="minimize")
    for x, value, hr in ((1, 3.0, 0.5), (2, 1.0, 0.1), (3, 2.0, 0.5), (4, 2.5, 0.5)):
        add_trial(study, x, value, hr=hr)  # x=2 is fastest but infeasible
    assert [params["x"] for _, params in best_configurations(study)] == [3, 4, 1]
    raced = RaceRecord("minimize", 0.02, 10, finalists=[
        Finalist(3, {"x": 4}, True, values=[1.0, 1.0, 1.0]),
        Finalist(2, {"x": 3}, True, values=[2.0, 2.1, 1.9])], rounds=3)
    study.set_user_attr(StudyAttr.RACING, raced.to_dict())
    assert [number for number, _ in best_configurations(study)] == [3, 2, 0]


def test_auto_takes_siblings_and_a_named_study_must_exist_and_match():
    storage = optuna.storages.InMemoryStorage()
    ours, theirs = _class("rack-b"), _class("rack-a")
    _tagged(storage, "sibling", "online", theirs)
    _tagged(storage, "same-class", "online", ours)
    _tagged(storage, "other-model", "online", _class("rack-c", model="m2"))
    _tagged(storage, "other-mode", "batch", theirs)
    options = TuningOptions(mode="online")
    assert [s.study_name for s in warm_start_sources(storage, options, ours)] == ["sibling"]
    none = TuningOptions(mode="online", warm_start="none")
    assert warm_start_sources(storage, none, ours) == []
    for name, says in (("missing", "no such study"), ("other-mode", "another mode or model"),
                       ("other-model", "another mode or model")):
        with pytest.raises(UsageError, match=says):
            warm_start_sources(storage, TuningOptions(mode="online", warm_start=name), ours)


def test_a_second_host_class_starts_from_the_first_class_best(tuning_options, small_assets):
    first = tuning_options("online", trials=3, host_class="rack-a", study_name="rack-a",
                           confirm_budget=0)
    # the first class measures one configuration besides the baselines, first
    optuna.create_study(storage=first.storage, study_name="rack-a").enqueue_trial(
        {"omp_num_threads": 2, "intra_op_parallelism": 1, "inter_op_parallelism": 1})
    assert run_tuning(first, assets=small_assets) == 0
    source = optuna.load_study(study_name="rack-a", storage=first.storage)
    # racing three (none races with no budget) keeps the pruner waiting for three feasible
    # configurations, so the warm trial is measured to its end, not pruned against a
    # baseline that a noisy host made faster (its rank in the report is asserted below)
    second = tuning_options("online", trials=3, host_class="rack-b", confirm_top=3,
                            confirm_budget=0)
    assert run_tuning(second, assets=small_assets) == 0
    (name,) = set(optuna.study.get_all_study_names(second.storage)) - {"rack-a"}
    study = optuna.load_study(study_name=name, storage=second.storage)

    assert [t.user_attrs.get(TrialAttr.BASELINE) for t in study.trials[:2]] == [
        "tutorial", "image-defaults"]
    # the first class's best beyond the baselines (measured here anyway): its trial 0
    baselines = [t.params for t in study.trials[:2]]
    best = next(number for number, params in best_configurations(source)
                if params not in baselines)
    assert best == 0 and is_feasible(source.trials[0])
    warm = study.trials[2]
    assert warm.user_attrs[TrialAttr.WARM_START_FROM] == {"study": "rack-a", "trial": 0}
    # one host: the same cores, so the same settings
    assert params_key(warm.params) == params_key(source.trials[0].params)

    report = json.loads((second.report_dir / f"{name}.json").read_text())
    (row,) = report["warm_start"]
    assert row["trial"] == 2 and row["from"] == {"study": "rack-a", "trial": 0}
    assert 1 <= row["rank"] <= row["of"] == 3
    assert "## Warm start" in (second.report_dir / f"{name}.md").read_text()
    assert not serving_processes()


def test_a_named_study_that_is_missing_is_refused_before_the_run_creates_its_own(
        tuning_options, small_assets):
    options = tuning_options("online", trials=1, warm_start="nowhere")
    with pytest.raises(UsageError, match="--warm-start 'nowhere': no such study"):
        run_tuning(options, assets=small_assets)
    assert optuna.study.get_all_study_names(options.storage) == []
    assert not serving_processes()
