"""The launcher tests use the tiny models and the Docker gate of the server tests."""

from __future__ import annotations

import os
import signal
import threading
from typing import Iterator

import pytest

from serving.fixtures import serving_image, tiny_model  # noqa: F401 (fixtures)


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
