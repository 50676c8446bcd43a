"""One server's life for one measurement: start, wait until AVAILABLE, connect, stop.

With several instances (`ServerSettings.instances`, started by an `InstanceGroup`) the
server is all of them: one client of the measured protocol is connected to each (over
REST, to each instance's own REST port), and batch requests are kept `in_flight` at a
time on each (`requests_in_flight`).

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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator

import grpc

from autotune.errors import MeasurementError, ServerStartError
from autotune.launch.base import Launcher
from autotune.launch.settings import ServerSettings
from autotune.measure.grpc_client import ServingClient
from autotune.measure.rest_client import RestClient, RestError
from autotune.options import DEFAULT_REQUEST_TIMEOUT_S
from autotune.progress import PhaseCallback
from autotune.protocols import GRPC, REST

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
    """Started, AVAILABLE server(s) and a client connected to each."""

    clients: list[Client]
    startup_s: float
    #: batch requests to keep outstanding on each instance (`requests_in_flight`)
    in_flight: int = 1

    @property
    def client(self) -> Client:
        """The client of the first server (online requests, the accuracy gate)."""
        return self.clients[0]


def _no_hook(phase: str) -> None:
    """The default phase hook: announce nothing."""


@contextmanager
def running_server(launcher: Launcher, settings: ServerSettings, model_name: str,
                   start_timeout_s: float, on_phase: PhaseCallback = _no_hook,
                   request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                   protocol: str = GRPC) -> Iterator[RunningServer]:
    """Start the server(s) of `settings`, yield them with a client of `protocol` to each,
    and always stop them.

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
        in_flight = requests_in_flight(settings)
        with ExitStack() as stack:
            clients = [stack.enter_context(client) for client in
                       connect(launcher, model_name, protocol, request_timeout_s, in_flight)]
            yield RunningServer(clients=clients, startup_s=startup_s, in_flight=in_flight)
    except ServerStartError as error:
        raise MeasurementError(f"server did not start: {error}") from error
    except CLIENT_ERRORS as error:
        raise stopped_answering(launcher, error) from error
    finally:
        on_phase(STOP)
        launcher.stop()


def requests_in_flight(settings: ServerSettings) -> int:
    """Batch requests kept outstanding per server: its inter-op parallelism.

    Inter-op threads let a server run independent work side by side, and for a model
    like NCF, one chain of ops per request, that work is the next request: a server set
    to inter-op 2 is measured with two requests in flight, one set to 1 (the tutorial's
    batch setting) one request at a time, as the tutorial's client sends them.
    """
    return max(1, settings.inter_op_parallelism)


def connect(launcher: Launcher, model_name: str, protocol: str, timeout_s: float,
            in_flight: int = 1) -> list[Client]:
    """A client of `protocol` to each server `launcher` has started (and made AVAILABLE),
    whose every request gives up after `timeout_s` (`--request-timeout`); a REST client
    keeps a connection for each of `in_flight` outstanding requests."""
    if protocol == REST:
        if not launcher.rest_addresses:
            raise ValueError("REST is measured, but the launcher was made without rest=True")
        return [RestClient(address, model_name, timeout_s=timeout_s,
                           connections=max(2, in_flight))
                for address in launcher.rest_addresses]
    if not launcher.addresses:
        raise ValueError("connect() called before the launcher started a server")
    return [ServingClient(address, model_name, timeout_s=timeout_s)
            for address in launcher.addresses]


def stopped_answering(launcher: Launcher, error: Exception) -> MeasurementError:
    """The failure of a measurement whose server raised `error` (a `CLIENT_ERRORS` one),
    with the tail of the server's log."""
    return MeasurementError(f"server stopped answering ({failure(error)}); "
                            f"log tail: {_log_tail(launcher)}")


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
