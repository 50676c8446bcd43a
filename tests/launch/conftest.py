"""Launcher-test fixtures: a real Ctrl-C (the tiny models and the Docker gate come from
serving/fixtures.py, registered in tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Iterator

import pytest


@pytest.fixture
def ctrl_c_after() -> Iterator:
    """`ctrl_c_after(seconds)`: a real SIGINT to this process, as a Ctrl-C would send."""
    timers: list[threading.Timer] = []

    def arm(seconds: float) -> None:
        timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
        timers.append(timer)
        timer.start()

    yield arm
    for timer in timers:
        timer.cancel()
