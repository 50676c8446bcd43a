"""What this host offers a model server: physical cores, sockets, NUMA nodes, logical CPUs.

The search space follows from these facts (thread settings up to the physical cores),
and the study records them, so a result is always read next to the machine it holds for.

Counts are taken over the CPUs this process may run on (its affinity mask), because a
tuner inside a container or a cpuset sees only those; sysfs topology is the first
source, `/proc/cpuinfo` the second, psutil the last, and every count is at least 1.

Each physical core is also kept with its socket, its NUMA node (from the nodes'
`cpulist` files) and its SMT siblings, so that CPU sets for several pinned server
instances can be cut along NUMA nodes and whole cores (autotune.host.cpusets).
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from autotune.host.cgroups import CgroupLimits, format_cpu_list, parse_cpu_list, read_limits

SYSFS_CPU = Path("/sys/devices/system/cpu")
SYSFS_NODE = Path("/sys/devices/system/node")
PROC_CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Core:
    """One physical core: its socket, its NUMA node and its usable logical CPUs (siblings)."""

    package: int
    node: int
    cpus: tuple[int, ...]


@dataclass(frozen=True)
class HostFacts:
    """The CPU facts of one host, as stored in the study's `host` attribute."""

    hostname: str
    cpu_model: str
    physical_cores: int
    sockets: int
    numa_nodes: int
    logical_cpus: int
    #: logical CPU ids this process may use, ascending
    usable_cpus: tuple[int, ...]
    #: one logical CPU per physical core (the first sibling of each), ascending
    core_leaders: tuple[int, ...]
    #: every physical core with its siblings, ordered by leader (empty: one core per leader)
    cores: tuple[Core, ...] = ()
    #: the CFS quota of the tuner's cgroup (or `--cpus`) in CPUs; None: no quota
    cpu_limit: float | None = None
    #: the cgroup's cpuset (or `--cpuset-cpus`) as a CPU list; None: unknown
    cpuset: str | None = None
    #: the cgroup's memory limit (or `--memory`) in MiB; None: no limit
    memory_limit_mb: float | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for study attributes and reports."""
        facts = asdict(self)
        facts["usable_cpus"] = list(self.usable_cpus)
        facts["core_leaders"] = list(self.core_leaders)
        facts["cores"] = [{**asdict(core), "cpus": list(core.cpus)} for core in self.cores]
        return facts

    @property
    def cpu_budget(self) -> int:
        """The CPUs a server here may keep busy: the physical cores, or fewer under a
        quota (rounded up: a 1.5-CPU quota keeps 2 threads busy). Thread settings and
        instance counts are bounded by it (autotune.search.space, autotune.host.cpusets)."""
        quota = CgroupLimits(cpu_limit=self.cpu_limit).cpu_budget
        return min(self.physical_cores, quota) if quota is not None else self.physical_cores

    def physical(self) -> tuple[Core, ...]:
        """The cores, or one single-CPU core per leader on node 0 when siblings are unknown."""
        return self.cores or tuple(Core(0, 0, (cpu,)) for cpu in self.core_leaders)


def worker_id() -> str:
    """`hostname:pid` of this process: the `worker` trial attr, naming who measured a trial.

    Several tuners may share one study (a fleet on PostgreSQL, or a resumed study): the
    attr tells them apart, and tells a resume whether a RUNNING trial's tuner is alive.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def detect_host(sysfs_cpu: Path = SYSFS_CPU, sysfs_node: Path = SYSFS_NODE,
                cpuinfo: Path = PROC_CPUINFO, usable_cpus: list[int] | None = None,
                limits: CgroupLimits | None = None) -> HostFacts:
    """Read this host's CPU facts over `usable_cpus` (default: this process's affinity)
    within `limits` (default: those of this process's cgroup, autotune.host.cgroups, when
    `usable_cpus` is not given, else none): the cpuset narrows the usable CPUs, the
    quota and memory limit are kept.

    The sources are parameters so that tests can describe other machines.
    """
    if limits is None:
        limits = read_limits() if usable_cpus is None else CgroupLimits()
    usable = sorted(usable_cpus) if usable_cpus is not None else _usable_cpus()
    if limits.cpuset is not None:
        usable = sorted(set(usable) & set(limits.cpuset)) or usable
    cpuinfo_records = _read_cpuinfo(cpuinfo)
    topology = _sysfs_topology(sysfs_cpu, usable) or _cpuinfo_topology(cpuinfo_records, usable)
    node_cpus = _numa_node_cpus(sysfs_node, usable)
    if topology:
        siblings: dict[tuple[int, int], list[int]] = {}
        for cpu, core_key in sorted(topology.items()):
            siblings.setdefault(core_key, []).append(cpu)
        leaders = sorted(cpus[0] for cpus in siblings.values())
        physical = len(siblings)
        sockets = len({package for package, _ in siblings})
        cores = sorted((Core(package, _node_of(cpus[0], node_cpus), tuple(cpus))
                        for (package, _), cpus in siblings.items()), key=lambda core: core.cpus)
    else:
        physical = min(psutil.cpu_count(logical=False) or len(usable), len(usable))
        leaders = usable[:physical]
        sockets = 1
        cores = [Core(0, _node_of(cpu, node_cpus), (cpu,)) for cpu in leaders]
    return HostFacts(
        hostname=socket.gethostname(),
        cpu_model=_cpu_model(cpuinfo_records),
        physical_cores=max(1, physical),
        sockets=max(1, sockets),
        numa_nodes=max(1, len(node_cpus)),
        logical_cpus=len(usable),
        usable_cpus=tuple(usable),
        core_leaders=tuple(leaders),
        cores=tuple(cores),
        cpu_limit=limits.cpu_limit,
        cpuset=format_cpu_list(limits.cpuset) if limits.cpuset is not None else None,
        memory_limit_mb=(round(limits.memory_limit_mb, 1)
                         if limits.memory_limit_mb is not None else None),
    )


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(psutil.cpu_count(logical=True) or 1))


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _sysfs_topology(root: Path, cpus: list[int]) -> dict[int, tuple[int, int]]:
    """cpu -> (package id, core id) from sysfs; empty when any CPU lacks the files."""
    topology: dict[int, tuple[int, int]] = {}
    for cpu in cpus:
        folder = root / f"cpu{cpu}" / "topology"
        package = _read_int(folder / "physical_package_id")
        core = _read_int(folder / "core_id")
        if package is None or core is None:
            return {}
        topology[cpu] = (package, core)
    return topology


def _read_cpuinfo(path: Path) -> list[dict[str, str]]:
    """`/proc/cpuinfo` as one dict per processor block (empty when unreadable)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    records = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        records.append(fields)
    return records


def _cpuinfo_topology(records: list[dict[str, str]], cpus: list[int]) -> dict[int, tuple[int, int]]:
    """cpu -> (physical id, core id) from `/proc/cpuinfo`; empty when the fields are missing."""
    topology: dict[int, tuple[int, int]] = {}
    for fields in records:
        try:
            cpu = int(fields["processor"])
            key = (int(fields["physical id"]), int(fields["core id"]))
        except (KeyError, ValueError):
            return {}
        if cpu in cpus:
            topology[cpu] = key
    return topology if len(topology) == len(cpus) else {}


def _cpu_model(records: list[dict[str, str]]) -> str:
    for fields in records:
        for key in ("model name", "Model", "cpu model", "Processor"):
            if fields.get(key):
                return fields[key]
    return platform.processor() or platform.machine() or "unknown"


def numa_layout(cpus: tuple[int, ...] | list[int], root: Path = SYSFS_NODE) -> list[int]:
    """Usable CPUs per NUMA node that has any, in node order (`[len(cpus)]` without sysfs)."""
    nodes = _numa_node_cpus(root, list(cpus))
    return [len(nodes[node]) for node in sorted(nodes)] or [len(set(cpus))]


def _numa_node_cpus(root: Path, cpus: list[int]) -> dict[int, set[int]]:
    """NUMA node id -> its usable CPUs, for the nodes that hold any (empty without sysfs)."""
    usable = set(cpus)
    nodes: dict[int, set[int]] = {}
    for folder in root.glob("node[0-9]*"):
        try:
            node_cpus = parse_cpu_list((folder / "cpulist").read_text()) & usable
        except (OSError, ValueError):
            continue
        if node_cpus:
            nodes[int(folder.name[len("node"):])] = node_cpus
    return nodes


def _node_of(cpu: int, node_cpus: dict[int, set[int]]) -> int:
    """The NUMA node holding `cpu` (0 when no node lists it)."""
    return next((node for node, cpus in sorted(node_cpus.items()) if cpu in cpus), 0)
