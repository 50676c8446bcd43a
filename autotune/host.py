"""What this host offers a model server: physical cores, sockets, NUMA nodes, logical CPUs.

The search space follows from these facts (thread settings up to the physical cores),
and the study records them, so a result is always read next to the machine it holds for.

Counts are taken over the CPUs this process may run on (its affinity mask), because a
tuner inside a container or a cpuset sees only those; sysfs topology is the first
source, `/proc/cpuinfo` the second, psutil the last, and every count is at least 1.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

SYSFS_CPU = Path("/sys/devices/system/cpu")
SYSFS_NODE = Path("/sys/devices/system/node")
PROC_CPUINFO = Path("/proc/cpuinfo")


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

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for study attributes and reports."""
        facts = asdict(self)
        facts["usable_cpus"] = list(self.usable_cpus)
        facts["core_leaders"] = list(self.core_leaders)
        return facts


def worker_id() -> str:
    """`hostname:pid` of this process: the `worker` trial attr, naming who measured a trial.

    Several tuners may share one study (a fleet on PostgreSQL, or a resumed study): the
    attr tells them apart, and tells a resume whether a RUNNING trial's tuner is alive.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def detect_host(sysfs_cpu: Path = SYSFS_CPU, sysfs_node: Path = SYSFS_NODE,
                cpuinfo: Path = PROC_CPUINFO, usable_cpus: list[int] | None = None) -> HostFacts:
    """Read this host's CPU facts over `usable_cpus` (default: this process's affinity).

    The sources are parameters so that tests can describe other machines.
    """
    usable = sorted(usable_cpus) if usable_cpus is not None else _usable_cpus()
    cpuinfo_records = _read_cpuinfo(cpuinfo)
    topology = _sysfs_topology(sysfs_cpu, usable) or _cpuinfo_topology(cpuinfo_records, usable)
    if topology:
        first_cpu_of_core: dict[tuple[int, int], int] = {}
        for cpu, core_key in sorted(topology.items()):
            first_cpu_of_core.setdefault(core_key, cpu)
        leaders = sorted(first_cpu_of_core.values())
        physical = len(first_cpu_of_core)
        sockets = len({package for package, _ in first_cpu_of_core})
    else:
        physical = min(psutil.cpu_count(logical=False) or len(usable), len(usable))
        leaders = usable[:physical]
        sockets = 1
    return HostFacts(
        hostname=socket.gethostname(),
        cpu_model=_cpu_model(cpuinfo_records),
        physical_cores=max(1, physical),
        sockets=max(1, sockets),
        numa_nodes=max(1, _numa_nodes(sysfs_node, usable)),
        logical_cpus=len(usable),
        usable_cpus=tuple(usable),
        core_leaders=tuple(leaders),
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


def parse_cpu_list(text: str) -> set[int]:
    """A kernel CPU list such as `0-3,8,10-11` as a set of ids."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def numa_layout(cpus: tuple[int, ...] | list[int], root: Path = SYSFS_NODE) -> list[int]:
    """Usable CPUs per NUMA node that has any, in node order (`[len(cpus)]` without sysfs)."""
    usable = set(cpus)
    counts = []
    for node in sorted(root.glob("node[0-9]*"), key=lambda path: int(path.name[4:])):
        try:
            shared = len(parse_cpu_list((node / "cpulist").read_text()) & usable)
        except (OSError, ValueError):
            continue
        if shared:
            counts.append(shared)
    return counts or [len(usable)]


def _numa_nodes(root: Path, cpus: list[int]) -> int:
    """NUMA nodes that hold at least one usable CPU (1 when sysfs has no node folder)."""
    usable = set(cpus)
    nodes = 0
    for node in sorted(root.glob("node[0-9]*")):
        try:
            node_cpus = parse_cpu_list((node / "cpulist").read_text())
        except (OSError, ValueError):
            continue
        nodes += bool(node_cpus & usable)
    return nodes or 1
