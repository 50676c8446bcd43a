"""The CPU and memory limits of a cgroup, and how much a cgroup's CFS quota throttled it.

A tuner in a pod limited to 4 CPUs on a 64-core node sees 64 CPUs in its affinity; only
its cgroup says 4. `read_limits` reads the limits of the cgroup this process runs in:

- cgroup v2 (one unified hierarchy): `cpu.max` (quota and period), `cpuset.cpus.effective`,
  `memory.max`;
- cgroup v1 (one hierarchy per controller): `cpu.cfs_quota_us` / `cpu.cfs_period_us`,
  `cpuset.effective_cpus` (else `cpuset.cpus`), `memory.limit_in_bytes`.

A parent's quota or memory limit holds for its children, so each is the smallest over
the group and its ancestors up to the hierarchy's root. A group named by `/proc/self/cgroup`
that is not under the mount (a container that sees its own cgroup as the mount root)
is read at the mount root. Every file is optional: what cannot be read is no limit.

`Throttling` is a quota's effect over a window: the CFS periods in which the group ran,
those in which it used up its quota and waited (`nr_throttled`), and the time it waited,
from the group's `cpu.stat`; `cpu_stat_of(pid)` finds a process's own cpu cgroup (a local
server's, a container's) and reads it, when that group has a quota.

The sources are parameters (`CgroupFs`) so that tests describe v1 and v2 hosts with
fake trees.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
#: a v1 memory limit at or above this is the kernel's "no limit" (PAGE_COUNTER_MAX, rounded)
NO_MEMORY_LIMIT = 2**60
MIB = 2**20
#: reads one limit of one group's folder (None: none there)
Reader = Callable[[Path], "float | None"]


@dataclass(frozen=True)
class CgroupLimits:
    """What a cgroup lets its processes use (None: no limit of that kind)."""

    #: CPUs the CFS quota allows (quota / period), e.g. 1.5
    cpu_limit: float | None = None
    #: the CPUs of the cpuset, ascending
    cpuset: tuple[int, ...] | None = None
    memory_limit_mb: float | None = None

    @property
    def cpu_budget(self) -> int | None:
        """The quota in whole CPUs, rounded up (a 1.5-CPU quota keeps 2 threads busy)."""
        return None if self.cpu_limit is None else max(1, math.ceil(self.cpu_limit - 1e-9))

    def narrowed(self, cpus: float | None = None, cpuset: set[int] | None = None,
                 memory_mb: float | None = None) -> CgroupLimits:
        """These limits with tighter ones applied (`--cpus`, `--cpuset-cpus`, `--memory`)."""
        allowed = self.cpuset
        if cpuset is not None:
            allowed = tuple(sorted(cpuset & set(allowed) if allowed is not None else cpuset))
        return CgroupLimits(cpu_limit=_smallest(self.cpu_limit, cpus), cpuset=allowed,
                            memory_limit_mb=_smallest(self.memory_limit_mb, memory_mb))


@dataclass(frozen=True)
class Throttling:
    """A cgroup's CFS counters (cumulative, or over a window when subtracted)."""

    periods: int = 0
    throttled: int = 0
    throttled_s: float = 0.0

    def __add__(self, other: Throttling) -> Throttling:
        return Throttling(self.periods + other.periods, self.throttled + other.throttled,
                          self.throttled_s + other.throttled_s)

    def __sub__(self, other: Throttling) -> Throttling:
        return Throttling(self.periods - other.periods, self.throttled - other.throttled,
                          self.throttled_s - other.throttled_s)

    @property
    def ratio(self) -> float | None:
        """Throttled periods / periods (None: the group never ran under its quota)."""
        return self.throttled / self.periods if self.periods > 0 else None


@dataclass(frozen=True)
class CgroupFs:
    """Where the cgroup filesystem and `/proc` are (the real ones by default)."""

    root: Path = CGROUP_ROOT
    proc: Path = PROC

    @property
    def unified(self) -> bool:
        """Whether the root is a cgroup v2 mount (a hybrid host has v1 controllers at the
        root and v2 under `unified/`: v1 then)."""
        return (self.root / "cgroup.controllers").is_file()

    def memberships(self, pid: int | str = "self") -> dict[str, str]:
        """Controller -> cgroup path of a process (`""` for v2's unified line)."""
        try:
            text = (self.proc / str(pid) / "cgroup").read_text()
        except OSError:
            return {}
        groups: dict[str, str] = {}
        for line in text.splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                groups[controller] = path
        return groups

    def mount(self, controller: str) -> Path | None:
        """The folder of a controller's hierarchy (v2: the root for every controller)."""
        if self.unified:
            return self.root
        candidates = [self.root / controller,
                      *(path for path in sorted(self.root.glob(f"*{controller}*"))
                        if controller in path.name.split(","))]
        return next((path for path in candidates if path.is_dir()), None)

    def group_dir(self, controller: str, pid: int | str = "self") -> Path | None:
        """The folder of the cgroup `pid` is in for `controller` (None: not mounted)."""
        mount = self.mount(controller)
        if mount is None:
            return None
        path = self.memberships(pid).get("" if self.unified else controller)
        if path is None:
            return None if not self.unified else mount
        folder = mount / path.lstrip("/")
        return folder if folder.is_dir() else mount


#: the cgroup filesystem and `/proc` of this host
SYSTEM = CgroupFs()


def read_limits(fs: CgroupFs = SYSTEM) -> CgroupLimits:
    """The limits of the cgroup this process runs in (module docstring)."""
    cpu_dir, cpuset_dir, memory_dir = (fs.group_dir(c) for c in ("cpu", "cpuset", "memory"))
    return CgroupLimits(
        cpu_limit=_ancestors_min(cpu_dir, fs.mount("cpu"), _quota_reader(fs.unified)),
        cpuset=_cpuset(cpuset_dir, fs.unified),
        memory_limit_mb=_ancestors_min(memory_dir, fs.mount("memory"), _memory_mb(fs.unified)))


def _quota_reader(unified: bool) -> Reader:
    """The reader of one group's CPU quota in CPUs (None: no quota)."""
    def read(folder: Path) -> float | None:
        if unified:
            words = _read(folder / "cpu.max").split()
            if len(words) != 2 or words[0] == "max":
                return None
            quota, period = words
        else:
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        try:
            quota_us, period_us = int(quota), int(period)
        except ValueError:
            return None
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return read


def _memory_mb(unified: bool) -> Reader:
    """The reader of one group's memory limit in MiB (None: no limit)."""
    def read(folder: Path) -> float | None:
        text = _read(folder / ("memory.max" if unified else "memory.limit_in_bytes"))
        if not text.isdigit() or int(text) >= NO_MEMORY_LIMIT:
            return None
        return int(text) / MIB
    return read


def _cpuset(folder: Path | None, unified: bool) -> tuple[int, ...] | None:
    if folder is None:
        return None
    names = (("cpuset.cpus.effective", "cpuset.cpus") if unified
             else ("cpuset.effective_cpus", "cpuset.cpus"))
    for name in names:
        text = _read(folder / name)
        if text:
            return tuple(sorted(parse_cpu_list(text)))
    return None


def _ancestors_min(folder: Path | None, mount: Path | None, read: Reader) -> float | None:
    """The smallest limit `read` finds in `folder` and its parents up to `mount`."""
    if folder is None or mount is None:
        return None
    values = []
    while True:
        value = read(folder)
        if value is not None:
            values.append(value)
        if folder == mount or mount not in folder.parents:
            break
        folder = folder.parent
    return min(values) if values else None


def cpu_stat(folder: Path) -> Throttling:
    """A group's cumulative CFS counters (zeros when unreadable)."""
    fields: dict[str, int] = {}
    for line in _read(folder / "cpu.stat").splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            fields[name] = int(value)
    throttled_s = (fields["throttled_usec"] / 1e6 if "throttled_usec" in fields
                   else fields.get("throttled_time", 0) / 1e9)
    return Throttling(fields.get("nr_periods", 0), fields.get("nr_throttled", 0), throttled_s)


def quota_group_of(pid: int, fs: CgroupFs = SYSTEM) -> Path | None:
    """The cpu cgroup folder of `pid` when that group has a CFS quota, else None."""
    folder = fs.group_dir("cpu", pid)
    if folder is None or not fs.memberships(pid):
        return None
    return folder if _quota_reader(fs.unified)(folder) is not None else None


def throttling_of(pids: list[int], fs: CgroupFs = SYSTEM) -> Throttling:
    """The summed counters of the distinct quota'd cpu cgroups of `pids`."""
    groups = {group for pid in pids if (group := quota_group_of(pid, fs)) is not None}
    total = Throttling()
    for group in groups:
        total = total + cpu_stat(group)
    return total


def parse_cpu_list(text: str) -> set[int]:
    """A kernel CPU list such as `0-3,8,10-11` as a set of ids."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus



def format_cpu_list(cpus: Sequence[int]) -> str:
    """CPU ids as a kernel/Docker CPU list, e.g. (0, 1, 2, 5) -> "0-2,5"."""
    parts = []
    for _, run in itertools.groupby(enumerate(sorted(cpus)), key=lambda pair: pair[1] - pair[0]):
        ids = [cpu for _, cpu in run]
        parts.append(str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}")
    return ",".join(parts)


def _smallest(first: float | None, second: float | None) -> float | None:
    values = [value for value in (first, second) if value is not None]
    return min(values) if values else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
