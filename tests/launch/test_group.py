"""Several pinned instances as one launcher, with real servers: each on its own core and
on loopback, all AVAILABLE together, one failing instance failing the start in its own
words, Ctrl-C, stop and a killed tuner leaving nothing, memory summed over the instances."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from typing import Iterator

import docker
import psutil
import pytest

from autotune.errors import ServerStartError
from autotune.host.cpusets import split_host
from autotune.host.facts import detect_host
from autotune.launch import ModelLocation, ServerSettings, make_launcher
from autotune.launch.docker import PID_LABEL
from autotune.launch.group import InstanceGroup
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from reliability.leftovers import containers_of, wait_until
from serving.fixtures import START_DEADLINE_S, PlainClient, sample_ids

HOST = detect_host()
pytestmark = pytest.mark.skipif(HOST.physical_cores < 2,
                                reason="two instances need two physical cores")


def _local_group(model: ModelLocation, programs: Iterator[tuple[str, ...]] | None = None
                 ) -> InstanceGroup:
    programs = programs or itertools.repeat(EMBEDDED_SERVER)
    return InstanceGroup(lambda: LocalLauncher(model, program=next(programs)), HOST)


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def test_two_local_instances_each_on_its_own_core(tiny_model: ModelLocation) -> None:
    shares = split_host(HOST, 2)
    with _local_group(tiny_model) as group:
        first = group.start(ServerSettings(1, 1, 1, instances=2))
        group.wait_until_available(START_DEADLINE_S)
        assert group.addresses[0] == first and len(set(group.addresses)) == 2
        assert all(address.startswith("127.0.0.1:") for address in group.addresses)
        assert group.exposure is None  # every instance passed the listening check
        assert group.cpusets == [share.cpu_list for share in shares]
        pids = [member.pid for member in group.members]
        for pid, share in zip(pids, shares, strict=True):
            assert psutil.Process(pid).cpu_affinity() == list(share.cpus)
        for address in group.addresses:
            client = PlainClient(address)
            assert client.scores(*sample_ids(2)).shape == (2, 1)
            client.close()
        both = group.rss_mb()
        assert both is not None and both > 2 * 20  # two TensorFlow processes
        assert both == pytest.approx(sum(member.rss_mb() for member in group.members), rel=0.2)

        group.start(ServerSettings(1, 1, 1))  # back to one, unpinned
        assert not _alive(pids) and group.cpusets == [None] and len(group.addresses) == 1
        group.wait_until_available(START_DEADLINE_S)
        single = group.members[0].pid
    assert not _alive([single]) and group.address is None


def test_one_failing_instance_fails_the_start_with_its_own_lines(tiny_model: ModelLocation) -> None:
    broken = (sys.executable, "-c", "print('instance two is broken', flush=True); exit(3)")
    group = _local_group(tiny_model, iter([EMBEDDED_SERVER, broken]))
    group.start(ServerSettings(1, 1, 1, instances=2))
    pids = [member.pid for member in group.members]
    with pytest.raises(ServerStartError) as failed:
        group.wait_until_available(START_DEADLINE_S)
    message = str(failed.value)
    assert "instance 2/2" in message and "instance two is broken" in message
    assert "exited with code 3" in message
    assert not _alive(pids)


def test_ctrl_c_while_waiting_stops_every_instance(tiny_model: ModelLocation, ctrl_c_after) -> None:
    group = _local_group(tiny_model)
    group.start(ServerSettings(1, 1, 1, instances=2))
    pids = [member.pid for member in group.members]
    ctrl_c_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        group.wait_until_available(START_DEADLINE_S)
    assert not _alive(pids)


def test_a_cpuset_with_several_instances_is_refused(tiny_model: ModelLocation) -> None:
    with pytest.raises(ValueError, match="for one instance only"):
        _local_group(tiny_model).start(ServerSettings(1, 1, 1, cpuset="0", instances=2))


@pytest.mark.docker
def test_two_containers_each_on_its_own_core(tiny_model: ModelLocation, serving_image: str) -> None:
    engine = docker.from_env()
    ours = {"label": f"{PID_LABEL}={os.getpid()}"}
    with InstanceGroup(lambda: make_launcher("docker", tiny_model, image=serving_image),
                       HOST) as group:
        group.start(ServerSettings(1, 1, 1, instances=2))
        group.wait_until_available(START_DEADLINE_S)
        containers = [engine.containers.get(member.container_name) for member in group.members]
        assert [c.attrs["HostConfig"]["CpusetCpus"] for c in containers] == group.cpusets
        assert len(set(group.cpusets)) == 2
        for address in group.addresses:
            client = PlainClient(address)
            assert client.scores(*sample_ids(2)).shape == (2, 1)
            client.close()
        assert (group.rss_mb() or 0) > 2 * 20
        assert len(engine.containers.list(all=True, filters=ours)) == 2
    assert engine.containers.list(all=True, filters=ours) == []


def test_rest_is_measured_on_every_instance_through_its_own_port(tiny_model: ModelLocation
                                                                 ) -> None:
    """--protocol rest with two instances: each has its own REST port, a client each, and
    the batch measurement drives both at once."""
    from autotune.measure.running import connect
    from autotune.measure.signature import pair_rows
    from autotune.measure.throughput import measure_throughput
    from autotune.protocols import REST

    with InstanceGroup(lambda: LocalLauncher(tiny_model, program=EMBEDDED_SERVER, rest=True),
                       HOST) as group:
        group.start(ServerSettings(1, 1, 1, instances=2))
        group.wait_until_available(START_DEADLINE_S)
        assert len(set(group.rest_addresses)) == 2
        assert not set(group.rest_addresses) & set(group.addresses)
        clients = connect(group, tiny_model.name, REST, 30.0, in_flight=2)
        try:
            result = measure_throughput(clients, pair_rows(*sample_ids(50)), iterations=8,
                                        in_flight=2, precision=0.0)
        finally:
            for client in clients:
                client.close()
    assert result.instances == 2 and result.iterations == 8 and result.samples_per_s > 0


@pytest.mark.docker
def test_a_killed_tuner_leaves_no_instance_container(tiny_model: ModelLocation,
                                                     serving_image: str) -> None:
    """Each instance's container has its launcher's watchdog: SIGKILL the tuner, none stays."""
    tuner = subprocess.Popen([sys.executable, "-c", f"""
from pathlib import Path
from autotune.host.facts import detect_host
from autotune.launch import ModelLocation, ServerSettings, make_launcher
from autotune.launch.group import InstanceGroup
model = ModelLocation(Path({str(tiny_model.base_path)!r}), {tiny_model.name!r})
group = InstanceGroup(lambda: make_launcher("docker", model, image={serving_image!r}),
                      detect_host())
group.start(ServerSettings(1, 1, 1, instances=2))
print(" ".join(member.container_name for member in group.members), flush=True)
input()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        names = tuner.stdout.readline().split()
        assert len(names) == 2 and sorted(containers_of(tuner.pid)) == sorted(names)
    finally:
        tuner.kill()
        tuner.wait()

    def none_left() -> bool:
        """no container of the killed tuner"""
        return not containers_of(tuner.pid)
    wait_until(none_left, 15)
