"""One tuner per host: an exclusive lock on a file under $AUTOTUNE_HOME.

Two tuners on one host would measure each other's load, so the second one is refused.
`fcntl.flock` is released by the kernel when its holder dies, so a crashed tuner never
leaves a stale lock; the file holds the holder's pid only to name it in the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from autotune.errors import UsageError
from autotune.paths import autotune_home

LOCK_NAME = "tuner.lock"


def default_lock_path() -> Path:
    return autotune_home() / LOCK_NAME


class HostLock:
    """Context manager holding the host's tuner lock; raises `UsageError` when taken."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_lock_path()
        self._file: IO[str] | None = None

    def __enter__(self) -> "HostLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UsageError(f"another tuner (pid {holder}) is running on this host "
                             f"(lock {self.path}); wait for it, or pass --allow-concurrent "
                             "to run anyway (both will measure each other's load)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.truncate(0)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
