"""The host lock: one holder at a time, released on exit, its pid in the refusal."""

import os

import pytest

from autotune.errors import UsageError
from autotune.host.lock import HostLock


def test_lock_refuses_a_second_holder_and_is_released(tmp_path):
    path = tmp_path / "tuner.lock"
    with HostLock(path):
        assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            HostLock(path).__enter__()
    with HostLock(path):  # released: the next tuner gets it
        pass
