"""Limits read from fake cgroupfs trees (v1 and v2), and what a quota does to the space:
a 64-CPU host in a 4-CPU pod."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotune.host.cgroups import CgroupFs, CgroupLimits, cpu_stat, read_limits, throttling_of
from autotune.host.cpusets import instance_counts, split_host
from autotune.host.facts import detect_host
from autotune.search.space import baselines, build_space, cpu_limit_choices

POD = "/kubepods/pod1"


def _write(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text + "\n")


def _proc(tmp_path: Path, text: str, pid: str = "self") -> Path:
    proc = tmp_path / "proc"
    _write(proc / pid, cgroup=text)
    return proc


def v2_tree(tmp_path: Path, cpu_max: str, cpuset: str = "0-63", memory: str = "max",
            parent_cpu_max: str = "max") -> CgroupFs:
    """A cgroup v2 host whose process is in POD (under a parent `kubepods`)."""
    root = tmp_path / "cg2"
    _write(root, cgroup__controllers="cpuset cpu memory", cgroup__subtree_control="cpu")
    _write(root / "kubepods", cpu__max=parent_cpu_max)
    _write(root / POD.lstrip("/"), cpu__max=cpu_max, cpuset__cpus__effective=cpuset,
           memory__max=memory, cpu__stat="usage_usec 10\nnr_periods 40\nnr_throttled 10\n"
                                          "throttled_usec 250000")
    return CgroupFs(root, _proc(tmp_path, f"0::{POD}"))


def v1_tree(tmp_path: Path, quota: str, period: str = "100000", cpuset: str = "0-63",
            memory: str = "9223372036854771712") -> CgroupFs:
    """A cgroup v1 host (cpu and cpuacct mounted together, as on many distributions)."""
    root = tmp_path / "cg1"
    _write(root / "cpu,cpuacct" / POD.lstrip("/"), cpu__cfs_quota_us=quota,
           cpu__cfs_period_us=period,
           cpu__stat="nr_periods 20\nnr_throttled 5\nthrottled_time 2000000000")
    _write(root / "cpuset" / POD.lstrip("/"), cpuset__cpus=cpuset)
    _write(root / "memory" / POD.lstrip("/"), memory__limit_in_bytes=memory)
    proc = _proc(tmp_path, f"12:memory:{POD}\n4:cpu,cpuacct:{POD}\n3:cpuset:{POD}\n"
                           "1:name=systemd:/\n0::/")
    return CgroupFs(root, proc)


def test_v2_without_a_quota(tmp_path):
    assert read_limits(v2_tree(tmp_path, "max 100000")) == CgroupLimits(
        cpu_limit=None, cpuset=tuple(range(64)), memory_limit_mb=None)


def test_v2_fractional_quota_memory_and_a_parents_tighter_quota(tmp_path):
    limits = read_limits(v2_tree(tmp_path, "150000 100000", cpuset="0-3,8", memory=str(2**31)))
    assert limits == CgroupLimits(cpu_limit=1.5, cpuset=(0, 1, 2, 3, 8), memory_limit_mb=2048)
    assert limits.cpu_budget == 2
    tighter = read_limits(v2_tree(tmp_path / "b", "400000 100000", parent_cpu_max="50000 100000"))
    assert tighter.cpu_limit == 0.5 and tighter.cpu_budget == 1


def test_v1_quota_cpuset_and_no_memory_limit(tmp_path):
    fs = v1_tree(tmp_path, "400000", cpuset="0-7")
    assert read_limits(fs) == CgroupLimits(cpu_limit=4.0, cpuset=tuple(range(8)),
                                           memory_limit_mb=None)
    assert read_limits(v1_tree(tmp_path / "none", "-1")).cpu_limit is None


def test_a_group_outside_the_mount_is_read_at_the_mount_root(tmp_path):
    # a container with its own cgroup namespace sees its group as the mount's root
    root = tmp_path / "cg2"
    _write(root, cgroup__controllers="cpu", cpu__max="200000 100000")
    fs = CgroupFs(root, _proc(tmp_path, "0::/system.slice/docker-abc.scope"))
    assert read_limits(fs).cpu_limit == 2.0


def test_throttling_counters_v1_and_v2(tmp_path):
    v1_tree(tmp_path, "100000")
    v1 = cpu_stat(tmp_path / "cg1" / "cpu,cpuacct" / POD.lstrip("/"))
    assert (v1.periods, v1.throttled, v1.throttled_s, v1.ratio) == (20, 5, 2.0, 0.25)
    fs = v2_tree(tmp_path, "100000 100000")
    _write(fs.proc / "4242", cgroup=f"0::{POD}")
    window = throttling_of([4242], fs)
    assert (window.periods, window.throttled, window.throttled_s) == (40, 10, 0.25)
    assert window.ratio == 0.25
    _write(fs.proc / "4243", cgroup="0::/")  # the root: no quota, not counted
    assert throttling_of([4243], fs).periods == 0


def test_a_cpuset_narrower_than_the_affinity_narrows_the_host(tmp_path):
    host = detect_host(tmp_path / "no-sysfs", tmp_path / "no-nodes", tmp_path / "no-cpuinfo",
                       usable_cpus=[0, 1, 2, 3],
                       limits=read_limits(v1_tree(tmp_path, "-1", cpuset="2-3")))
    assert host.usable_cpus == (2, 3) and host.cpuset == "2-3"
    assert host.cpu_limit is None and host.cpu_budget == host.physical_cores


@pytest.fixture
def pod_on_a_64_cpu_node(tmp_path):
    """A 64-core node (one CPU per core), the tuner in a pod limited to 4 CPUs."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("\n\n".join(f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t: {cpu}"
                                   for cpu in range(64)))
    return detect_host(tmp_path / "no-sysfs", tmp_path / "no-nodes", cpuinfo,
                       usable_cpus=list(range(64)),
                       limits=read_limits(v2_tree(tmp_path, "400000 100000")))


def test_a_4_cpu_quota_on_64_cpus_bounds_the_space_and_the_split(pod_on_a_64_cpu_node):
    host = pod_on_a_64_cpu_node
    assert host.physical_cores == host.logical_cpus == 64
    assert host.cpu_limit == 4.0 and host.cpu_budget == 4
    assert host.as_dict()["cpu_limit"] == 4.0
    assert instance_counts(host) == (1, 2, 4)
    space = build_space(host, batching=True, instances=True)
    assert space.max_threads == 4 and space.instances == (1, 2, 4)
    assert all(max(values) <= 4 for name, values in space.choices().items()
               if name.endswith(("threads", "parallelism")))
    shares = split_host(host, 4)
    assert [len(share.cpus) for share in shares] == [16] * 4
    # the tutorial is sized to the node (what goes wrong in a pod), not to the quota
    tutorial = baselines(space, host, "batch", {})[0].params
    assert tutorial["omp_num_threads"] > 4
    assert cpu_limit_choices(host) == (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
