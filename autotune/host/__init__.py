"""This host: what it offers a server, how it is cut into instance shares, one tuner on it.

    facts     physical cores (socket, NUMA node, SMT siblings of each), sockets, NUMA
              nodes, usable CPUs (psutil + sysfs) within the cgroup's limits; the worker
              id of this tuner
    cgroups   the CPU quota, cpuset and memory limit of a cgroup (v1 and v2), and its
              CFS throttling (`cpu.stat`); CPU lists
    cpusets   the host cut into N instance shares of whole cores; the instance counts
              worth searching
    lock      one tuner per host (a flock in /run/lock), and the flock every lock uses
"""

from autotune.host.cgroups import (
    CgroupLimits,
    Throttling,
    format_cpu_list,
    parse_cpu_list,
    read_limits,
)
from autotune.host.cpusets import Share, instance_counts, split_host
from autotune.host.facts import Core, HostFacts, detect_host, numa_layout, worker_id
from autotune.host.lock import LOCK_FILE_ENV, HostLock, default_lock_path

__all__ = ["LOCK_FILE_ENV", "CgroupLimits", "Core", "HostFacts", "HostLock", "Share",
           "Throttling", "default_lock_path", "detect_host", "format_cpu_list",
           "instance_counts", "numa_layout", "parse_cpu_list", "read_limits", "split_host",
           "worker_id"]
