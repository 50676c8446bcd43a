"""A cgroup of its own for each local server: the CPU quota and memory limit it runs under.

`--cpus N` (and `--memory MB`, and a searched CPU limit) make the local launcher run its
server as a pod or `docker run --cpus` would: under a CFS quota of N CPUs. The group is
made under the tuner's own cgroup, named `autotune-<tuner pid>-<random>`:

- cgroup v2: one folder, with `cpu.max` (and `memory.max`); the controllers are enabled
  in the tuner group's `cgroup.subtree_control` first (a tuner group that holds
  processes cannot delegate on a v2 host but at the root: the error says what to do);
- cgroup v1: a folder in the cpu hierarchy with `cpu.cfs_quota_us`/`cpu.cfs_period_us`,
  and one in the memory hierarchy with `memory.limit_in_bytes` when a memory limit is
  asked.

The server is in its group before it runs a line of its own: the launcher starts it
through `sh -c 'echo $$ > .../cgroup.procs; exec "$@"'` (`wrap`). `remove()` after the
server stopped kills whatever is left in the group and removes the folder. A tuner
killed before it can leaves an empty folder (its server ends with it: the embedded server
watches its tuner's pid): the next group made under the same parent removes the folders
of tuners that are gone (`reap_stale`), and a watchdog can do the same with
`remove_group`. Where the cgroup filesystem cannot be written the error is a
`CgroupUnavailableError` (exit 2) that says so, before any trial (`check_writable`).
"""

from __future__ import annotations

import errno
import os
import shlex
import signal
import time
import uuid
from pathlib import Path
from typing import Sequence

import psutil

from autotune.host.cgroups import SYSTEM, CgroupFs
from autotune.launch.base import LauncherUnavailableError

PREFIX = "autotune-"
#: the CFS period the quota is given over (the kernel's default)
PERIOD_US = 100_000
#: the smallest quota the kernel takes
MIN_QUOTA_US = 1_000
#: how long `remove_group` waits for a group's processes to be gone
REMOVE_WAIT_S = 5.0


class CgroupUnavailableError(LauncherUnavailableError):
    """The cgroup filesystem cannot be written here; the message says what to do (exit 2)."""


def _unavailable(what: str, error: OSError | None = None) -> CgroupUnavailableError:
    reason = f" ({error.strerror})" if error is not None and error.strerror else ""
    return CgroupUnavailableError(
        f"a CPU or memory limit on a local server needs a cgroup of its own, but {what}"
        f"{reason}; run the tuner as root on a host whose cgroup filesystem is writable "
        "(on cgroup v2, in a cgroup of its own with the cpu controller delegated, e.g. "
        "`systemd-run --scope -p Delegate=yes autotune ...`), or use --server docker")


def limit_files(unified: bool, cpus: float | None,
                memory_mb: float | None) -> dict[str, dict[str, str]]:
    """Controller -> {file: value} of the limits asked (ordered: period before quota)."""
    files: dict[str, dict[str, str]] = {}
    if cpus is not None:
        quota = max(MIN_QUOTA_US, round(cpus * PERIOD_US))
        files["cpu"] = ({"cpu.max": f"{quota} {PERIOD_US}"} if unified else
                        {"cpu.cfs_period_us": str(PERIOD_US), "cpu.cfs_quota_us": str(quota)})
    if memory_mb is not None:
        limit = str(int(memory_mb * 2**20))
        files["memory"] = {"memory.max" if unified else "memory.limit_in_bytes": limit}
    return files


def _enable_controllers(parent: Path, controllers: Sequence[str]) -> None:
    """cgroup v2: enable `controllers` for the children of `parent`."""
    control = parent / "cgroup.subtree_control"
    try:
        enabled = control.read_text().split()
        for controller in controllers:
            if controller not in enabled:
                control.write_text(f"+{controller}")
    except OSError as error:
        raise _unavailable(f"the {', '.join(controllers)} controller cannot be enabled "
                           f"under {parent}", error) from None


class ServerCgroup:
    """The cgroup folders (one per hierarchy; one on v2) of one local server."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders

    @classmethod
    def create(cls, cpus: float | None, memory_mb: float | None,
               fs: CgroupFs = SYSTEM) -> ServerCgroup:
        """A new group under the tuner's own with these limits (module docstring)."""
        files = limit_files(fs.unified, cpus, memory_mb)
        name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        parents = {controller: fs.group_dir(controller) for controller in files}
        missing = [controller for controller, parent in parents.items() if parent is None]
        if missing:
            raise _unavailable(f"no {', '.join(missing)} cgroup controller is mounted under "
                               f"{fs.root}")
        if fs.unified:
            parent = next(iter(parents.values()))
            assert parent is not None
            _enable_controllers(parent, list(files))
            folders = {parent / name: {k: v for group in files.values() for k, v in group.items()}}
        else:
            folders = {parent / name: files[controller]
                       for controller, parent in parents.items() if parent is not None}
        group = cls([])
        try:
            for folder, limits in folders.items():
                reap_stale(folder.parent)
                folder.mkdir()
                group.folders.append(folder)
                for file, value in limits.items():
                    (folder / file).write_text(value)
        except OSError as error:
            group.remove()
            raise _unavailable(f"{next(iter(folders))} cannot be made", error) from None
        return group

    def wrap(self, command: Sequence[str]) -> list[str]:
        """`command` run through `sh`, which enters every folder of the group first and
        then becomes the command (same pid)."""
        enter = " && ".join(f"echo $$ > {shlex.quote(str(folder / 'cgroup.procs'))}"
                            for folder in self.folders)
        return ["sh", "-c", f'{enter} && exec "$@"', "sh", *command]

    def remove(self) -> None:
        """Kill what is left in the group and remove its folders."""
        for folder in self.folders:
            remove_group(folder)
        self.folders = []


def remove_group(folder: Path, wait_s: float = REMOVE_WAIT_S) -> bool:
    """Remove one cgroup folder, killing what still runs in it; whether it is gone."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            folder.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as error:
            if error.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > deadline:
                return False
        for pid in _members(folder):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _members(folder: Path) -> list[int]:
    try:
        return [int(line) for line in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def reap_stale(parent: Path) -> list[Path]:
    """Remove the server groups under `parent` whose tuner process is gone."""
    removed = []
    for folder in parent.glob(f"{PREFIX}*"):
        pid = folder.name[len(PREFIX):].split("-")[0]
        if folder.is_dir() and pid.isdigit() and not psutil.pid_exists(int(pid)):
            if remove_group(folder):
                removed.append(folder)
    return removed


def check_writable(cpus: float | None, memory_mb: float | None,
                   fs: CgroupFs = SYSTEM) -> None:
    """Make and remove a group with these limits, so that a run that cannot fails now
    (`CgroupUnavailableError`), not at its first trial."""
    ServerCgroup.create(cpus, memory_mb, fs).remove()
