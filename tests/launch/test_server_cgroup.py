"""Local servers under a CPU quota: each in a cgroup of its own while it runs (this host's
real cgroup filesystem), none left after, a dead tuner's reaped; v2 on a fake tree."""

from __future__ import annotations

import os
from pathlib import Path

from autotune.host.cgroups import SYSTEM, CgroupFs, quota_group_of, throttling_of
from autotune.launch import ModelLocation, ServerSettings
from autotune.launch.local import LocalLauncher
from autotune.launch.server_cgroup import PREFIX, ServerCgroup, reap_stale
from serving.fixtures import START_DEADLINE_S


def _ours(parent: Path) -> list[Path]:
    return sorted(parent.glob(f"{PREFIX}{os.getpid()}-*"))


def test_a_server_runs_under_its_quota_and_its_group_goes_with_it(small_assets, cgroups):
    parent = cgroups
    with LocalLauncher(ModelLocation(Path(small_assets.model_dir))) as launcher:
        launcher.start(ServerSettings(1, 1, 1, cpus=0.5))
        launcher.wait_until_available(START_DEADLINE_S)
        (pid,) = launcher.server_pids()
        group = quota_group_of(pid)
        assert group is not None and group.parent == parent and group.name.startswith(PREFIX)
        quota = (group / ("cpu.max" if SYSTEM.unified else "cpu.cfs_quota_us")).read_text()
        assert quota.split()[0] == "50000"
        assert throttling_of([pid]).periods > 0  # it ran (starting) under the quota
        launcher.start(ServerSettings(1, 1, 1))  # a restart without a limit: no group
        (unlimited,) = launcher.server_pids()
        assert quota_group_of(unlimited) is None and not group.exists()
    assert not _ours(parent)


def test_the_groups_of_a_dead_tuner_are_reaped_by_the_next(tmp_path, cgroups):
    parent = cgroups
    stale = parent / f"{PREFIX}999999999-deadbeef"  # no such pid
    stale.mkdir()
    assert stale in reap_stale(parent) and not stale.exists()


def test_v2_groups_enable_the_controllers_and_set_cpu_max(tmp_path):
    root = tmp_path / "cg2"
    (root / "pod").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory\n")
    (root / "pod" / "cgroup.subtree_control").write_text("\n")
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("0::/pod\n")
    group = ServerCgroup.create(1.5, 256, CgroupFs(root, tmp_path / "proc"))
    (folder,) = group.folders
    assert folder.parent == root / "pod"
    assert (folder / "cpu.max").read_text() == "150000 100000"
    assert (folder / "memory.max").read_text() == str(256 * 2**20)
    assert (root / "pod" / "cgroup.subtree_control").read_text() == "+memory"  # last write
    assert group.wrap(["server", "--port=1"])[-2:] == ["server", "--port=1"]
