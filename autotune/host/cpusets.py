"""CPU sets for several pinned server instances: the host cut into N disjoint shares.

Each instance gets whole physical cores (SMT siblings stay together, so two instances
never fight over one core's execution units), and the cut follows the memory layout:
when N is a multiple of the NUMA nodes each node is split on its own, else when it is a
multiple of the sockets each socket is, else the cores in order (node by node) are cut
into N runs. An instance therefore never spans two sockets while N is a multiple of the
sockets, and its memory can stay on its own node (`--cpuset-mems`). Shares differ by at
most one core.

The host is the CPUs the tuner may use (its affinity within its cgroup's cpuset, or
`--cpuset-cpus`): only those are split. The counts worth searching are the divisors of
the physical cores (every instance gets the same number of cores, at least one): 1, 2
on a 2-core host; 1, 2, 4, 7, 8, 14, 28, 56 on a 56-core one; under a CPU quota only
those that also divide the quota's CPUs (1, 2, 4 for a 4-CPU quota on 64 cores).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

from autotune.host.cgroups import format_cpu_list
from autotune.host.facts import Core, HostFacts


@dataclass(frozen=True)
class Share:
    """The CPUs of one instance and the NUMA nodes they belong to."""

    cpus: tuple[int, ...]
    nodes: tuple[int, ...]

    @property
    def cpu_list(self) -> str:
        """The CPUs as a kernel/Docker CPU list (`0-3,56-59`)."""
        return format_cpu_list(self.cpus)

    @property
    def node_list(self) -> str:
        """The NUMA nodes as a list for `--cpuset-mems` (`0`, `0-1`)."""
        return format_cpu_list(self.nodes)


def instance_counts(host: HostFacts) -> tuple[int, ...]:
    """The instance counts that give every instance the same number of whole cores and,
    under a CPU quota, the same share of it: no more instances than the quota's CPUs
    (`HostFacts.cpu_budget`), so a 4-CPU pod on a 64-core node runs 1, 2 or 4."""
    cores, budget = len(host.physical()), host.cpu_budget
    return tuple(count for count in range(1, min(cores, budget) + 1)
                 if cores % count == 0 and budget % count == 0)


def split_host(host: HostFacts, instances: int) -> list[Share]:
    """`instances` disjoint shares of whole cores (see the module docstring).

    `ValueError` when there are fewer physical cores than instances.
    """
    cores = list(host.physical())
    if not 1 <= instances <= len(cores):
        raise ValueError(f"{instances} instances need at least {instances} physical cores; "
                         f"this host has {len(cores)}")
    levels: list[Callable[[Core], Hashable]] = [lambda core: (core.package, core.node),
                                                 lambda core: core.package, lambda core: 0]
    for level in levels:
        groups = [list(group) for _, group in itertools.groupby(
            sorted(cores, key=lambda core: (level(core), core.cpus)), key=level)]
        per_group, remainder = divmod(instances, len(groups))
        if remainder == 0 and all(len(group) >= per_group for group in groups):
            return [_share(run) for group in groups for run in _balanced_runs(group, per_group)]
    raise AssertionError("unreachable: the last level is one group")


def _balanced_runs(cores: Sequence[Core], count: int) -> list[Sequence[Core]]:
    """`cores` cut into `count` consecutive runs whose sizes differ by at most one."""
    size, larger = divmod(len(cores), count)
    runs, start = [], 0
    for index in range(count):
        end = start + size + (index < larger)
        runs.append(cores[start:end])
        start = end
    return runs


def _share(cores: Sequence[Core]) -> Share:
    return Share(cpus=tuple(sorted(cpu for core in cores for cpu in core.cpus)),
                 nodes=tuple(sorted({core.node for core in cores})))
