"""The REST API's memory is bounded whatever clients send at once (issue 27, item 10):
a body over the limit is refused before it is read, and large bodies are parsed one at
a time. Measured as the growth of the real server process's peak resident memory
(`VmHWM`, reset first through /proc/PID/clear_refs), a property of the server, not a
speed of this host."""

from __future__ import annotations

import http.client
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
import pytest

from autotune.launch import ModelLocation, ServerSettings, make_launcher

CLIENTS = 4
MIB = 1 << 20


@pytest.fixture(scope="module")
def rest_server(small_assets) -> Iterator[tuple[str, int]]:
    """A local server of the small model with REST on; its REST address and pid."""
    with make_launcher("local", ModelLocation(Path(small_assets.model_dir)),
                       rest=True) as launcher:
        launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(120)
        yield launcher.rest_address, launcher.pid


def _rows(count: int, last_item: int | None = None) -> bytes:
    """A row-format predict body of `count` pairs (its last item id replaced if given)."""
    rows = [{"user_id": index % 300, "item_id": index % 500} for index in range(count)]
    if last_item is not None:
        rows[-1]["item_id"] = last_item
    return orjson.dumps({"instances": rows})


def _post(address: str, body: bytes) -> int:
    """The status of one predict; a server that refuses a body before reading it may
    reset the connection while it is still sent, and has answered by then."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        try:
            connection.request("POST", "/v1/models/ncf:predict", body=body,
                               headers={"Content-Type": "application/json"})
        except ConnectionError:
            pass
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _peak_growth_mib(pid: int, address: str, body: bytes) -> tuple[list[int], float]:
    """The statuses of `CLIENTS` posts of `body` at once, and how far they raised the
    server's peak resident memory above where it was, in MiB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
    before = _memory_kib(pid, "VmRSS")
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(lambda _: _post(address, body), range(CLIENTS)))
    return statuses, (_memory_kib(pid, "VmHWM") - before) / 1024


def test_bodies_over_the_limit_are_refused_before_they_are_read(rest_server):
    """Four refused 52 MB row-format bodies took the server from 1.2 to 3.3 GB."""
    address, pid = rest_server
    body = _rows(1_800_000)
    assert len(body) > 48 * MIB
    statuses, growth = _peak_growth_mib(pid, address, body)
    assert statuses == [413] * CLIENTS
    assert growth < 100, f"{growth:.0f} MiB for bodies that were never read"


def test_large_bodies_sent_at_once_are_parsed_one_at_a_time(rest_server):
    """Four 20 MB bodies (each refused after parsing, for an id out of range) cost
    about what one costs (7-14 times its size), not four times that."""
    address, pid = rest_server
    body = _rows(700_000, last_item=1_000_000)
    statuses, growth = _peak_growth_mib(pid, address, body)
    assert statuses == [400] * CLIENTS
    assert growth < 500, f"{growth:.0f} MiB for {CLIENTS} bodies of {len(body) / MIB:.0f} MiB"


def test_an_empty_columnar_batch_is_answered_as_over_grpc(rest_server):
    """It was refused as "float64": `[]` read as floats."""
    address, _ = rest_server
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request("POST", "/v1/models/ncf:predict",
                       body=orjson.dumps({"inputs": {"user_id": [], "item_id": []}}))
    response = connection.getresponse()
    assert (response.status, orjson.loads(response.read())) == (
        200, {"outputs": {"item_id": [], "rating": []}})
    connection.close()


def test_the_largest_request_a_run_sends_fits_the_limit():
    """The preflight caps a batch at the server's --max_batch_size; in the columnar format
    the REST client sends, that many pairs of the longest int32 ids fit the body limit."""
    from autotune.serving.options import DEFAULT_MAX_BATCH_SIZE
    from autotune.serving.rest import MAX_BODY_BYTES

    ids = np.full(DEFAULT_MAX_BATCH_SIZE, np.iinfo(np.int32).min, dtype=np.int32)
    body = orjson.dumps({"signature_name": "serving_default",
                         "inputs": {"user_id": ids, "item_id": ids}},
                        option=orjson.OPT_SERIALIZE_NUMPY)
    assert len(body) <= MAX_BODY_BYTES
