"""What a test may leave behind: nothing. The model servers and containers of a tuner, found."""

from __future__ import annotations

import time

import docker
import psutil

from autotune.launch.docker import OWNER, OWNER_LABEL, PID_LABEL

#: the variables a server's environment names its tuner by: the one the local launcher
#: sets, and the one `tf_serving_binary`'s stand-in keeps it in (having dropped the first)
TUNER_PID_VARIABLES = ("AUTOTUNE_SERVING_PARENT_PID", "AUTOTUNE_TEST_TUNER_PID")


def serving_processes_of(pid: int) -> list[psutil.Process]:
    """Live model server processes started by process `pid` (itself dead or alive)."""
    alive = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            command = " ".join(process.info["cmdline"] or [])
            environ = process.info["environ"] or {}
        except psutil.Error:
            continue
        if "autotune.serving" in command \
                and str(pid) in (environ.get(name) for name in TUNER_PID_VARIABLES) \
                and process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            alive.append(process)
    return alive


def containers_of(pid: int) -> list[str]:
    """Names of the containers (running or not) a tuner of pid `pid` started.

    `ignore_removed`: the SDK lists, then inspects each container; one a watchdog removes
    in between is gone, not an error (without it this raced the removal it waits for)."""
    client = docker.from_env()
    found = client.containers.list(all=True, ignore_removed=True, filters={
        "label": [f"{OWNER_LABEL}={OWNER}", f"{PID_LABEL}={pid}"]})
    return [container.name for container in found]


def wait_until(condition, timeout_s: float, interval_s: float = 0.2) -> float:
    """Seconds until `condition()` held; AssertionError after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            what = condition.__doc__ or condition
            raise AssertionError(f"still not true after {timeout_s}s: {what}")
        time.sleep(interval_s)
    return time.monotonic() - started
