"""The local launcher with chosen configurations made slow on purpose: their servers start
under a one-CPU quota (so they load the model at full speed), cut to a quarter of a
CPU once they are up. A real server, robustly slower than any other on any host: a
closed loop of requests to it waits about four times their CPU time (mean latency 9x
the unthrottled 1/1/1 on the 2-vCPU VM), yet it answers a window promptly. A twentieth
of a CPU was slower still, but so slow to answer that one check's race took 5 minutes."""

from __future__ import annotations

import dataclasses
from typing import Callable

from autotune.host.cgroups import SYSTEM, quota_group_of
from autotune.launch.local import LocalLauncher
from autotune.launch.server_cgroup import limit_files
from autotune.launch.settings import ServerSettings

THREADS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")
#: the CPUs a slow server runs on once it is up
SLOW_CPUS = 0.25


def threads_of(settings: ServerSettings) -> dict[str, int]:
    """The thread settings of a start, by param name."""
    return {param: getattr(settings, param) for param in THREADS}


def throttling(is_slow: Callable[[ServerSettings], bool]) -> Callable[..., LocalLauncher]:
    """A launcher factory (as `run_tuning` and `run_check` take it) whose servers of the
    configurations `is_slow` picks run at `SLOW_CPUS` once up."""

    class ThrottledLocal(LocalLauncher):
        def start(self, settings: ServerSettings) -> str:
            self.slow = is_slow(settings)
            return super().start(dataclasses.replace(settings, cpus=1.0) if self.slow
                                 else settings)

        def wait_until_available(self, deadline_s: float) -> None:
            super().wait_until_available(deadline_s)
            if self.slow:
                (pid,) = self.server_pids()
                group = quota_group_of(pid)
                assert group is not None
                for file, value in limit_files(SYSTEM.unified, SLOW_CPUS, None)["cpu"].items():
                    (group / file).write_text(value)

    return lambda kind, model, image, rest: ThrottledLocal(model, rest=rest)
