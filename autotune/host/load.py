"""How busy the host is while autotune measures: other processes' CPU, and steal time.

A configuration whose threads need every core loses when another process holds one,
so a measurement of a busy host recommends settings for a host that busy (on this
2-core VM a run beside another job chose 1 thread, where the quiet host's grid put 2
threads first by 1.24x). Every measurement window is therefore metered:

- `foreign_cpu`: the CPU time of every process that is neither the tuner (with all its
  children: local servers, LoadGen's client processes) nor a server it started
  (a container's processes, by their pids), as a share of the CPU time the window had;
- `steal`: the time the hypervisor ran someone else on these CPUs, as the same share.

Both come from the kernel's per-CPU counters (`/proc/stat`, through psutil) over the
CPUs this process may run on (its affinity: a cpuset's, not the whole host's), and the
processes' own CPU times; a short-lived foreign process is counted too, since the
counters see everything. A child that exits during a window is counted through its
parent's reaped-children times, so the tuner's own share stays whole.

`measure_quietly` applies the `--max-foreign-cpu` policy: a window busier than the
bound waits up to `--quiet-wait` seconds for the host to calm and measures once more,
keeping both; a window that stays busy is marked so, never silently dropped.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, Iterator, TypeVar

import psutil

T = TypeVar("T")
#: seconds a calm-down check samples the host for
CALM_STEP_S = 1.0


@dataclass(frozen=True)
class HostLoad:
    """What else ran during one measurement window, as shares (0-1) of its CPU time."""

    foreign_cpu: float
    steal: float
    seconds: float

    def busier_than(self, bound: float) -> bool:
        """Whether other processes or the hypervisor took more than `bound` of the CPU."""
        return self.foreign_cpu > bound or self.steal > bound


@dataclass(frozen=True)
class _Sample:
    busy_s: float
    steal_s: float
    total_s: float
    own_s: float
    at: float


class LoadMeter:
    """Meters windows of time on the CPUs this process may use (module docstring).

    `own_pids` names the servers the tuner started that are not its children (a
    container's processes); the tuner's own process tree is always its own.
    `stopped_cpu_s` is the CPU those servers spent before they were stopped (a container
    started and removed within a window is in no tree at either end of it).
    """

    def __init__(self, own_pids: Callable[[], Iterable[int]] = tuple,
                 cpus: Iterable[int] | None = None,
                 stopped_cpu_s: Callable[[], float] = float) -> None:
        self.own_pids = own_pids
        self.stopped_cpu_s = stopped_cpu_s
        self.cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))

    def sample(self) -> _Sample:
        """The counters now."""
        per_cpu = psutil.cpu_times(percpu=True)
        times = [per_cpu[cpu] for cpu in self.cpus if cpu < len(per_cpu)]
        busy = sum(t.user + t.nice + t.system + t.irq + t.softirq for t in times)
        steal = sum(t.steal for t in times)
        idle = sum(t.idle + t.iowait for t in times)
        return _Sample(busy, steal, busy + steal + idle, self._own_cpu_s(), time.monotonic())

    def between(self, start: _Sample, end: _Sample) -> HostLoad:
        """The load of the window from `start` to `end`."""
        total = max(end.total_s - start.total_s, 1e-9)
        foreign = (end.busy_s - start.busy_s) - (end.own_s - start.own_s)
        return HostLoad(foreign_cpu=round(min(max(foreign / total, 0.0), 1.0), 4),
                        steal=round(min(max((end.steal_s - start.steal_s) / total, 0.0), 1.0), 4),
                        seconds=round(end.at - start.at, 3))

    @contextmanager
    def window(self) -> Iterator["Window"]:
        """Meter the time the context runs; the load is in the yielded `Window` after it."""
        metered = Window()
        start = self.sample()
        try:
            yield metered
        finally:
            metered.load = self.between(start, self.sample())

    def over(self, seconds: float) -> HostLoad:
        """The load of the next `seconds` (this thread sleeps meanwhile)."""
        with self.window() as metered:
            time.sleep(seconds)
        assert metered.load is not None
        return metered.load

    def _own_cpu_s(self) -> float:
        """CPU seconds of the tuner's process tree and of the named servers' trees (with
        the children each has reaped), and of the servers already gone that no tree holds."""
        return tree_cpu_s({os.getpid(), *self.own_pids()}) + self.stopped_cpu_s()


def tree_cpu_s(roots: Iterable[int]) -> float:
    """CPU seconds of the processes `roots` and all their descendants, each counted once,
    with the children each has reaped; a process that ended meanwhile is left out (its
    parent's reaped times hold it, where the parent is in the trees)."""
    seen: set[int] = set()
    seconds = 0.0
    for root in roots:
        try:
            tree = [psutil.Process(root)]
            tree += tree[0].children(recursive=True)
        except psutil.Error:
            continue
        for process in tree:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seconds += times.user + times.system + times.children_user + times.children_system
    return seconds


@dataclass
class Window:
    """One metered window; `load` is set when it ends."""

    load: HostLoad | None = None


@dataclass(frozen=True)
class QuietPolicy:
    """`--max-foreign-cpu` (None: measure whatever the load) and `--quiet-wait` seconds."""

    max_foreign_cpu: float | None = None
    quiet_wait_s: float = 60.0


@dataclass
class Measured(Generic[T]):
    """Each result and the load of the window it was measured in (a second one when the
    first was busier than the policy allows); `busy` when the kept one still was."""

    results: list[T] = field(default_factory=list)
    loads: list[HostLoad] = field(default_factory=list)
    busy: bool = False

    @property
    def result(self) -> T:
        """The result kept (the last)."""
        return self.results[-1]

    @property
    def load(self) -> HostLoad:
        """The load of the measurement kept (the last)."""
        return self.loads[-1]

    def add(self, metered: Callable[[], T], meter: LoadMeter) -> None:
        """Measure once more in a metered window."""
        with meter.window() as window:
            self.results.append(metered())
        assert window.load is not None
        self.loads.append(window.load)


def wait_until_calm(meter: LoadMeter, bound: float, max_wait_s: float,
                    step_s: float = CALM_STEP_S) -> bool:
    """Sample the host in steps until a step is no busier than `bound`; whether it calmed
    within `max_wait_s`."""
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        if not meter.over(min(step_s, max(deadline - time.monotonic(), 0.01))).busier_than(bound):
            return True
    return False


def measure_quietly(measure: Callable[[], T], meter: LoadMeter, policy: QuietPolicy,
                    on_wait: Callable[[str], None] = lambda text: None) -> Measured[T]:
    """`measure()` in a metered window; when the window was busier than the policy's
    bound, wait for the host to calm and measure once more (both loads kept)."""
    measured: Measured[T] = Measured()
    measured.add(measure, meter)
    bound = policy.max_foreign_cpu
    if bound is None or not measured.load.busier_than(bound):
        return measured
    on_wait(f"host busy ({measured.load.foreign_cpu:.0%} other processes, "
            f"{measured.load.steal:.0%} steal): waiting up to {policy.quiet_wait_s:g} s")
    if wait_until_calm(meter, bound, policy.quiet_wait_s):
        measured.add(measure, meter)
    measured.busy = measured.load.busier_than(bound)
    return measured
