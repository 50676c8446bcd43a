"""Faults injected into a running tuner's server, once it is measuring.

`WhenMeasuring` watches for the server of a tuner (a process for the local launcher, a
container for the Docker one) and acts on it (pause, kill) once the server has answered
requests for a moment: CPU time counted from its first client connection, because the
server listens only after its model is loaded.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

import docker
import psutil

from autotune.launch.docker import OWNER, OWNER_LABEL, PID_LABEL

from .leftovers import serving_processes_of

#: server CPU seconds after its first connection that show requests being answered
BUSY_CPU_S = 0.3


@dataclass(frozen=True)
class Server:
    """A tuner's running server: its host pid and what a fault does to it."""

    pid: int
    pause: Callable[[], None]
    kill: Callable[[], None]


def local_server(tuner_pid: int) -> Server | None:
    servers = serving_processes_of(tuner_pid)
    if not servers:
        return None
    pid = servers[0].pid
    return Server(pid, lambda: os.kill(pid, signal.SIGSTOP), lambda: os.kill(pid, signal.SIGKILL))


def container(tuner_pid: int) -> Server | None:
    running = docker.from_env().containers.list(filters={
        "label": [f"{OWNER_LABEL}={OWNER}", f"{PID_LABEL}={tuner_pid}"], "status": "running"})
    if not running:
        return None
    found = running[0]
    return Server(found.attrs["State"]["Pid"], found.pause, found.kill)


class WhenMeasuring(threading.Thread):
    """Calls `act(server)` once the server `find()` returns is measuring; `acted_at` then."""

    def __init__(self, find: Callable[[], Server | None], act: Callable[[Server], None]) -> None:
        super().__init__(daemon=True)
        self._find, self._act = find, act
        self.acted_at: float | None = None
        self._done = threading.Event()

    def run(self) -> None:
        baseline: float | None = None
        while not self._done.wait(0.1):
            server = self._find()
            if server is None:
                continue
            try:
                process = psutil.Process(server.pid)
                connected = any(c.status == psutil.CONN_ESTABLISHED
                                for c in process.net_connections(kind="inet"))
                times = process.cpu_times()
            except psutil.Error:
                continue
            if baseline is None and not connected:
                continue
            busy = times.user + times.system
            baseline = busy if baseline is None else baseline
            if busy - baseline >= BUSY_CPU_S:
                try:
                    self._act(server)
                except docker.errors.APIError:  # the engine's freezer can fail under load
                    continue  # ("unable to freeze"): try again on the next look
                self.acted_at = time.time()
                return

    def wait_acted(self, timeout_s: float) -> float:
        """When the fault was injected; AssertionError if it was not within `timeout_s`."""
        self.join(timeout_s)
        assert self.acted_at is not None, "the server was never seen measuring"
        return self.acted_at

    def cancel(self) -> None:
        self._done.set()
