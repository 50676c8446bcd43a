"""One tuner per host: an exclusive lock on a file at a fixed system path.

Two tuners on one host would measure each other's load, so the second one is refused,
whatever user runs it and whatever `$AUTOTUNE_HOME` it uses: the lock lives in the
host's lock folder (`/run/lock`, else the system temp folder), not in the cache.
`$AUTOTUNE_LOCK_FILE` names another file (the test suite keeps its runs apart with it).

`fcntl.flock` is released by the kernel when its holder dies, so a crashed tuner never
leaves a stale lock; the file holds the holder's pid only to name it in the message.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

from autotune.errors import UsageError

LOCK_NAME = "autotune-tuner.lock"
LOCK_FILE_ENV = "AUTOTUNE_LOCK_FILE"
#: the host-wide lock folders, in order of preference (the first writable one is used)
SYSTEM_LOCK_DIRS = (Path("/run/lock"), Path(tempfile.gettempdir()))


def default_lock_path() -> Path:
    """`$AUTOTUNE_LOCK_FILE`, else the host-wide lock file (module docstring)."""
    configured = os.environ.get(LOCK_FILE_ENV)
    if configured:
        return Path(configured)
    for folder in SYSTEM_LOCK_DIRS:
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return folder / LOCK_NAME
    raise UsageError(f"no writable lock folder among {', '.join(map(str, SYSTEM_LOCK_DIRS))}; "
                     f"set ${LOCK_FILE_ENV} to a file every tuner on this host can open")


def _open_shared(path: Path) -> IO[str]:
    """Open (creating) the lock file readable and writable by every user of the host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        os.fchmod(descriptor, 0o666)  # the umask must not lock other users out
    except PermissionError:  # created by another user: already shared
        pass
    return os.fdopen(descriptor, "r+")


class HostLock:
    """Context manager holding the host's tuner lock; raises `UsageError` when taken."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_lock_path()
        self._file: IO[str] | None = None

    def __enter__(self) -> "HostLock":
        try:
            handle = _open_shared(self.path)
        except OSError as error:
            raise UsageError(f"cannot open the host lock {self.path}: {error.strerror}; set "
                             f"${LOCK_FILE_ENV} to a file every tuner on this host can "
                             "open") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
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
