"""Fleet benchmark: one budget with one worker and with two, and a run where a worker dies.

    python bench/fleet.py                       # the default budget (the whole default grid)
    python bench/fleet.py --tiny                # a check that it runs: batch, small requests
    python bench/fleet.py --storage postgresql://user:pw@host/db   # an existing server

Every worker is a real `autotune --mode ...` process (local launcher, `--allow-concurrent`)
against one PostgreSQL study; without `--storage` a throwaway cluster is started (the
tests' tests/postgres.py) and removed afterwards. Each measurement uses its own study.

1. Wall time of the same budget with 1 worker and with 2 workers (side by side on this
   host: they share its cores, so this shows the coordination's overhead and the gain
   left on this host; on two hosts each worker would have its own cores).
2. Kill: 2 workers on the whole grid (no `--trials`: every configuration is queued, so
   each should be measured exactly once), one SIGKILLed while its server is measuring;
   the other finishes the grid. Counted: configurations lost (claimed but never
   measured: goal 0) and configurations measured twice (goal 0), with the trials the
   heartbeat failed. (With `--trials` below the grid's size, TPE may propose a measured
   configuration again: that is the sampler's choice, not a lost or duplicated trial.)

Markdown tables go to stdout (for BENCHMARKS.md), progress to stderr.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import optuna
import psutil
from optuna.trial import TrialState

from autotune.modes import MODES, ONLINE
from autotune.record.schema import TrialAttr, params_key, planned_params

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from postgres import throwaway_cluster  # noqa: E402 (the tests' throwaway cluster)

TINY = ["--mode", "batch", "--batch-size", "2000", "--iterations", "5", "--accuracy-users", "100"]
#: the budget of the wall-time runs with --tiny (the kill run always takes the whole grid)
TINY_TRIALS = ["--trials", "3"]
COMMON = ["--server", "local", "--confirm-budget", "0", "--allow-concurrent", "--quiet",
          "--heartbeat-interval", "2", "--grace-period", "10"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _worker(storage: str, study: str, flags: list[str], reports: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autotune", *flags, *COMMON,
                             "--storage", storage, "--study-name", study,
                             "--report-dir", str(reports)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _wait(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        _, err = worker.communicate()
        if worker.returncode not in (0, -signal.SIGKILL):
            raise SystemExit(f"a worker failed ({worker.returncode}): {err.strip()[-500:]}")


def _measuring(pid: int) -> bool:
    """Whether the worker's model server is answering requests right now."""
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "autotune.serving" in " ".join(child.cmdline()) and any(
                    c.status == psutil.CONN_ESTABLISHED for c in child.net_connections("tcp")):
                return True
    return False


def wall_time(storage: str, flags: list[str], workers: int, reports: Path) -> dict:
    """Run one budget with `workers` workers on a fresh study; its wall time and trials."""
    study_name = f"bench-{workers}-workers-{os.getpid()}"
    began = time.monotonic()
    _wait([_worker(storage, study_name, flags, reports) for _ in range(workers)])
    seconds = time.monotonic() - began
    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials()
    per_worker = collections.Counter(t.user_attrs.get(TrialAttr.WORKER) for t in trials
                                     if t.state == TrialState.COMPLETE)
    return {"workers": workers, "seconds": seconds, "complete": sum(per_worker.values()),
            "per_worker": sorted(per_worker.values(), reverse=True)}


def killed_worker(storage: str, flags: list[str], reports: Path) -> dict:
    """Two workers; one is SIGKILLed mid-measurement. Configurations lost and duplicated."""
    study_name = f"bench-kill-{os.getpid()}"
    doomed = _worker(storage, study_name, flags, reports)
    survivor = _worker(storage, study_name, flags, reports)
    deadline = time.monotonic() + 600
    while not _measuring(doomed.pid):
        if time.monotonic() > deadline or doomed.poll() is not None:
            raise SystemExit("the worker to kill never measured")
        time.sleep(0.2)
    doomed.send_signal(signal.SIGKILL)
    log(f"killed worker pid {doomed.pid} while measuring")
    _wait([doomed, survivor])
    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials()
    key = lambda trial: params_key(planned_params(trial))  # noqa: E731
    measured = collections.Counter(key(t) for t in trials if t.state == TrialState.COMPLETE)
    claimed = {key(t) for t in trials if t.state != TrialState.WAITING and key(t)}
    failed = [t for t in trials if t.state == TrialState.FAIL]
    return {"trials": len(trials), "complete": sum(measured.values()),
            "heartbeat_failed": len(failed),
            "lost": len([config for config in claimed if config not in measured]),
            "duplicated": sum(count - 1 for count in measured.values() if count > 1),
            "left_running": sum(t.state == TrialState.RUNNING for t in trials)}


def print_wall_times(storage: str, flags: list[str], reports: Path) -> None:
    """The budget with one worker, then with two, as a Markdown table."""
    rows = []
    for workers in (1, 2):
        log(f"budget with {workers} worker(s)")
        rows.append(wall_time(storage, flags, workers, reports))
    print("| workers | wall time (s) | trials measured | per worker |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['workers']} | {row['seconds']:.1f} | {row['complete']} | "
              f"{', '.join(map(str, row['per_worker']))} |")
    print(f"\nTwo workers / one worker: {rows[1]['seconds'] / rows[0]['seconds']:.2f} of the "
          "wall time.\n")


@contextlib.contextmanager
def _storage(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with throwaway_cluster() as server:
        yield server.url()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=None,
                        help="PostgreSQL URL (default: a throwaway cluster)")
    parser.add_argument("--tiny", action="store_true",
                        help="batch mode, small requests, 3-trial budget: a check that it runs")
    parser.add_argument("--mode", default=ONLINE.name, choices=tuple(MODES))
    parser.add_argument("--kill-only", action="store_true", help="only the killed-worker run")
    args = parser.parse_args()
    flags = TINY if args.tiny else ["--mode", args.mode]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"# Fleet benchmark{' (--tiny)' if args.tiny else ''}\n")
    print(f"- command: `python bench/fleet.py {' '.join(sys.argv[1:])}`".rstrip())
    print(f"- date: {datetime.date.today().isoformat()}, {os.cpu_count()} logical CPUs\n")
    with _storage(args.storage) as storage, tempfile.TemporaryDirectory() as reports:
        if not args.kill_only:
            print_wall_times(storage, flags + (TINY_TRIALS if args.tiny else []), Path(reports))
        log("two workers, one killed mid-trial")
        kill = killed_worker(storage, flags, Path(reports))
        print("| trials | measured | failed by the heartbeat | configurations lost | "
              "measured twice | left RUNNING |\n|---|---|---|---|---|---|")
        print(f"| {kill['trials']} | {kill['complete']} | {kill['heartbeat_failed']} | "
              f"{kill['lost']} | {kill['duplicated']} | {kill['left_running']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
