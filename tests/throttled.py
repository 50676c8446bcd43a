"""The local launcher with chosen configurations made slow on purpose: their servers start
under a one-CPU quota (so they load the model at full speed), cut to a twentieth of a
CPU once they are up. A real server, robustly slower than any other on any host."""

from __future__ import annotations

import dataclasses
from typing import Callable

from autotune.host.cgroups import SYSTEM, quota_group_of
from autotune.launch.local import LocalLauncher
from autotune.launch.settings import ServerSettings

THREADS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")
#: the quota a slow server runs under once it is up, of a 100 ms period
SLOW_QUOTA_US = 5000


def threads_of(settings: ServerSettings) -> dict[str, int]:
    """The thread settings of a start, by param name."""
    return {param: getattr(settings, param) for param in THREADS}


def throttling(is_slow: Callable[[ServerSettings], bool]) -> Callable[..., LocalLauncher]:
    """A launcher factory (as `run_tuning` and `run_check` take it) whose servers of the
    configurations `is_slow` picks run at a twentieth of a CPU once up."""

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
                if SYSTEM.unified:
                    (group / "cpu.max").write_text(f"{SLOW_QUOTA_US} 100000")
                else:
                    (group / "cpu.cfs_quota_us").write_text(str(SLOW_QUOTA_US))

    return lambda kind, model, image, rest: ThrottledLocal(model, rest=rest)
