"""Batch studies that run several pinned server instances per trial, with real servers:
the local launcher and the Docker one, and the memory limit as a constraint.

While a study runs, a watcher samples the live servers' CPU affinity (processes) or
cpusets (containers), so the pinning is checked on the servers themselves, not on what
the tuner says it asked for."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Callable

import docker
import optuna
import psutil
import pytest
from optuna.trial import TrialState

from autotune.errors import NoFeasibleTrialError
from autotune.host.facts import detect_host
from autotune.launch.docker import PID_LABEL
from autotune.tuning.run import run_tuning
from processes import serving_processes

pytestmark = pytest.mark.skipif(detect_host().physical_cores < 2,
                                reason="two instances need two physical cores")
#: with one thread per setting the grid is 1 and 2 instances, so it is enqueued whole:
#: the tutorial and the image defaults (both 1, 1, 1 on one instance), then two instances
SMALL_GRID = dict(max_threads=1, trials=3)


class Watcher:
    """Samples `read()` every 0.2 s in a thread; keeps the distinct samples seen."""

    def __init__(self, read: Callable[[], frozenset]) -> None:
        self.read = read
        self.seen: set[frozenset] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.seen.add(self.read())
            except (psutil.Error, docker.errors.NotFound):
                pass  # a server ended while it was read
            time.sleep(0.2)

    def __enter__(self) -> "Watcher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def pinned_apart(self) -> bool:
        """Whether two servers once ran side by side, each on its own single core."""
        return any(len(sample) == 2 and all(len(cpus) == 1 for cpus in sample)
                   and len(frozenset().union(*sample)) == 2 for sample in self.seen)


def _process_affinities() -> frozenset:
    return frozenset(frozenset(process.cpu_affinity()) for process in serving_processes())


def _container_cpusets() -> frozenset:
    containers = docker.from_env().containers.list(filters={"label": f"{PID_LABEL}={os.getpid()}"})
    return frozenset(frozenset(int(cpu) for cpu in c.attrs["HostConfig"]["CpusetCpus"].split(","))
                     for c in containers if c.attrs["HostConfig"]["CpusetCpus"])


def _check_multi_instance_trials(options) -> dict:
    (name,) = optuna.study.get_all_study_names(options.storage)
    study = optuna.load_study(study_name=name, storage=options.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == SMALL_GRID["trials"]
    multi = [t for t in trials if t.params.get("instances") == 2]
    assert len(multi) == 1, "the grid's one multi-instance configuration"
    for trial in multi:
        assert len(set(trial.user_attrs["cpusets"])) == 2
        assert trial.value > 0 and trial.user_attrs["throughput_sps"] == trial.value
    assert all(t.user_attrs["rss_mb"] > 0 for t in trials)
    assert min(t.user_attrs["rss_mb"] for t in multi) > min(
        t.user_attrs["rss_mb"] for t in trials if t.params["instances"] == 1)
    report = json.loads((options.report_dir / f"{name}.json").read_text())
    assert report["single_instance"]["params"]["instances"] == 1
    return report


def test_local_batch_study_runs_two_pinned_instances(tuning_options, small_assets):
    # raced: the gain over one instance is a paired ratio of side-by-side measurements.
    # The grid holds two distinct configurations (the baselines share theirs); racing the
    # top two makes both finalists whichever the noisy search ranked first.
    options = tuning_options("batch", confirm_budget=60, confirm_top=2, **SMALL_GRID)
    with Watcher(_process_affinities) as watcher:
        assert run_tuning(options, assets=small_assets) == 0
    assert watcher.pinned_apart(), f"never saw two servers on one core each: {watcher.seen}"
    report = _check_multi_instance_trials(options)
    finalists = report["racing"]["finalists"]
    assert {f["params"]["instances"] for f in finalists} == {1, 2}
    (single,) = [f for f in finalists if "best single instance" in f["baselines"]]
    assert single["params"] == report["single_instance"]["params"]
    assert report["single_instance"]["source"] == "racing"
    gain = report["single_instance"]["speedup_of_best"]
    assert gain.get("is_recommended") or set(gain) == {"ratio", "ci95", "significant"}
    assert not serving_processes()


@pytest.mark.docker
def test_docker_batch_study_runs_two_pinned_containers(tuning_options, small_assets,
                                                       serving_image):
    options = tuning_options("batch", server="docker", image=serving_image, confirm_budget=0,
                             **SMALL_GRID)
    with Watcher(_container_cpusets) as watcher:
        assert run_tuning(options, assets=small_assets) == 0
    assert watcher.pinned_apart(), f"never saw two containers on one core each: {watcher.seen}"
    report = _check_multi_instance_trials(options)
    assert report["single_instance"]["speedup_of_best"]["ratio"] >= 1.0  # unraced: search values
    if report["best"]["instances"] == 2:
        assert report["best"]["docker_run"].count("--cpuset-cpus=") == 2
    assert docker.from_env().containers.list(
        all=True, filters={"label": f"{PID_LABEL}={os.getpid()}"}) == []


def test_a_memory_limit_below_one_instance_makes_every_trial_infeasible(tuning_options,
                                                                         small_assets):
    options = tuning_options("batch", max_memory_mb=1, confirm_budget=0, **SMALL_GRID)
    with pytest.raises(NoFeasibleTrialError) as raised:
        run_tuning(options, assets=small_assets)
    assert raised.value.exit_code == 3
    assert "3 above --max-memory-mb 1 (the smallest used" in str(raised.value)
    (name,) = optuna.study.get_all_study_names(options.storage)
    for trial in optuna.load_study(study_name=name, storage=options.storage).trials:
        assert trial.constraints["memory"] > 0
        assert "--max-memory-mb 1" in trial.user_attrs["infeasible"]
    assert not serving_processes()
