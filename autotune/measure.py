"""One measurement of one configuration: restart the server with it, measure the objective.

Shared by the search trials and the confirmation round, so both measure alike. The
server is always stopped afterwards, also on an error or an interrupt. Failures come
out as `MeasurementError` with a reason fit for the trial's `failure` attr.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import grpc
import numpy as np

from autotune.client import (
    LatencyPolicy,
    PhaseCallback,
    ServingClient,
    measure_latency,
    measure_throughput,
)
from autotune.errors import ServerStartError
from autotune.eval_rows import EvalRows
from autotune.launch.base import Launcher, ServerSettings
from autotune.peak import BoundMissedError, ServerLoad

#: distinct eval pairs cycled through by the batch-1 latency run
ONLINE_PAIRS = 1000
#: `--request-timeout`: a few seconds above the slowest request of a default run (a
#: 50,000-pair batch or a 100,000-pair gate request takes 1-3 s on 2 busy cores), so a
#: paused or hung server fails its trial in seconds, not minutes
DEFAULT_REQUEST_TIMEOUT_S = 15.0


class MeasurementError(Exception):
    """The server failed to start or stopped answering; the message is the reason."""


@dataclass(frozen=True)
class Workload:
    """What a trial measures: the mode, its objective and the request inputs, built once."""

    mode: str
    objective: str
    iterations: int
    users: np.ndarray
    items: np.ndarray
    latency_policy: LatencyPolicy = LatencyPolicy()
    #: how a server-mode trial loads the server (mode `server` only)
    server_load: ServerLoad | None = None

    @classmethod
    def build(cls, mode: str, objective: str, batch_size: int, iterations: int,
              eval_rows: EvalRows, seed: int,
              latency_policy: LatencyPolicy = LatencyPolicy(),
              server_load: ServerLoad | None = None) -> "Workload":
        """Real eval pairs: a pool for batch-1 requests, or one batch of `batch_size`."""
        count = batch_size if mode == "batch" else ONLINE_PAIRS
        users, items = eval_rows.random_pairs(count, seed)
        return cls(mode=mode, objective=objective, iterations=iterations, users=users, items=items,
                   latency_policy=latency_policy, server_load=server_load)

    @property
    def metric_name(self) -> str:
        return {"online": "latency_ms", "server": "qps_at_slo"}.get(self.mode, "throughput_sps")

    @property
    def direction(self) -> str:
        return "minimize" if self.mode == "online" else "maximize"

    def measure(self, client: ServingClient,
                on_phase: PhaseCallback | None = None) -> tuple[float, dict[str, object]]:
        """The objective value and the trial attrs of one run against `client`."""
        if self.mode == "server":
            assert self.server_load is not None, "mode server needs a ServerLoad"
            try:
                return self.server_load.measure(client, self.users, self.items, on_phase)
            except BoundMissedError as error:
                raise MeasurementError(str(error)) from None
        if self.mode == "online":
            latency = measure_latency(client, self.users, self.items, self.objective,
                                      self.latency_policy, on_phase)
            return latency.statistic(self.objective), latency.attrs()
        throughput = measure_throughput(client, self.users, self.items, self.iterations,
                                        on_phase=on_phase)
        return throughput.samples_per_s, throughput.attrs()


@dataclass(frozen=True)
class RunningServer:
    """A started, AVAILABLE server and a client connected to it."""

    client: ServingClient
    startup_s: float


@contextmanager
def running_server(launcher: Launcher, settings: ServerSettings, model_name: str,
                   start_timeout_s: float,
                   request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> Iterator[RunningServer]:
    """Start a server with `settings`, yield it with a client, and always stop it.

    A failed start or a gRPC error while it runs (a request unanswered after
    `request_timeout_s` included) becomes `MeasurementError`, carrying the last lines of
    the server's log.
    """
    try:
        begin = time.monotonic()
        address = launcher.start(settings)
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
        launcher.stop()


def _log_tail(launcher: Launcher, lines: int = 5) -> str:
    try:
        return " | ".join(launcher.logs(lines).strip().splitlines())
    except Exception as error:  # the server is gone already; its log is a nicety
        return f"(no log: {error})"
