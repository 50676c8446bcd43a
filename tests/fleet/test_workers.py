"""Several workers on one study on a real PostgreSQL server, each a real tuner process.

Every worker serves the small model through the local launcher. Heartbeats are short
(`--heartbeat-interval 1 --grace-period 3`) so a dead worker is noticed within seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from autotune.host.facts import detect_host
from autotune.modes import BATCH
from autotune.search.space import build_space
from ci import unavailable
from processes import wait_for_answering_server

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")]

DRIVER = Path(__file__).with_name("worker_driver.py")
QUICK = ["--mode", "batch", "--server", "local", "--batch-size", "2000", "--iterations", "5",
         "--accuracy-users", "100", "--confirm-budget", "0", "--allow-concurrent", "--quiet",
         "--heartbeat-interval", "1", "--grace-period", "3"]


def _worker(small_assets, storage: str, tmp_path: Path, *flags: str,
            host: str | None = None) -> subprocess.Popen:
    """A worker process; with `host`, as that host: in a UTS namespace of its own whose
    hostname is `host` (what a worker on another machine would record)."""
    as_host = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$0" "$@"'] if host else []
    return subprocess.Popen(
        [*as_host, sys.executable, str(DRIVER), str(small_assets.eval_path),
         str(small_assets.model_dir), *QUICK, "--storage", storage,
         "--report-dir", str(tmp_path / "reports"), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(worker: subprocess.Popen, timeout_s: float = 600) -> subprocess.CompletedProcess:
    out, err = worker.communicate(timeout=timeout_s)
    return subprocess.CompletedProcess(worker.args, worker.returncode, out, err)


def _only_study(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def _key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


def test_two_workers_measure_the_grid_once_between_them(postgres_url, small_assets, tmp_path):
    workers = [_worker(small_assets, postgres_url, tmp_path) for _ in range(2)]
    results = [_finish(worker) for worker in workers]
    assert all(result.returncode == 0 for result in results), [r.stderr[-2000:] for r in results]

    study = _only_study(postgres_url)
    trials = study.get_trials()
    # measured to the end, or pruned as too slow to be raced: never failed or skipped
    assert all(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in trials), \
        [t.state for t in trials]
    space = build_space(detect_host(), instances=BATCH.searches_instances)
    grid = {_key(params) for params in space.configurations()}
    measured = [_key(trial.params) for trial in trials]
    assert sorted(measured) == sorted(grid)  # every configuration, each exactly once
    assert len({trial.number for trial in trials}) == len(trials)
    pids = {str(worker.pid) for worker in workers}
    assert {trial.user_attrs["worker"].rsplit(":", 1)[1] for trial in trials} == pids
    assert study.user_attrs["host_class"]["digest"] in study.study_name

    fleet = subprocess.run([sys.executable, "-m", "autotune", "report", "--fleet", "--storage",
                            postgres_url], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "COLUMNS": "250"})
    assert fleet.returncode == 0, fleet.stderr
    (row,) = [line for line in fleet.stdout.splitlines() if study.study_name in line]
    cells = [cell.strip() for cell in row.split("│")]
    complete = sum(trial.state == TrialState.COMPLETE for trial in trials)
    assert cells[2] == f"1: {socket.gethostname()}" and cells[-3:-1] == [str(complete), "0"]
    assert "x" in cells[5] and postgres_url.split("@")[0] not in fleet.stdout


def test_a_killed_workers_trial_fails_and_is_measured_again(postgres_url, small_assets, tmp_path):
    doomed = _worker(small_assets, postgres_url, tmp_path, "--trials", "3")
    wait_for_answering_server(psutil.Process(doomed.pid), timeout_s=180)
    survivor = _worker(small_assets, postgres_url, tmp_path, "--trials", "3")
    servers = [child for child in psutil.Process(doomed.pid).children(recursive=True)]
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(30)
    result = _finish(survivor)
    assert result.returncode == 0, result.stderr[-2000:]
    psutil.wait_procs(servers, timeout=30)  # the local server stops itself when its tuner dies

    study = _only_study(postgres_url)
    (dead,) = study.get_trials(states=(TrialState.FAIL,))
    assert dead.user_attrs["worker"].endswith(f":{doomed.pid}")
    retries = [t for t in study.trials if dead.number in t.system_attrs.get("retry_history", [])]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert retries[0].params == dead.params  # the same configuration, measured by the survivor
    assert retries[0].user_attrs["worker"].endswith(f":{survivor.pid}")
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3 and not study.get_trials(states=(TrialState.RUNNING,))


def test_a_worker_of_another_class_is_refused(postgres_url, small_assets, tmp_path):
    first = _finish(_worker(small_assets, postgres_url, tmp_path, "--trials", "1",
                            "--host-class", "rack-a", "--study-name", "shared"))
    assert first.returncode == 0, first.stderr[-2000:]
    before = optuna.load_study(study_name="shared", storage=postgres_url).trials
    started = time.monotonic()
    other = _finish(_worker(small_assets, postgres_url, tmp_path, "--trials", "1",
                            "--host-class", "rack-b", "--study-name", "shared"))
    assert other.returncode == 2 and time.monotonic() - started < 120
    (line,) = other.stderr.strip().splitlines()
    assert "host_class 'rack-b' (study: 'rack-a')" in line and "Traceback" not in other.stderr
    assert optuna.load_study(study_name="shared", storage=postgres_url).trials == before


def _require_namespaces() -> None:
    """Two hosts on one machine need UTS namespaces (root and util-linux's unshare)."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return
    reason = "two hostnames on one machine need root and unshare (UTS namespaces)"
    unavailable("root and util-linux", reason)


def test_each_host_races_the_finalists_and_the_report_pools_the_hosts(postgres_url, small_assets,
                                                                        tmp_path):
    _require_namespaces()
    racing = ["--trials", "4", "--confirm-budget", "20", "--confirm-top", "1"]
    workers = [_worker(small_assets, postgres_url, tmp_path, *racing, host=name)
               for name in ("fleet-a", "fleet-b")]
    results = [_finish(worker) for worker in workers]
    assert all(result.returncode == 0 for result in results), [r.stderr[-2000:] for r in results]

    study = _only_study(postgres_url)
    races = sorted(key for key in study.user_attrs if key.startswith("racing:"))
    assert [key.split(":")[1] for key in races] == ["fleet-a", "fleet-b"]
    report_dir = tmp_path / "pooled"
    report = subprocess.run([sys.executable, "-m", "autotune", "report", "--storage", postgres_url,
                             "--study-name", study.study_name, "--report-dir", str(report_dir)],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    data = json.loads((report_dir / f"{study.study_name}.json").read_text())
    own_rounds = [study.user_attrs[key]["rounds"] for key in races]
    assert data["racing"]["hosts"] == ["fleet-a", "fleet-b"]
    assert data["racing"]["rounds"] == sum(own_rounds) and min(own_rounds) >= 1
    markdown = (report_dir / f"{study.study_name}.md").read_text()
    assert "Pooled from 2 hosts (2 workers: fleet-a:" in markdown
