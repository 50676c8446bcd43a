"""One tuner per host, whatever `$AUTOTUNE_HOME` each one uses."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from autotune.errors import UsageError
from autotune.host.lock import LOCK_FILE_ENV, HostLock


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
