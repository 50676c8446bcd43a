"""One tuner per host, whatever `$AUTOTUNE_HOME` each one uses; and a lock folder anyone
may write to cannot be used to make the tuner change another file."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from autotune.errors import UsageError
from autotune.host.lock import LOCK_FILE_ENV, HostLock

from .cli import autotune, refused


@pytest.fixture
def host_wide_lock(monkeypatch):
    """The default lock path, as a user gets it (the suite's own override removed)."""
    monkeypatch.delenv(LOCK_FILE_ENV, raising=False)


def test_two_homes_share_the_host_lock(host_wide_lock, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOTUNE_HOME", str(tmp_path / "home-a"))
    with HostLock():
        monkeypatch.setenv("AUTOTUNE_HOME", str(tmp_path / "home-b"))
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            HostLock().__enter__()


def test_a_tuner_with_another_home_is_refused_before_any_work(host_wide_lock, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != LOCK_FILE_ENV}
    env["AUTOTUNE_HOME"] = str(tmp_path / "other-home")
    with HostLock():
        started = time.monotonic()
        tuner = subprocess.run(
            [sys.executable, "-m", "autotune", "--mode", "online", "--server", "local",
             "--storage", f"sqlite:///{tmp_path}/s.db", "--report-dir", str(tmp_path / "r")],
            env=env, capture_output=True, text=True, timeout=120)
    assert tuner.returncode == 2, tuner.stderr
    assert "another tuner" in tuner.stderr and f"pid {os.getpid()}" in tuner.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "other-home").exists()  # refused before preparing anything


@pytest.fixture
def open_lock_folder() -> Iterator[Path]:
    """A lock folder every user may write to (mode 1777, as /run/lock), under /tmp so that
    another user can reach it."""
    folder = Path(tempfile.mkdtemp(prefix="autotune-lock-"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder)


def _plant_symlink(target: Path, link: Path) -> None:
    """`link -> target`, made by the user `nobody` when we are root (the issue's attacker),
    else by ourselves: either way the tuner must not open through it."""
    command = ["ln", "-s", str(target), str(link)]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "nobody", "--", *command]
    subprocess.run(command, check=True, capture_output=True)


def test_a_symlink_planted_in_the_lock_folder_is_refused_and_its_target_untouched(
        open_lock_folder, tmp_path):
    """Issue 27, 1: the lock followed a symlink, made its target world-writable (0666),
    emptied it and wrote its pid there."""
    victim = tmp_path / "victim"
    victim.write_text("data\n")
    victim.chmod(0o600)
    link = open_lock_folder / "autotune-tuner.lock"
    _plant_symlink(victim, link)
    # the lock is taken before any data or model work: a run that got past it would
    # prepare them and outlive the refusal's timeout
    run = autotune("--mode", "online", "--server", "local",
                   "--storage", f"sqlite:///{tmp_path}/s.db", "--report-dir", str(tmp_path / "r"),
                   home=tmp_path / "home", env={LOCK_FILE_ENV: str(link)})
    refused(run, "cannot open the host lock", str(link))
    assert victim.read_bytes() == b"data\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert link.is_symlink()
    assert not (tmp_path / "home").exists()
