"""The LoadGen adapter on its own against a real server, with each kind of client process
(native and Python): every query answered, failures counted with their status, a dead
client process failing its queries instead of hanging; and the fallback to the Python
client where the native one cannot be built.

The runs are short and at a low rate (the suite shares two busy cores): what is checked
is the bookkeeping between LoadGen, the client processes and the server, not speed.
"""

from __future__ import annotations

import socket

import psutil
import pytest

from autotune.measure import native
from autotune.measure.grpc_client import ServingClient
from autotune.measure.loadgen import NATIVE, PYTHON, PredictSUT, client_program
from autotune.measure.signature import pair_rows
from autotune.options import RunSettings

SHORT = RunSettings(min_duration_s=0.5, min_queries=200, max_duration_s=3.0,
                    request_timeout_s=5.0)
RATE = 200.0


@pytest.fixture(scope="module")
def requests(server_address) -> list[bytes]:
    with ServingClient(server_address, "ncf") as client:
        return [client.request(pair_rows([user], [user + 1])).SerializeToString()
                for user in range(16)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_query_is_answered_by_a_real_server(server_address, requests, loadgen_client,
                                                  tmp_path):
    with PredictSUT(server_address, requests, processes=2, client=loadgen_client) as sut:
        assert sut.client.kind == loadgen_client
        workers = [psutil.Process(pid) for pid in sut.pids]
        run = sut.run(RATE, SHORT, tmp_path / "run")
    assert run.errors == 0 and run.first_error is None
    assert run.queries >= SHORT.min_queries and run.completed_qps > 0
    assert (tmp_path / "run" / "mlperf_log_detail.txt").exists()
    assert not any(worker.is_running() for worker in workers)  # none left behind


def test_failed_requests_are_counted_with_their_status(requests, loadgen_client, tmp_path):
    with PredictSUT(f"127.0.0.1:{_closed_port()}", requests, processes=2,
                    client=loadgen_client) as sut:
        run = sut.run(RATE, SHORT, tmp_path / "run")
    assert run.errors == run.queries and not run.meets_bound
    assert run.first_error.startswith("UNAVAILABLE: ")


def test_a_dead_client_process_fails_its_queries_instead_of_hanging(server_address, requests,
                                                                   loadgen_client, tmp_path):
    with PredictSUT(server_address, requests, processes=2, client=loadgen_client) as sut:
        victim = psutil.Process(sut.pids[0])  # before the kill: the SUT reaps it at once
        victim.kill()
        victim.wait(10)
        run = sut.run(RATE, SHORT, tmp_path / "run")
    # the survivor answers its share; the dead one's share fails, and the run ends
    assert 0 < run.errors < run.queries
    assert f"client process {sut.pids[0]}" in run.first_error


def test_without_a_toolchain_the_python_client_is_used_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTUNE_HOME", str(tmp_path / "home"))  # nothing built there
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++, no pkg-config
    client_program.cache_clear()
    try:
        program = client_program()
        with pytest.raises(native.NativeUnavailable, match="g\\+\\+ not found"):
            client_program(NATIVE)
    finally:
        client_program.cache_clear()
    assert program.kind == PYTHON and "g++ not found" in program.describe()
    assert "apt-get install g++ pkg-config libgrpc++-dev" in program.why


def test_a_source_that_does_not_compile_says_so_and_leaves_nothing(native_toolchain, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("AUTOTUNE_HOME", str(tmp_path / "home"))
    broken = tmp_path / "broken.cc"
    broken.write_text("int main() { return missing; }\n")
    with pytest.raises(native.NativeUnavailable, match="g\\+\\+ failed to build broken.cc: "):
        native.build(broken)
    assert not list((tmp_path / "home" / "native").iterdir())
