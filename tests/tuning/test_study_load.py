"""How busy the host was, in real studies: a detached CPU burner on one of the tuner's
CPUs is measured on every trial and reported with a warning; a quiet study has none;
with --max-foreign-cpu a busy trial waits for the host to calm and measures again."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Iterator

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from autotune.record.schema import TrialAttr
from autotune.record.storage import open_storage
from autotune.tuning import run_tuning
from burner import cpu_burner
from processes import wait_for_answering_server
from quick import QUICK_LATENCY, quick_options

pytestmark = pytest.mark.slow

#: the tuner and its servers run on (at most) two CPUs; the burner takes the first
CPUS = sorted(os.sched_getaffinity(0))[:2]


@pytest.fixture
def two_cpus() -> Iterator[list[int]]:
    """This test process (the tuner; its servers inherit it) pinned to `CPUS`, so one
    burning CPU is a large share of the tuner's, whatever the host's size."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, CPUS)
    try:
        yield CPUS
    finally:
        os.sched_setaffinity(0, saved)


def _trials_and_report(options) -> tuple[list, dict]:
    """The study's measured trials and its report JSON."""
    storage = open_storage(options.storage, create=False)
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    report = json.loads((Path(options.report_dir) / f"{study.study_name}.json").read_text())
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), report


def test_a_busy_host_is_measured_on_every_trial_and_reported(small_assets, tmp_path,
                                                             two_cpus) -> None:
    busy_options = quick_options(tmp_path / "busy", trials=3, confirm_budget=15)
    quiet_options = quick_options(tmp_path / "quiet", trials=3, confirm_budget=15)
    with cpu_burner(two_cpus[0]):
        assert run_tuning(busy_options, assets=small_assets) == 0
    assert run_tuning(quiet_options, assets=small_assets) == 0
    busy_trials, busy_report = _trials_and_report(busy_options)
    quiet_trials, quiet_report = _trials_and_report(quiet_options)
    busy = [t.user_attrs[TrialAttr.FOREIGN_CPU] for t in busy_trials]
    quiet = [t.user_attrs[TrialAttr.FOREIGN_CPU] for t in quiet_trials]
    assert min(busy) > statistics.median(quiet) + 0.15, (busy, quiet)
    assert all(0 <= t.user_attrs[TrialAttr.STEAL] <= 1 for t in busy_trials + quiet_trials)
    load = busy_report["host"]["load"]
    assert load["search"]["measurements"] == len(busy_trials)
    assert load["search"]["foreign_cpu"]["median"] > 0.15
    assert load["busiest"] and load["warning"] and "busy" in load["warning"]
    assert "Busy host" in (Path(busy_options.report_dir)
                           / f"{busy_report['study']}.md").read_text()
    assert quiet_report["host"]["load"]["warning"] is None
    assert "Busy host" not in (Path(quiet_options.report_dir)
                               / f"{quiet_report['study']}.md").read_text()


def test_a_busy_trial_waits_for_calm_and_is_measured_again(small_assets, tmp_path,
                                                           two_cpus) -> None:
    options = quick_options(tmp_path, trials=1, confirm_budget=0, max_foreign_cpu=0.2,
                            quiet_wait=90)
    with cpu_burner(two_cpus[0]) as burner:
        def stop_after_the_first_measurement() -> None:  # the other job ends meanwhile
            wait_for_answering_server(psutil.Process(), timeout_s=120)
            time.sleep(QUICK_LATENCY.max_seconds + 1)  # the first measurement's cap, and more
            burner.stop()

        stopper = threading.Thread(target=stop_after_the_first_measurement, daemon=True)
        stopper.start()
        assert run_tuning(options, assets=small_assets) == 0
        stopper.join(timeout=5)
    (trial,), report = _trials_and_report(options)
    first, kept = trial.user_attrs[TrialAttr.LOAD_MEASUREMENTS]
    assert first["foreign_cpu"] > 0.2 >= kept["foreign_cpu"], (first, kept)
    assert kept["value"] == trial.value and trial.user_attrs[TrialAttr.FOREIGN_CPU] == kept[
        "foreign_cpu"]
    assert TrialAttr.BUSY_HOST not in trial.user_attrs
    assert report["host"]["load"]["remeasured"] == 1
    # both measurements' windows are the trial's intermediate values (the second's were
    # once dropped as steps already reported, and the pruner judged the busy ones)
    steps = sorted(trial.intermediate_values)
    assert steps == list(range(len(steps)))
    assert 0 < trial.user_attrs[TrialAttr.MEASURED_FROM_STEP] < len(steps)


@pytest.mark.docker
def test_containers_raced_side_by_side_are_the_tuner_s_own_load(small_assets, tmp_path,
                                                                 serving_image) -> None:
    """A racing round starts and removes its containers within its window, so they are in
    no process tree at either end of it; their CPU is the launchers' (stopped_cpu_s), not
    another job's. Counted as foreign, a quiet host's rounds read 33% busy."""
    options = quick_options(tmp_path, trials=2, confirm_budget=20, server="docker",
                            image=serving_image)
    assert run_tuning(options, assets=small_assets) == 0
    _, report = _trials_and_report(options)
    rounds = report["racing"]["loads"]
    assert rounds and statistics.median(load["foreign_cpu"] for load in rounds) < 0.1, rounds
    assert report["host"]["load"]["warning"] is None
