"""Host facts: sane on this machine, right on described machines, sound without sysfs."""

from pathlib import Path

import psutil

from autotune.host.facts import detect_host


def _fake_sysfs(root: Path, cpus: dict[int, tuple[int, int]],
                nodes: dict[int, str]) -> tuple[Path, Path]:
    """A sysfs tree: cpu -> (package, core) topology files, node -> cpulist."""
    for cpu, (package, core) in cpus.items():
        topology = root / "cpu" / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
    for node, cpulist in nodes.items():
        folder = root / "node" / f"node{node}"
        folder.mkdir(parents=True)
        (folder / "cpulist").write_text(cpulist + "\n")
    return root / "cpu", root / "node"


def test_this_host_is_sane():
    host = detect_host()
    assert 1 <= host.physical_cores <= host.logical_cpus <= (psutil.cpu_count() or 1)
    assert 1 <= host.sockets <= host.physical_cores
    assert host.numa_nodes >= 1
    assert host.hostname and host.cpu_model
    assert len(host.core_leaders) == host.physical_cores
    assert set(host.core_leaders) <= set(host.usable_cpus)
    assert host.as_dict()["physical_cores"] == host.physical_cores


def test_two_sockets_with_smt(tmp_path):
    # 2 sockets x 2 cores x 2 threads; siblings numbered as Linux does (cpu n and n+4)
    cpus = {cpu: (cpu % 4 // 2, cpu % 2) for cpu in range(8)}
    sysfs_cpu, sysfs_node = _fake_sysfs(tmp_path, cpus, {0: "0-1,4-5", 1: "2-3,6-7"})
    host = detect_host(sysfs_cpu, sysfs_node, tmp_path / "no-cpuinfo", usable_cpus=list(range(8)))
    assert (host.physical_cores, host.sockets, host.numa_nodes, host.logical_cpus) == (4, 2, 2, 8)
    assert host.core_leaders == (0, 1, 2, 3)


def test_counts_only_the_cpus_this_process_may_use(tmp_path):
    cpus = {cpu: (cpu % 4 // 2, cpu % 2) for cpu in range(8)}
    sysfs_cpu, sysfs_node = _fake_sysfs(tmp_path, cpus, {0: "0-1,4-5", 1: "2-3,6-7"})
    host = detect_host(sysfs_cpu, sysfs_node, tmp_path / "none", usable_cpus=[0, 4])
    assert (host.physical_cores, host.sockets, host.numa_nodes, host.logical_cpus) == (1, 1, 1, 2)


def test_falls_back_to_cpuinfo_then_to_one(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    blocks = [f"processor\t: {cpu}\nmodel name\t: Test CPU\nphysical id\t: 0\n"
              f"core id\t: {cpu // 2}\n"
              for cpu in range(4)]
    cpuinfo.write_text("\n".join(blocks))
    host = detect_host(tmp_path / "none", tmp_path / "none", cpuinfo, usable_cpus=[0, 1, 2, 3])
    assert (host.physical_cores, host.sockets, host.numa_nodes, host.cpu_model) == (
        2, 1, 1, "Test CPU")

    bare = detect_host(tmp_path / "none", tmp_path / "none", tmp_path / "none", usable_cpus=[0])
    assert (bare.physical_cores, bare.sockets, bare.numa_nodes, bare.logical_cpus) == (1, 1, 1, 1)
