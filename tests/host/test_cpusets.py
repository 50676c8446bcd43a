"""Instance CPU sets on a described 2-socket, 56-core SMT host, and on this one."""

from pathlib import Path

import pytest

from autotune.host.cpusets import instance_counts, split_host
from autotune.host.facts import HostFacts, detect_host

SOCKETS, CORES_PER_SOCKET = 2, 28
CORES = SOCKETS * CORES_PER_SOCKET


@pytest.fixture(scope="module")
def big_host(tmp_path_factory: pytest.TempPathFactory) -> HostFacts:
    """Two sockets of 28 cores, two threads each, numbered as Linux does: core c has CPUs c
    and c + 56; socket s (= NUMA node s) holds cores 28s .. 28s + 27."""
    root = tmp_path_factory.mktemp("sysfs")
    for cpu in range(2 * CORES):
        core = cpu % CORES
        topology = root / "cpu" / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{core // CORES_PER_SOCKET}\n")
        (topology / "core_id").write_text(f"{core % CORES_PER_SOCKET}\n")
    for node in range(SOCKETS):
        first = node * CORES_PER_SOCKET
        folder = root / "node" / f"node{node}"
        folder.mkdir(parents=True)
        last = first + CORES_PER_SOCKET - 1
        (folder / "cpulist").write_text(f"{first}-{last},{first + CORES}-{last + CORES}\n")
    return detect_host(root / "cpu", root / "node", Path("/nonexistent"),
                       usable_cpus=list(range(2 * CORES)))


def test_big_host_facts(big_host: HostFacts) -> None:
    assert (big_host.physical_cores, big_host.sockets, big_host.numa_nodes) == (56, 2, 2)
    assert big_host.cores[0].cpus == (0, 56) and big_host.cores[30].node == 1
    assert big_host.cores[30].package == 1
    assert big_host.as_dict()["cores"][0] == {"package": 0, "node": 0, "cpus": [0, 56]}


def test_default_instance_counts_divide_the_cores(big_host: HostFacts) -> None:
    assert instance_counts(big_host) == (1, 2, 4, 7, 8, 14, 28, 56)


@pytest.mark.parametrize("instances", [1, 2, 4, 7, 8, 14, 28, 56])
def test_split_is_disjoint_whole_cores_within_sockets(big_host: HostFacts, instances: int) -> None:
    shares = split_host(big_host, instances)
    assert len(shares) == instances
    cpus = [cpu for share in shares for cpu in share.cpus]
    assert len(cpus) == len(set(cpus)) == 2 * CORES  # disjoint, every CPU used
    for share in shares:
        assert len(share.cpus) == 2 * CORES // instances
        assert all((cpu + CORES) % (2 * CORES) in share.cpus for cpu in share.cpus)  # siblings
        sockets = {cpu % CORES // CORES_PER_SOCKET for cpu in share.cpus}
        if instances % SOCKETS == 0:
            assert len(sockets) == 1 and share.nodes == tuple(sockets)
        assert share.nodes == tuple(sorted(sockets))


def test_split_formats_docker_cpu_lists(big_host: HostFacts) -> None:
    first, second = split_host(big_host, 2)
    assert (first.cpu_list, first.node_list) == ("0-27,56-83", "0")
    assert (second.cpu_list, second.node_list) == ("28-55,84-111", "1")
    assert split_host(big_host, 7)[3].node_list == "0-1"  # 7 cannot follow the sockets


def test_uneven_counts_differ_by_one_core(big_host: HostFacts) -> None:
    sizes = sorted(len(share.cpus) // 2 for share in split_host(big_host, 6))
    assert sizes == [9, 9, 9, 9, 10, 10]
    assert all(len(share.nodes) == 1 for share in split_host(big_host, 6))


def test_more_instances_than_cores_is_refused(big_host: HostFacts) -> None:
    with pytest.raises(ValueError, match="57 instances need at least 57 physical cores"):
        split_host(big_host, 57)


def test_this_host_splits_into_one_core_each() -> None:
    host = detect_host()
    shares = split_host(host, host.physical_cores)
    assert [share.cpus[0] for share in shares] == list(host.core_leaders)
    assert instance_counts(host)[0] == 1 and instance_counts(host)[-1] == host.physical_cores
