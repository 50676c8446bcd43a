"""One tuner per host, and the file lock every lock of autotune's is made of.

Two tuners on one host would measure each other's load, so the second one is refused,
whatever user runs it and whatever `$AUTOTUNE_HOME` it uses: the lock lives in the
host's lock folder (`/run/lock`, else the system temp folder), not in the cache.
`$AUTOTUNE_LOCK_FILE` names another file (the test suite keeps its runs apart with it).

`fcntl.flock` is released by the kernel when its holder dies, so a crashed tuner never
leaves a stale lock; the file holds the holder's pid only to name it in the message.

The lock folder is writable by every user (mode 1777), so its files are opened
defensively (`lock_file`): never through a symlink (`O_NOFOLLOW`), only a regular file
with one link, and shared with other users (mode 0666) only when this process created
it. A file someone else created is locked but never written: the pid is written only
into a file the tuner's own user owns.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Iterator

from autotune.errors import UsageError

LOCK_NAME = "autotune-tuner.lock"
LOCK_FILE_ENV = "AUTOTUNE_LOCK_FILE"
#: the host-wide lock folders, in order of preference (the first writable one is used)
SYSTEM_LOCK_DIRS = (Path("/run/lock"), Path(tempfile.gettempdir()))
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


class LockHeld(Exception):
    """The lock is held by another process; `holder` is what that holder wrote in it."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


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


def _open(path: Path) -> tuple[int, bool]:
    """A descriptor of the lock file at `path`, and whether this process may write it (it
    created the file, or its user owns it). `OSError` when it cannot be opened safely."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o666)
    except FileExistsError:
        pass
    else:
        os.fchmod(descriptor, 0o666)  # ours: the umask must not lock other users out
        return descriptor, True
    try:
        descriptor = os.open(path, os.O_RDWR | _OPEN_FLAGS)
    except PermissionError:  # another user's file that is not shared: locking needs no write
        descriptor = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(descriptor)
        raise OSError(errno.EPERM, "not a regular file of its own (a link?)")
    return descriptor, info.st_uid == os.geteuid()


@contextmanager
def lock_file(path: Path, *, wait: bool = True) -> Iterator[IO[str] | None]:
    """Hold an exclusive flock on `path` (created if missing) while the context runs.

    Yields the file opened for writing where this process may write it (module
    docstring), else None. With `wait=False` a lock held elsewhere raises `LockHeld`
    at once. A symlink, a directory or a hard link at `path` raises `OSError` (ELOOP,
    EPERM): nothing behind it is opened, let alone changed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, writable = _open(path)
    with os.fdopen(descriptor, "r+" if writable else "r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockHeld(handle.read().strip()) from None
        try:
            yield handle if writable else None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class HostLock:
    """Context manager holding the host's tuner lock; raises `UsageError` when taken."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_lock_path()
        self._held = ExitStack()
        self._pid_file: IO[str] | None = None

    def __enter__(self) -> "HostLock":
        try:
            self._pid_file = self._held.enter_context(lock_file(self.path, wait=False))
        except LockHeld as taken:
            raise UsageError(f"another tuner (pid {taken.holder or 'unknown'}) is running on "
                             f"this host (lock {self.path}); wait for it, or pass "
                             "--allow-concurrent to run anyway (both will measure each "
                             "other's load)") from None
        except OSError as error:
            raise UsageError(f"cannot open the host lock {self.path} safely: "
                             f"{error.strerror}; remove it, or set ${LOCK_FILE_ENV} to a file "
                             "every tuner on this host can open") from None
        if self._pid_file is not None:
            self._pid_file.seek(0)
            self._pid_file.truncate()
            self._pid_file.write(f"{os.getpid()}\n")
            self._pid_file.flush()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pid_file is not None:
            self._pid_file.truncate(0)
            self._pid_file = None
        self._held.close()
