"""Tuning a fleet: hosts of one class share one study on a shared storage (PostgreSQL).

    host_class   what decides the answer -> the class, its default study name, the check
                 that refuses a worker of another class
    workers      the planning lock, the class's shared budget, heartbeats and the
                 re-queueing of a dead worker's configuration
    summary      `autotune report --fleet`: one row per host class in the storage
"""

from autotune.fleet.host_class import (
                                       HostClass,
                                       check_host_class,
                                       hardware_parts,
                                       make_host_class,
                                       model_fingerprint,
                                       server_build,
)
from autotune.fleet.workers import (
                                       WORKER_SILENT,
                                       Coordinator,
                                       Heartbeat,
                                       SharedBudget,
                                       fail_and_requeue,
                                       fail_stale_trials,
                                       open_budget,
                                       study_lock,
)

__all__ = ["WORKER_SILENT", "Coordinator", "Heartbeat", "HostClass", "SharedBudget",
           "check_host_class", "fail_and_requeue", "fail_stale_trials", "hardware_parts",
           "make_host_class", "model_fingerprint", "open_budget", "server_build", "study_lock"]
