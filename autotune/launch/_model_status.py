"""Polling a server's `ModelService.GetModelStatus` until the model is AVAILABLE.

Shared by every launcher. A server that is still starting answers UNAVAILABLE (not
listening yet) or NOT_FOUND / a non-AVAILABLE state (TF Serving while it loads); both
mean "ask again". A server that has exited, or a version that ended with an error,
means "stop asking".

The channel reconnects quickly: gRPC's default backoff after refused connections grows
to two minutes, so a server that began listening late, as when many start at once on a
busy host, was found only at the next attempt, past the start deadline. A channel of
its own (no shared subchannel) with a backoff capped at `MAX_RECONNECT_BACKOFF_MS` finds
it within that cap.
"""

from __future__ import annotations

import time
from typing import Callable

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

POLL_INTERVAL_S = 0.1
RPC_TIMEOUT_S = 2.0
MAX_RECONNECT_BACKOFF_MS = 250
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
                   ("grpc.use_local_subchannel_pool", 1)]
_State = get_model_status_pb2.ModelVersionStatus.State


class ServerNotAvailable(Exception):
    """Why the model did not become AVAILABLE (exit, load error, deadline)."""


def poll_until_available(address: str, model_name: str, deadline_s: float,
                         exit_reason: Callable[[], str | None]) -> None:
    """Return once `model_name` at `address` reports a version AVAILABLE.

    `exit_reason()` is asked before every poll; when it returns a text, the server has
    ended and waiting stops at once with that text.
    """
    deadline = time.monotonic() + deadline_s
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model_name
    last_answer = "no answer yet"
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        while True:
            reason = exit_reason()
            if reason:
                raise ServerNotAvailable(f"the server {reason}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerNotAvailable(f"still not AVAILABLE after {deadline_s:g}s "
                                         f"(last answer: {last_answer})")
            try:
                response = stub.GetModelStatus(request, timeout=min(RPC_TIMEOUT_S, remaining))
            except grpc.RpcError as error:
                last_answer = f"{error.code().name}: {error.details()}"
            else:
                versions = response.model_version_status
                if any(status.state == _State.AVAILABLE for status in versions):
                    return
                for status in response.model_version_status:
                    if status.state == _State.END and status.status.error_code:
                        raise ServerNotAvailable(f"version {status.version} failed to load: "
                                                 f"{status.status.error_message}")
                last_answer = ", ".join(f"version {status.version} {_State.Name(status.state)}"
                                        for status in versions) or "no versions"
            time.sleep(max(0.0, min(POLL_INTERVAL_S, deadline - time.monotonic())))
