"""One server's life for one measurement: start, wait until AVAILABLE, connect, stop.

The tuner's trials, its racing and the benchmarks all measure through
`running_server`, so a configuration is started and stopped the same way wherever it
is measured. Its phases (`SERVER_START`, `MODEL_AVAILABLE`, `STOP`) are announced to an
optional hook as they begin: the progress display shows them, the benchmarks time them.
The client is the measured protocol's (`connect`): the gRPC `ServingClient` or the REST
`RestClient`, one surface, so what measures through it does not know which it drives.

Failures come out as `MeasurementError` with a reason fit for the trial's `failure`
attr; the server is always stopped, also on an error or an interrupt. This module
imports both clients (and with them TensorFlow's protos), unlike `autotune.launch`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import grpc

from autotune.client import PhaseCallback, ServingClient
from autotune.errors import MeasurementError, ServerStartError
from autotune.launch.base import Launcher, ServerSettings
from autotune.options import DEFAULT_REQUEST_TIMEOUT_S
from autotune.protocols import GRPC, REST
from autotune.rest_client import RestClient, RestError

#: the phases of a server's life, as announced to the hook when they begin
SERVER_START = "server start"
MODEL_AVAILABLE = "model AVAILABLE"
STOP = "stop"
#: what a client raises when its server refused a request or stopped answering
CLIENT_ERRORS: tuple[type[Exception], ...] = (grpc.RpcError, RestError)

#: both clients have one surface (`request`, `send`, `predict`, `signature`), so the
#: measurements and the accuracy gate do not know which protocol they drive
Client = ServingClient | RestClient


@dataclass(frozen=True)
class RunningServer:
    """A started, AVAILABLE server and a client connected to it."""

    client: Client
    startup_s: float


def _no_hook(phase: str) -> None:
    """The default phase hook: announce nothing."""


@contextmanager
def running_server(launcher: Launcher, settings: ServerSettings, model_name: str,
                   start_timeout_s: float, on_phase: PhaseCallback = _no_hook,
                   request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                   protocol: str = GRPC) -> Iterator[RunningServer]:
    """Start a server with `settings`, yield it with a client of `protocol`, and always
    stop it.

    A failed start or a client error while it runs (a request unanswered after
    `request_timeout_s` included) becomes `MeasurementError`, carrying the last lines of
    the server's log.
    """
    try:
        begin = time.monotonic()
        on_phase(SERVER_START)
        launcher.start(settings)
        on_phase(MODEL_AVAILABLE)
        launcher.wait_until_available(start_timeout_s)
        startup_s = time.monotonic() - begin
        with connect(launcher, model_name, protocol, request_timeout_s) as client:
            yield RunningServer(client=client, startup_s=startup_s)
    except ServerStartError as error:
        raise MeasurementError(f"server did not start: {error}") from error
    except CLIENT_ERRORS as error:
        raise MeasurementError(f"server stopped answering ({failure(error)}); "
                               f"log tail: {_log_tail(launcher)}") from error
    finally:
        on_phase(STOP)
        launcher.stop()


def connect(launcher: Launcher, model_name: str, protocol: str, timeout_s: float) -> Client:
    """A client of `protocol` to the server `launcher` has started (and made AVAILABLE),
    whose every request gives up after `timeout_s` (`--request-timeout`)."""
    if protocol == REST:
        if launcher.rest_address is None:
            raise ValueError("REST is measured, but the launcher was made without rest=True")
        return RestClient(launcher.rest_address, model_name, timeout_s=timeout_s)
    if launcher.address is None:
        raise ValueError("connect() called before the launcher started a server")
    return ServingClient(launcher.address, model_name, timeout_s=timeout_s)


def failure(error: Exception) -> str:
    """One line on what a `CLIENT_ERRORS` error says: the gRPC status, or the HTTP answer."""
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error)


def _log_tail(launcher: Launcher, lines: int = 5) -> str:
    try:
        return " | ".join(launcher.logs(lines).strip().splitlines())
    except Exception as error:  # the server is gone already; its log is a nicety
        return f"(no log: {error})"
