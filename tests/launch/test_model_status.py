"""Waiting for a server that begins listening late: it is found within the reconnect
cap, not at the next attempt of gRPC's default backoff (which grows to two minutes and
made servers started together on a busy host miss their start deadline)."""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from autotune.launch._model_status import (
    MAX_RECONNECT_BACKOFF_MS,
    ServerNotAvailable,
    poll_until_available,
)
from autotune.launch._ports import free_port

#: refused connections before the server listens: the default backoff then waits seconds more
REFUSED_S = 20.0


class AvailableModel(model_service_pb2_grpc.ModelServiceServicer):
    """Answers every status request with version 1 AVAILABLE."""

    def GetModelStatus(self, request, context):  # noqa: N802 (the gRPC method's name)
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = 1
        status.state = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
        return response


def test_a_server_that_listens_late_is_found_within_the_reconnect_cap() -> None:
    address = f"127.0.0.1:{free_port()}"
    found_at: list[float] = []

    def wait() -> None:
        poll_until_available(address, "ncf", REFUSED_S + 30, lambda: None)
        found_at.append(time.monotonic())

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    time.sleep(REFUSED_S)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(AvailableModel(), server)
    assert server.add_insecure_port(address)
    server.start()
    listening_at = time.monotonic()
    try:
        waiter.join(REFUSED_S + 30)
        assert found_at, "the waiter never saw the model AVAILABLE"
        assert found_at[0] - listening_at < MAX_RECONNECT_BACKOFF_MS / 1000 + 1.5
    finally:
        server.stop(0)


def test_the_deadline_names_the_last_answer() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    try:
        poll_until_available(address, "ncf", 1.0, lambda: None)
    except ServerNotAvailable as failure:
        assert "still not AVAILABLE after 1s" in str(failure)
        assert "UNAVAILABLE" in str(failure)
    else:
        raise AssertionError("nothing listens there, yet the model was AVAILABLE")
    assert time.monotonic() - started < 5
