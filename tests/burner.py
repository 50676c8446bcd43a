"""A CPU-burning process outside the test's process tree: the "other job" of a busy host.

It is started through a shell that exits at once, so it is not a descendant of the test
process (which plays the tuner) and autotune must count its CPU as foreign. It is pinned
to one CPU, bounded in time by its own deadline, and stops early when asked (a stop file
appears); `cpu_burner` always stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil

#: the burner: pinned to one CPU, spinning until its deadline or its stop file
_SPIN = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
stop, end = sys.argv[2], time.monotonic() + float(sys.argv[3])
while time.monotonic() < end and not os.path.exists(stop):
    for _ in range(100_000):
        pass
"""


class Burner:
    """A running burner: its pid, and `stop()` to end it (waits until it has)."""

    def __init__(self, pid: int, stop_file: Path) -> None:
        self.pid = pid
        self.stop_file = stop_file

    def stop(self) -> None:
        self.stop_file.touch()
        try:
            psutil.Process(self.pid).wait(timeout=10)
        except psutil.TimeoutExpired:
            psutil.Process(self.pid).kill()
        except psutil.NoSuchProcess:
            pass


@contextmanager
def cpu_burner(cpu: int, seconds: float = 180.0) -> Iterator[Burner]:
    """Burn `cpu` from a detached process for at most `seconds`, until the context ends
    (or `Burner.stop()`)."""
    with tempfile.TemporaryDirectory(prefix="burner-") as folder:
        stop_file = Path(folder) / "stop"
        started = subprocess.run(
            ["sh", "-c", '"$0" -c "$1" "$2" "$3" "$4" >/dev/null 2>&1 & echo $!',
             sys.executable, _SPIN, str(cpu), str(stop_file), str(seconds)],
            check=True, capture_output=True, text=True)
        burner = Burner(int(started.stdout.strip()), stop_file)
        assert psutil.Process(burner.pid).ppid() != os.getpid(), "the burner must be detached"
        try:
            yield burner
        finally:
            burner.stop()
