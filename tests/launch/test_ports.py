"""Ports for servers started together: free, distinct, and outside the ephemeral range."""

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from autotune.launch._ports import PortRotation, ephemeral_start, free_port, is_free


def test_ports_handed_out_together_are_distinct_free_and_below_the_ephemeral_range():
    with ThreadPoolExecutor(8) as pool:
        ports = list(pool.map(lambda _: free_port(), range(64)))
    assert len(set(ports)) == len(ports)
    assert all(10_000 <= port < ephemeral_start() and is_free(port) for port in ports)


@pytest.fixture
def held() -> Iterator[int]:
    """A port a listening socket holds for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_port_in_use_is_skipped(held: int):
    rotation = PortRotation(lowest=held, end=held + 2)
    assert [rotation.take(), rotation.take()] == [held + 1, held + 1]


def test_a_full_range_is_one_clear_error(held: int):
    with pytest.raises(OSError, match="no free TCP port"):
        PortRotation(lowest=held, end=held + 1).take()


def test_the_ephemeral_start_falls_back_to_linux_default(tmp_path):
    assert ephemeral_start(tmp_path / "missing") == 32_768
    (tmp_path / "range").write_text("40000\t60999\n")
    assert ephemeral_start(tmp_path / "range") == 40_000
