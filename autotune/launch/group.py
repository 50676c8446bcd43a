"""Several servers of one kind side by side, each pinned to its own cores, as one launcher.

`InstanceGroup` is a `Launcher` whose `start(settings)` runs `settings.instances`
servers through launchers of one kind (made by a factory, kept between starts): each
gets the thread settings, its own share of whole cores from autotune.host.cpusets (and its
NUMA nodes as `cpuset_mems` on a NUMA host) and its own port. With one instance the
settings pass through unchanged, so the tuner has a single code path.

Under deployment limits (`--cpus`, `--cpuset-cpus`, `--memory`) every start is limited
as the deployment will be: the host it splits is the allowed CPUs (autotune.host.facts)
and each of N instances gets 1/N of the CPU and memory limits.

All instances start at once and are waited for in parallel; the group is AVAILABLE when
every one is. One that fails fails the start with its own log lines, and all are then
stopped; so on an interrupt, and by `stop()`. Memory is the sum over the instances.

The members keep their own safety: each listens on 127.0.0.1 and runs its own listening
check (an exposed instance is the group's `exposure`), and each Docker member has its
own watchdog and labels, so a killed tuner leaves no instance's container behind;
closing the group closes every member.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Callable

from autotune.errors import ServerStartError
from autotune.host.cpusets import split_host
from autotune.host.facts import HostFacts
from autotune.launch.base import Launcher
from autotune.launch.settings import DeployLimits, ServerSettings


class InstanceGroup(Launcher):
    """`settings.instances` servers of the kind `make_member()` builds, pinned apart,
    each start under the deployment's `limits` (`DeployLimits.apply`)."""

    def __init__(self, make_member: Callable[[], Launcher], host: HostFacts,
                 limits: DeployLimits | None = None) -> None:
        self._members: list[Launcher] = [make_member()]
        super().__init__(self._members[0].model, rest=self._members[0].rest)
        self.kind = self._members[0].kind
        self._make_member = make_member
        self.host = host
        self.limits = limits or DeployLimits()
        self._running: list[Launcher] = []
        self._settings: list[ServerSettings] = []

    def describe(self) -> str:
        return self._members[0].describe()

    def image_env(self) -> dict[str, str]:
        return self._members[0].image_env()

    @property
    def members(self) -> list[Launcher]:
        """The launchers of the instances started last (kept until the next start)."""
        return list(self._running)

    @property
    def addresses(self) -> list[str]:
        return [address for member in self._running if (address := member.address)]

    @property
    def rest_address(self) -> str | None:
        return self._running[0].rest_address if self._running and self._address else None

    @property
    def rest_addresses(self) -> list[str]:
        """Each started instance's own REST address (each member has its own port)."""
        return [address for member in self._running if (address := member.rest_address)]

    @property
    def cpusets(self) -> list[str | None]:
        """The CPU list of each started instance (None: not pinned)."""
        return [settings.cpuset for settings in self._settings]

    @property
    def cpuset_mems(self) -> list[str | None]:
        """The NUMA nodes each started instance's memory is bound to (None: not bound)."""
        return [settings.cpuset_mems for settings in self._settings]

    def instance_settings(self, settings: ServerSettings) -> list[ServerSettings]:
        """The settings of each instance, under the deployment's limits: its own share of
        cores and of the CPU and memory limits (unchanged for one)."""
        settings = self.limits.apply(settings)
        if settings.instances == 1:
            return [settings]
        if settings.cpuset:
            raise ValueError("several instances take their CPU sets from the host split; "
                             f"a cpuset ({settings.cpuset}) is for one instance only")
        numa = self.host.numa_nodes > 1
        return [dataclasses.replace(settings.instance_share(), instances=1, cpuset=share.cpu_list,
                                    cpuset_mems=share.node_list if numa else None)
                for share in split_host(self.host, settings.instances)]

    def start(self, settings: ServerSettings) -> str:
        self.stop()
        per_instance = self.instance_settings(settings)
        while len(self._members) < len(per_instance):
            self._members.append(self._make_member())
        self._running = self._members[:len(per_instance)]
        self._settings = per_instance
        try:
            self._in_parallel(lambda member, one: member.start(one))
        except BaseException:
            self.stop()
            raise
        self._address = self._running[0].address
        return self._address or ""

    def wait_until_available(self, deadline_s: float) -> None:
        """Wait for every instance at once; the first failure stops all and is raised."""
        if not self._running:
            raise RuntimeError("wait_until_available() called before start()")
        try:
            self._in_parallel(lambda member, _: member.wait_until_available(deadline_s))
        except BaseException:
            self.stop()
            raise
        self.exposure = next((member.exposure for member in self._running if member.exposure),
                             self.exposure)

    def _in_parallel(self, action: Callable[[Launcher, ServerSettings], object]) -> None:
        """`action` on every running member in its own thread; re-raise the first error.

        A failure is named by its instance. On any error or interrupt every member is
        stopped before the threads are joined, so waiting members return promptly.
        """
        if len(self._running) == 1:
            self._labelled(0, action)
            return
        with ThreadPoolExecutor(max_workers=len(self._running)) as pool:
            futures: list[Future[None]] = [
                pool.submit(self._labelled, index, action) for index in range(len(self._running))]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for future in futures:
                    if future in done:
                        future.result()  # re-raises a failure
            except BaseException:
                for member in self._running:
                    member.stop()
                raise

    def _labelled(self, index: int, action: Callable[[Launcher, ServerSettings], object]) -> None:
        try:
            action(self._running[index], self._settings[index])
        except ServerStartError as error:
            if len(self._running) == 1:
                raise
            raise ServerStartError(f"instance {index + 1}/{len(self._running)} (CPUs "
                                   f"{self._settings[index].cpuset}): {error}") from None

    def stop(self) -> None:
        for member in self._running:
            member.stop()
        self._address = None

    def server_pids(self) -> list[int]:
        return [pid for member in self._running for pid in member.server_pids()]

    def stopped_cpu_s(self) -> float:
        return sum(member.stopped_cpu_s() for member in self._members)

    def rss_mb(self) -> float | None:
        """The resident memory of all instances together; None when any is unknown."""
        total = 0.0
        for member in self._running:
            size = member.rss_mb()
            if size is None:
                return None
            total += size
        return total if self._running else None

    def logs(self, lines: int = 50) -> str:
        if len(self._running) <= 1:
            return self._members[0].logs(lines)
        return "\n".join(f"--- instance {index + 1} ---\n{member.logs(lines)}"
                         for index, member in enumerate(self._running))

    def __exit__(self, *exc_info: object) -> None:
        """Stop every instance, then close every member (its watchdog with it)."""
        self.stop()
        for member in self._members:
            member.__exit__(*exc_info)

    def _exit_reason(self) -> str | None:
        return next((f"instance {index + 1} {reason}" for index, member in enumerate(self._running)
                     if (reason := member._exit_reason())), None)

