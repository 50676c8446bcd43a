"""What a trial measures against a running server: the mode's objective and its attrs.

Shared by the search trials, the racing and the benchmarks, so all measure alike; the
server's start and stop around it are `autotune.measure.running`'s. A new mode's
measurement is one function in `MEASUREMENTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

from autotune.data.eval_rows import EvalRows
from autotune.measure.latency import measure_latency
from autotune.measure.peak import ServerLoad
from autotune.measure.rows import RequestRows
from autotune.measure.running import Client
from autotune.measure.signature import NCF_INPUTS, PairInputs, pair_rows
from autotune.measure.throughput import measure_throughput
from autotune.modes import BATCH, ONLINE, SERVER, Mode, get_mode
from autotune.options import DEFAULT_PRECISION, LatencyPolicy
from autotune.progress import PhaseCallback

#: distinct rows (eval pairs, or recorded rows) cycled through by batch-1 requests
ONLINE_PAIRS = 1000
#: hears a measurement's evidence as it comes (`Workload.measure`)
ValueCallback = Callable[[float], None]
#: one block of a side-by-side round (autotune.measure.side_by_side): the batch-1 requests sent
#: first to let the previous server's threads go quiet (not counted), then the large
#: batches counted (a batch's own two warm-up requests settle it)
BLOCK_SETTLE_REQUESTS = 20
BLOCK_BATCHES = 30


@dataclass(frozen=True)
class Workload:
    """What a trial measures: the mode, its objective and the rows of its requests, built
    once (online and server: a pool of rows, one request each; batch: the one request's)."""

    mode: Mode
    objective: str
    iterations: int
    rows: RequestRows
    latency_policy: LatencyPolicy = LatencyPolicy()
    #: how a server-mode trial loads the server (mode `server` only)
    server_load: ServerLoad | None = None
    #: the target of online and batch: the objective's 95% interval within this share of it
    precision: float = DEFAULT_PRECISION

    @classmethod
    def build(cls, mode: Mode | str, objective: str, batch_size: int, iterations: int,
              eval_rows: EvalRows, seed: int,
              latency_policy: LatencyPolicy = LatencyPolicy(),
              server_load: ServerLoad | None = None,
              precision: float = DEFAULT_PRECISION,
              inputs: PairInputs = NCF_INPUTS) -> "Workload":
        """Real eval pairs to the model's user and item `inputs`: a pool for batch-1
        requests, or one batch of `batch_size`."""
        mode = get_mode(mode)
        count = batch_size if mode.batched else ONLINE_PAIRS
        users, items = eval_rows.random_pairs(count, seed)
        return cls(mode=mode, objective=objective, iterations=iterations,
                   rows=pair_rows(users, items, inputs),
                   latency_policy=replace(latency_policy, precision=precision),
                   server_load=server_load, precision=precision)

    @classmethod
    def from_rows(cls, mode: Mode | str, objective: str, rows: RequestRows, batch_size: int,
                  iterations: int, seed: int, latency_policy: LatencyPolicy = LatencyPolicy(),
                  precision: float = DEFAULT_PRECISION) -> "Workload":
        """Recorded requests' rows (autotune.measure.records): a seeded pool of at most
        `ONLINE_PAIRS` for batch-1 requests, or one batch of `batch_size` rows made by
        joining them in order (again from the first when there are fewer)."""
        mode = get_mode(mode)
        pool = rows.cycled(batch_size) if mode.batched else rows.sample(ONLINE_PAIRS, seed)
        return cls(mode=mode, objective=objective, iterations=iterations, rows=pool,
                   latency_policy=replace(latency_policy, precision=precision),
                   precision=precision)

    @property
    def batch_size(self) -> int:
        """Rows per request: the batch's in batch mode, else 1."""
        return len(self.rows) if self.mode.batched else 1

    @property
    def direction(self) -> str:
        """The study direction of the mode (`minimize`, `maximize`)."""
        return self.mode.direction

    def block(self) -> "Workload":
        """This workload cut to one block of a side-by-side round (autotune.measure.side_by_side):
        a few settling requests, then one latency window or `BLOCK_BATCHES` batches, with
        no precision target (the round has its own)."""
        policy = replace(self.latency_policy, warmup_requests=BLOCK_SETTLE_REQUESTS,
                         min_windows=1, max_requests=self.latency_policy.window)
        return replace(self, iterations=BLOCK_BATCHES, latency_policy=policy, precision=0.0)

    def measure(self, clients: Sequence[Client], on_phase: PhaseCallback | None = None,
                in_flight: int = 1, on_value: ValueCallback | None = None
                ) -> tuple[float, dict[str, object]]:
        """The objective value and the trial attrs of one run against the servers' `clients`
        (one per instance), batch requests `in_flight` at a time per server. `on_value`
        hears the evidence as it comes (each latency window's statistic, each batch
        request's samples/s, each rate that missed the p99 bound); what it raises ends
        the run (the pruner's `optuna.TrialPruned`)."""
        return MEASUREMENTS[self.mode.name](self, clients, on_phase, in_flight, on_value)


def _measure_latency(workload: Workload, clients: Sequence[Client],
                     on_phase: PhaseCallback | None, in_flight: int,
                     on_value: ValueCallback | None) -> tuple[float, dict[str, object]]:
    """Batch-1 requests one after another to the first server: the `--objective` statistic."""
    latency = measure_latency(clients[0], workload.rows, workload.objective,
                              workload.latency_policy, on_phase, on_value)
    return latency.statistic(workload.objective), latency.attrs()


def _measure_throughput(workload: Workload, clients: Sequence[Client],
                        on_phase: PhaseCallback | None, in_flight: int,
                        on_value: ValueCallback | None) -> tuple[float, dict[str, object]]:
    """The same large batch until precise (at most `iterations` times), every server kept
    busy with `in_flight` requests at once: the total samples per second."""
    throughput = measure_throughput(clients, workload.rows, workload.iterations,
                                    in_flight=in_flight, precision=workload.precision,
                                    on_phase=on_phase, on_value=on_value)
    return throughput.samples_per_s, throughput.attrs()


def _measure_peak(workload: Workload, clients: Sequence[Client],
                  on_phase: PhaseCallback | None, in_flight: int,
                  on_value: ValueCallback | None) -> tuple[float, dict[str, object]]:
    """MLPerf LoadGen runs at rising rates, spread over the servers: the most requests/s
    under the p99 bound."""
    assert workload.server_load is not None, "mode server needs a ServerLoad"
    return workload.server_load.measure(clients, workload.rows, on_phase, on_value)


Measurement = Callable[[Workload, Sequence[Client], "PhaseCallback | None", int,
                        "ValueCallback | None"], tuple[float, dict[str, object]]]
#: what each mode measures, by mode name: the objective value and the trial attrs
MEASUREMENTS: dict[str, Measurement] = {
    ONLINE.name: _measure_latency,
    BATCH.name: _measure_throughput,
    SERVER.name: _measure_peak,
}
