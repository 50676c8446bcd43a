"""Tuning as deployed, with real cgroups and a real engine: a tuner inside a 1-CPU quota,
`--cpus 1` on the local and the Docker launcher, right-sizing with `--target-qps`, and
the Kubernetes spec of the answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from autotune.errors import UsageError
from autotune.host.cgroups import SYSTEM, quota_group_of
from autotune.launch.docker import DockerLauncher
from autotune.launch.local import LocalLauncher
from autotune.launch.server_cgroup import ServerCgroup
from autotune.options import PeakPolicy, RunSettings
from autotune.record.schema import TrialAttr
from autotune.tuning.run import run_tuning
from processes import serving_processes

THREADS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")
TESTS = Path(__file__).parents[1]


def _study(options) -> optuna.Study:
    (name,) = optuna.study.get_all_study_names(options.storage)
    return optuna.load_study(study_name=name, storage=options.storage)


def _report(options, study: optuna.Study) -> dict:
    return json.loads((options.report_dir / f"{study.study_name}.json").read_text())


def _k8s(options, study: optuna.Study) -> dict:
    text = (options.report_dir / f"{study.study_name}.k8s.yaml").read_text()
    deployment = next(doc for doc in yaml.safe_load_all(text) if doc["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_a_tuner_inside_a_1_cpu_quota_tunes_for_one_cpu(tmp_path, small_assets, cgroups):
    script = (f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
              "from types import SimpleNamespace\n"
              "from quick import quick_options\n"
              "from autotune.tuning.run import run_tuning\n"
              f"options = quick_options(__import__('pathlib').Path({str(tmp_path)!r}), 'batch', "
              "trials=3, confirm_budget=0)\n"
              f"assets = SimpleNamespace(eval_path={str(small_assets.eval_path)!r}, "
              f"model_dir={str(small_assets.model_dir)!r})\n"
              "sys.exit(run_tuning(options, assets))\n")
    pod = ServerCgroup.create(1.0, None)  # the "pod" the tuner runs in
    try:
        done = subprocess.run(pod.wrap([sys.executable, "-c", script]), capture_output=True,
                              text=True, timeout=600)
    finally:
        pod.remove()
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name=optuna.study.get_all_study_names(
        f"sqlite:///{tmp_path}/studies.db")[0], storage=f"sqlite:///{tmp_path}/studies.db")
    searched = [t for t in study.get_trials(states=(TrialState.COMPLETE,))
                if TrialAttr.BASELINE not in t.user_attrs]
    assert searched and all(t.params[name] == 1 for t in searched for name in THREADS)
    assert all(t.params.get("instances", 1) == 1 for t in searched)
    # the tutorial is sized to the node's cores, as a user in a pod would size it
    tutorial = next(t for t in study.trials if t.user_attrs.get(TrialAttr.BASELINE) == "tutorial")
    assert tutorial.params["omp_num_threads"] == study.user_attrs["host"]["physical_cores"]
    report = json.loads((tmp_path / "reports" / f"{study.study_name}.json").read_text())
    assert report["host"]["cpu_limit"] == 1.0 and report["host"]["cpuset"]
    # the servers ran in the tuner's own (quota'd) group: their throttling was measured
    assert all(TrialAttr.THROTTLED_RATIO in t.user_attrs for t in searched)


class WatchedLocal(LocalLauncher):
    """The local launcher, noting each started server's CPU quota once it is available."""

    quotas: list[float | None] = []

    def wait_until_available(self, deadline_s: float) -> None:
        super().wait_until_available(deadline_s)
        (pid,) = self.server_pids()
        group = quota_group_of(pid)
        self.quotas.append(None if group is None else int(
            (group / ("cpu.max" if SYSTEM.unified else "cpu.cfs_quota_us")).read_text().split()[0])
            / 100_000)


def test_cpus_1_runs_every_local_server_under_a_1_cpu_quota(tuning_options, small_assets,
                                                             cgroups):
    options = tuning_options("batch", cpus=1.0, trials=2, confirm_budget=0)
    WatchedLocal.quotas = []
    factory = lambda kind, model, image, rest: WatchedLocal(model, rest=rest)  # noqa: E731
    assert run_tuning(options, assets=small_assets, launcher_factory=factory) == 0
    assert WatchedLocal.quotas and set(WatchedLocal.quotas) == {1.0}
    study = _study(options)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2 and all(0 <= t.user_attrs[TrialAttr.THROTTLED_RATIO] <= 1
                                    for t in trials)
    report = _report(options, study)
    assert report["host"]["cpu_limit"] == 1.0 and report["limits"]["cpus"] == 1.0
    assert "--cpus=1" in report["best"]["docker_run"]
    container = _k8s(options, study)
    assert container["resources"]["limits"] == container["resources"]["requests"]
    assert container["resources"]["limits"]["cpu"] == "1"
    assert {e["name"]: e["value"] for e in container["env"]} == report["best"]["env"]
    assert not serving_processes()


class WatchedDocker(DockerLauncher):
    """The Docker launcher, noting each started container's NanoCpus."""

    nano_cpus: list[int] = []

    def wait_until_available(self, deadline_s: float) -> None:
        super().wait_until_available(deadline_s)
        self._container.reload()
        self.nano_cpus.append(self._container.attrs["HostConfig"]["NanoCpus"])


@pytest.mark.docker
def test_cpus_1_on_the_docker_launcher(tuning_options, small_assets, serving_image):
    options = tuning_options("batch", server="docker", image=serving_image, cpus=1.0, trials=1,
                             confirm_budget=0)
    WatchedDocker.nano_cpus = []
    factory = lambda kind, model, image, rest: WatchedDocker(  # noqa: E731
        model, image=image, rest=rest)
    assert run_tuning(options, assets=small_assets, launcher_factory=factory) == 0
    assert WatchedDocker.nano_cpus == [10**9]
    (trial,) = _study(options).get_trials(states=(TrialState.COMPLETE,))
    assert 0 <= trial.user_attrs[TrialAttr.THROTTLED_RATIO] <= 1
    assert "--cpus=1" in _report(options, _study(options))["best"]["docker_run"]


def test_target_qps_finds_that_a_smaller_limit_holds_a_low_rate(tuning_options, small_assets,
                                                                cgroups):
    options = tuning_options(
        "server", target_qps=20.0, p99_ms=250.0, trials=2, study_name="sized",
        loadgen_run=RunSettings(min_duration_s=0.5, min_queries=500, max_duration_s=3.0),
        peak_policy=PeakPolicy(start_qps=40, min_qps=20, precision=0.5, max_runs=2))
    study = optuna.create_study(storage=options.storage, study_name="sized",
                                direction="maximize")
    study.enqueue_trial({**dict.fromkeys(THREADS, 1), "cpus": 0.5, "enable_batching": False,
                         "instances": 1})
    assert run_tuning(options, assets=small_assets) == 0
    study = optuna.load_study(study_name="sized", storage=options.storage)
    cpus = sorted(t.params["cpus"] for t in study.get_trials(states=(TrialState.COMPLETE,)))
    assert cpus[0] == 0.5 and cpus[-1] > 0.5  # the half CPU, and the tutorial's whole host
    report = _report(options, study)
    sizing = report["right_sizing"]
    assert sizing["target_qps"] == 20.0 and sizing["cpus"] == 0.5
    assert [row["cpus"] for row in sizing["limits"]] == sorted(set(cpus))
    assert report["best"]["params"]["cpus"] == 0.5 and "--cpus=0.5" in report["best"]["docker_run"]
    assert _k8s(options, study)["resources"]["limits"]["cpu"] == "500m"
    assert "## Right-sizing" in (options.report_dir / "sized.md").read_text()


def test_limits_no_run_can_use_stop_it_before_any_trial(tuning_options, small_assets):
    for overrides, words in (({"mode": "online", "target_qps": 10.0}, "use --mode server"),
                             ({"mode": "batch", "cpus": 4096.0}, "--cpus 4096 is more"),
                             ({"mode": "batch", "cpuset_cpus": "0-x"}, "not a CPU list"),
                             ({"mode": "batch", "cpuset_cpus": "4000"}, "may not use")):
        options = tuning_options(**overrides)
        with pytest.raises(UsageError, match=words):
            run_tuning(options, assets=small_assets)
        assert not list(options.report_dir.glob("*.json"))
