"""A launcher's watchdog: what the launcher started is removed when the tuner dies.

Every launcher starts one (`Watchdog`) before its first server: a process of its own
(`python -m autotune.launch._watchdog KIND [ARG]`, in its own session, so a Ctrl-C in
the terminal does not reach it) with a pipe on its stdin whose only writer is the
tuner. The launcher writes one line each time what runs changes; the kernel closes the
pipe when the tuner ends, however it ends (SIGKILL included), or when the launcher is
closed, so the watchdog wakes at once, with no polling, removes what the last line
named and exits. It belongs to the tuner, not to the server, so it works whatever the
server is: any image, TF Serving's own `tensorflow_model_server`, the embedded server.

- `docker LAUNCHER_ID`: removes every container labelled with that launcher's id (none
  is left when the launcher stopped them itself; another launcher's are never touched).
- `local`: the last line is `PGID CREATED` (the server's process group and its leader's
  start time) or empty (stopped); the group is killed, unless its id now belongs to a
  process started at another time (the id was reused, the server is long gone).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Callable

import psutil

#: seconds a closed launcher waits for its watchdog to finish looking
WATCHDOG_EXIT_S = 10


class Watchdog:
    """The tuner's end of one launcher's watchdog process (module docstring)."""

    def __init__(self, kind: str, *args: str) -> None:
        self._command = [sys.executable, "-m", "autotune.launch._watchdog", kind, *args]
        self._process: subprocess.Popen[bytes] | None = None

    def watch(self, running: str = "") -> None:
        """Tell the watchdog (started if it is not running) what to remove if the tuner
        dies now: `running`, a line of its kind's form."""
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(self._command, stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, start_new_session=True)
        assert self._process.stdin is not None
        self._process.stdin.write(f"{running}\n".encode())
        self._process.stdin.flush()

    def close(self) -> None:
        """Let the watchdog go: it removes what the last line named (nothing, when the
        launcher has stopped its server) and exits."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(WATCHDOG_EXIT_S)
        except subprocess.TimeoutExpired:  # a slow engine: it ends once it has looked
            pass


def local_line(pid: int) -> str:
    """The `local` line of a server process started in its own session (its group id is
    its pid) that runs now."""
    return f"{pid} {psutil.Process(pid).create_time()!r}"


def _remove_containers(launcher_id: str, last_line: str) -> None:
    from autotune.launch.docker import (
        LAUNCHER_LABEL,
        OWNER,
        OWNER_LABEL,
        connect,
        remove_labelled,
    )

    remove_labelled(connect(), {OWNER_LABEL: OWNER, LAUNCHER_LABEL: launcher_id})


def _kill_group(last_line: str) -> None:
    if not last_line:
        return
    group, created = last_line.split()
    try:
        reused = psutil.Process(int(group)).create_time() != float(created)
    except psutil.NoSuchProcess:  # the leader is gone; members may not be, and the id
        reused = False  # of a group that still has members is never given out again
    if not reused:
        try:
            os.killpg(int(group), signal.SIGKILL)
        except ProcessLookupError:
            pass


#: what each kind removes at EOF: (its arguments, the last line written)
CLEANUPS: dict[str, Callable[..., None]] = {
    "docker": _remove_containers,
    "local": _kill_group,
}


def main(argv: list[str]) -> int:
    kind, *args = argv
    last_line = ""
    for line in sys.stdin:  # ends at EOF: the tuner has ended, or closed the launcher
        last_line = line.strip()
    CLEANUPS[kind](*args, last_line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
