"""The tuner's end of a launcher's watchdog: what the launcher started is removed when
the tuner dies.

Every launcher starts one (`Watchdog`) when it is made, with its scratch folder (so a
tuner killed before the launcher's first server leaves no folder either): a process of
its own (`python -m autotune.launch._watchdog KIND SCRATCH [ARG]`, in its own session,
so a Ctrl-C in the terminal does not reach it) with a pipe on its stdin whose only
writer is the tuner. The launcher writes one line each time what runs changes; the
kernel closes the pipe when the tuner ends, however it ends (SIGKILL included), or when
the launcher is closed, so the watchdog wakes at once, with no polling, removes what
the last line named and the launcher's scratch folder (its servers' logs and batching
files), and exits (autotune.launch._watchdog, the process's side). It belongs to the
tuner, not to the server, so it works whatever the server is: any image, TF Serving's
own `tensorflow_model_server`, the embedded server.

`watched_folder` is the same for a scratch folder that no launcher owns (a check's
LoadGen logs): removed when its block ends, or by its watchdog when the process is
killed inside it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

#: seconds a closed launcher waits for its watchdog to finish looking
WATCHDOG_EXIT_S = 10


class Watchdog:
    """A scratch folder in the temporary directory and the watchdog process that removes
    it, with what runs, once the tuner lets go or dies (module docstring). The process
    starts with the folder, so no folder outlives a tuner killed before its first server."""

    def __init__(self, kind: str, prefix: str, *args: str) -> None:
        """`kind`: what runs (autotune.launch._watchdog.CLEANUPS), with its `args`; `prefix`:
        the start of the folder's name."""
        #: the folder of files for what runs (a launcher's for its servers)
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self._command = [sys.executable, "-m", "autotune.launch._watchdog", kind,
                         str(self.folder), *args]
        self._process: subprocess.Popen[bytes] | None = None
        self.watch()

    def watch(self, running: str = "") -> None:
        """Tell the watchdog (started again if it is not running) what to remove if the
        tuner dies now: `running`, a line of its kind's form ("": nothing runs)."""
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(self._command, stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, start_new_session=True)
        assert self._process.stdin is not None
        self._process.stdin.write(f"{running}\n".encode())
        self._process.stdin.flush()

    def close(self) -> None:
        """Let the watchdog go: it removes what the last line named (nothing, when the
        launcher has stopped its server) and the scratch folder, and exits."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(WATCHDOG_EXIT_S)
        except subprocess.TimeoutExpired:  # a slow engine: it ends once it has looked
            pass


@contextmanager
def watched_folder(prefix: str) -> Iterator[Path]:
    """A new folder in the temporary directory (its name starting with `prefix`), removed
    when the block ends, however it ends, or by its watchdog if the process is killed."""
    watchdog = Watchdog("folder", prefix)
    try:
        yield watchdog.folder
    finally:
        watchdog.close()


def local_line(pid: int) -> str:
    """The `local` line of a server process started in its own session (its group id is
    its pid) that runs now."""
    return f"{pid} {psutil.Process(pid).create_time()!r}"
