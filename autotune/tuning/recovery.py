"""What a run cleans up after an earlier one that did not end well.

- A trial records the tuner that runs it (user attr `worker` = `<hostname>:<pid>`,
  autotune.host.facts.worker_id). A tuner killed mid-trial (SIGKILL, power loss) leaves that
  trial RUNNING; the next run on the same host marks it FAIL with the reason "tuner
  died" and queues its configuration again (as the fleet's heartbeat does) before it
  starts, once the recorded process is gone (or its pid was reused by a
  process started later).
  Trials of other hosts' tuners are left alone: only their own host can tell whether
  they live (a heartbeat in the storage covers them, see the fleet storage).
- A run interrupted (Ctrl-C, SIGTERM) after some trials completed still writes the
  report of what was completed, and says where.
"""

from __future__ import annotations

import socket
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

import optuna
import psutil
from optuna.trial import TrialState

from autotune.record.schema import TrialAttr

#: the `failure` reason of a trial whose tuner died
TUNER_DIED = "tuner died"
#: a process started this long after the trial cannot be the trial's tuner (pid reuse)
START_SLACK_S = 1.0


def _alive(pid: int, trial_started: datetime | None) -> bool:
    try:
        process = psutil.Process(pid)
        started = process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    if process.status() == psutil.STATUS_ZOMBIE:
        return False
    return trial_started is None or started <= trial_started.timestamp() + START_SLACK_S


def orphaned(trial: optuna.trial.FrozenTrial, hostname: str) -> bool:
    """Whether `trial` is RUNNING for a tuner of `hostname` that is gone."""
    host, _, pid = str(trial.user_attrs.get(TrialAttr.WORKER, "")).rpartition(":")
    return (trial.state == TrialState.RUNNING and host == hostname and pid.isdigit()
            and not _alive(int(pid), trial.datetime_start))


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL ("tuner died") the trials this host's dead tuners left RUNNING; their numbers."""
    from autotune.fleet import fail_and_requeue

    hostname = socket.gethostname()
    # measured again, as a trial failed by the fleet's heartbeat is
    return [trial.number
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if orphaned(trial, hostname)
            and fail_and_requeue(study, trial._trial_id, TUNER_DIED)]


@contextmanager
def report_when_interrupted(study: optuna.Study, report_dir: Path) -> Iterator[None]:
    """On Ctrl-C (or SIGTERM) with completed trials, write their report, then go on stopping."""
    try:
        yield
    except KeyboardInterrupt:
        completed = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if completed:
            from autotune.report import publish_report

            print(f"autotune: interrupted; writing the report of the {completed} completed "
                  f"trial{'s' if completed > 1 else ''}", file=sys.stderr)
            publish_report(study, report_dir, quiet=True)
        raise
