"""The watchdog process (`python -m autotune.launch._watchdog KIND SCRATCH [ARG]`): it
reads the lines its launcher writes (autotune.launch.watchdog) until the tuner's end of
the pipe closes, then removes what the last line named, and the launcher's SCRATCH
folder once nothing runs that writes there, and exits.

- `docker LAUNCHER_ID`: removes every container labelled with that launcher's id (none
  is left when the launcher stopped them itself; another launcher's are never touched).
- `local`: the last line is `PGID CREATED` (the server's process group and its leader's
  start time) or empty (stopped); the group is killed, unless its id now belongs to a
  process started at another time (the id was reused, the server is long gone).
- `folder`: nothing runs; only SCRATCH is removed (autotune.launch.watchdog.watched_folder).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from typing import Callable

import psutil


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


def _nothing_runs(last_line: str) -> None:
    """A watched folder's watchdog: no line names anything that runs."""


#: what each kind removes at EOF: (its arguments, the last line written)
CLEANUPS: dict[str, Callable[..., None]] = {
    "docker": _remove_containers,
    "local": _kill_group,
    "folder": _nothing_runs,
}


def main(argv: list[str]) -> int:
    kind, scratch, *args = argv
    last_line = ""
    for line in sys.stdin:  # ends at EOF: the tuner has ended, or closed the launcher
        last_line = line.strip()
    CLEANUPS[kind](*args, last_line)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
