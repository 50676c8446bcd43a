"""One server's life for one measurement: start, wait until AVAILABLE, connect, stop.

The tuner's trials, its racing and the benchmarks all measure through
`running_server`, so a configuration is started and stopped the same way wherever it
is measured. Its phases (`SERVER_START`, `MODEL_AVAILABLE`, `STOP`) are announced to an
optional hook as they begin: the progress display shows them, the benchmarks time them.

Failures come out as `MeasurementError` with a reason fit for the trial's `failure`
attr; the server is always stopped, also on an error or an interrupt. This module
imports the gRPC client (and with it TensorFlow's protos), unlike `autotune.launch`.
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

#: the phases of a server's life, as announced to the hook when they begin
SERVER_START = "server start"
MODEL_AVAILABLE = "model AVAILABLE"
STOP = "stop"


@dataclass(frozen=True)
class RunningServer:
    """A started, AVAILABLE server and a client connected to it."""

    client: ServingClient
    startup_s: float


def _no_hook(phase: str) -> None:
    """The default phase hook: announce nothing."""


@contextmanager
def running_server(launcher: Launcher, settings: ServerSettings, model_name: str,
                   start_timeout_s: float, on_phase: PhaseCallback = _no_hook,
                   request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
                   ) -> Iterator[RunningServer]:
    """Start a server with `settings`, yield it with a client, and always stop it.

    A failed start or a gRPC error while it runs (a request unanswered after
    `request_timeout_s` included) becomes `MeasurementError`, carrying the last lines of
    the server's log.
    """
    try:
        begin = time.monotonic()
        on_phase(SERVER_START)
        address = launcher.start(settings)
        on_phase(MODEL_AVAILABLE)
        launcher.wait_until_available(start_timeout_s)
        startup_s = time.monotonic() - begin
        with ServingClient(address, model_name, timeout_s=request_timeout_s) as client:
            yield RunningServer(client=client, startup_s=startup_s)
    except ServerStartError as error:
        raise MeasurementError(f"server did not start: {error}") from error
    except grpc.RpcError as error:
        raise MeasurementError(f"server stopped answering ({error.code().name}: "
                               f"{error.details()}); log tail: {_log_tail(launcher)}") from error
    finally:
        on_phase(STOP)
        launcher.stop()


def _log_tail(launcher: Launcher, lines: int = 5) -> str:
    try:
        return " | ".join(launcher.logs(lines).strip().splitlines())
    except Exception as error:  # the server is gone already; its log is a nicety
        return f"(no log: {error})"
