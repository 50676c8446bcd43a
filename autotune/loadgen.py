"""MLPerf LoadGen's Server scenario against a TF-Serving-compatible server.

LoadGen (the C++ load generator behind MLPerf Inference, `mlcommons-loadgen`) issues
queries at Poisson arrival times for a target rate and measures every latency from the
query's scheduled time, so a slow server cannot slow the load down (no coordinated
omission). autotune supplies its two halves:

- the Query Sample Library: the eval pairs, one Predict request each, serialized once
  up front (nothing to load or unload per run);
- the System Under Test: each issued query becomes an asynchronous gRPC Predict of its
  pair, completed back to LoadGen from the response callback; with several server
  instances the queries go to them in turn (round robin, one channel each, no
  extra work per query), so every instance gets an equal share. Requests go out as
  prepared bytes and responses are not decoded (only the status matters here), which
  keeps the adapter cheap enough to load a server at thousands of queries per second.

A run's verdict and statistics come from LoadGen's own detail log (`mlperf_log_detail.txt`,
beside `mlperf_log_summary.txt` in the run's folder): the run meets the bound when
LoadGen calls it VALID (p99 within the target latency, minimum duration and query count
met, early stopping satisfied) and no request failed.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import grpc
import mlperf_loadgen as lg

from autotune.client import CHANNEL_OPTIONS
from autotune.options import RunSettings

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
DETAIL_LOG = "mlperf_log_detail.txt"
SUMMARY_LOG = "mlperf_log_summary.txt"
MLLOG_PREFIX = ":::MLLOG "


@dataclass(frozen=True)
class RunResult:
    """One LoadGen run at one target rate, from its detail log."""

    target_qps: float
    scheduled_qps: float
    completed_qps: float
    queries: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    valid: bool
    errors: int
    log_dir: str
    first_error: str | None = None

    @property
    def meets_bound(self) -> bool:
        """LoadGen accepts the run (p99 within the bound, early stopping met) and none failed."""
        return self.valid and self.errors == 0

    def row(self) -> dict[str, object]:
        """The run as a trial attr row: rate tried, its percentiles, the verdict."""
        return {"qps": round(self.target_qps, 1), "p50_ms": round(self.p50_ms, 3),
                "p95_ms": round(self.p95_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "errors": self.errors, "ok": self.meets_bound}


class PredictSUT:
    """LoadGen's SUT and QSL over prepared Predict requests; use as a context manager.

    `addresses` are the servers (one per instance), `requests` serialized
    `PredictRequest`s, one per eval pair (the QSL's samples).
    """

    def __init__(self, addresses: str | Sequence[str], requests: Sequence[bytes],
                 timeout_s: float = 10.0) -> None:
        if not requests:
            raise ValueError("the query sample library needs at least one request")
        self._requests = list(requests)
        self._timeout_s = timeout_s
        addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        self._channels = [grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                          for address in addresses]
        # Raw bytes in and out: no per-query protobuf work on the load generator's side.
        self._predicts = itertools.cycle(
            [channel.unary_unary(PREDICT_METHOD, _registered_method=True).future
             for channel in self._channels])
        self._in_flight: dict[int, grpc.Future] = {}
        self._lock = threading.Lock()
        #: failed requests of the current run, and the first one's status
        self.errors = 0
        self.first_error: str | None = None
        self._sut = lg.ConstructSUT(self._issue, self._flush)
        self._qsl = lg.ConstructQSL(len(self._requests), len(self._requests),
                                    _load_nothing, _load_nothing)

    def __enter__(self) -> "PredictSUT":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        lg.DestroyQSL(self._qsl)
        lg.DestroySUT(self._sut)
        for channel in self._channels:
            channel.close()

    def _issue(self, samples: list) -> None:
        for sample in samples:
            future = next(self._predicts)(self._requests[sample.index], timeout=self._timeout_s)
            # gRPC cancels a call whose future is garbage: hold it until it completes.
            self._in_flight[sample.id] = future
            future.add_done_callback(
                lambda done, query_id=sample.id: self._complete(query_id, done))

    def _complete(self, query_id: int, future: grpc.Future) -> None:
        self._in_flight.pop(query_id, None)
        error = future.exception()
        if error is not None:
            with self._lock:
                self.errors += 1
                if self.first_error is None:
                    self.first_error = _describe(error)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(query_id, 0, 0)])

    @staticmethod
    def _flush() -> None:
        """Nothing is buffered: every query is sent when issued."""

    def run(self, target_qps: float, settings: RunSettings, log_dir: Path) -> RunResult:
        """One Server-scenario run at `target_qps`; its logs go to `log_dir`."""
        log_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.errors, self.first_error = 0, None
        lg.StartTestWithLogSettings(self._sut, self._qsl, _test_settings(target_qps, settings),
                                    _log_settings(log_dir))
        return read_run(log_dir, target_qps, self.errors, self.first_error)


def _load_nothing(_indices: list[int]) -> None:
    """The samples are prepared requests, always in memory."""


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.RpcError):
        return f"{error.code().name}: {error.details()}"
    return repr(error)


def _test_settings(target_qps: float, settings: RunSettings) -> "lg.TestSettings":
    test = lg.TestSettings()
    test.scenario = lg.TestScenario.Server
    test.mode = lg.TestMode.PerformanceOnly
    test.server_target_qps = float(target_qps)
    test.server_target_latency_ns = round(settings.bound_ms * 1e6)
    test.server_target_latency_percentile = 0.99
    test.min_duration_ms = round(settings.min_duration_s * 1000)
    longest_s = max(settings.max_duration_s, settings.min_duration_s,
                    2 * settings.min_queries / target_qps)
    test.max_duration_ms = round(longest_s * 1000)
    test.min_query_count = settings.min_queries
    test.qsl_rng_seed = test.sample_index_rng_seed = test.schedule_rng_seed = settings.seed
    return test


def _log_settings(log_dir: Path) -> "lg.LogSettings":
    logs = lg.LogSettings()
    logs.log_output.outdir = str(log_dir)
    logs.log_output.copy_summary_to_stdout = False
    logs.enable_trace = False  # the per-query trace is megabytes a run; the detail log suffices
    return logs


def read_detail_log(path: Path) -> dict[str, object]:
    """The `key -> value` pairs of a LoadGen detail log (its `:::MLLOG {json}` lines)."""
    values: dict[str, object] = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(MLLOG_PREFIX):
            entry = json.loads(line[len(MLLOG_PREFIX):])
            values[entry["key"]] = entry["value"]
    return values


def read_run(log_dir: Path, target_qps: float, errors: int,
             first_error: str | None = None) -> RunResult:
    """The result of the run whose logs are in `log_dir`."""
    values = read_detail_log(log_dir / DETAIL_LOG)

    def latency_ms(percentile: str) -> float:
        return float(values[f"result_{percentile}_percentile_latency_ns"]) / 1e6

    return RunResult(
        target_qps=target_qps,
        scheduled_qps=float(values["result_scheduled_samples_per_sec"]),
        completed_qps=float(values["result_completed_samples_per_sec"]),
        queries=int(values["result_query_count"]),
        p50_ms=latency_ms("50.00"), p95_ms=latency_ms("95.00"), p99_ms=latency_ms("99.00"),
        valid=values.get("result_validity") == "VALID",
        errors=errors + int(values.get("num_errors", 0)),
        log_dir=str(log_dir),
        first_error=first_error,
    )
