"""MLPerf LoadGen's Server scenario against a TF-Serving-compatible server.

LoadGen (the C++ load generator behind MLPerf Inference, `mlcommons-loadgen`) issues
queries at Poisson arrival times for a target rate and measures every latency from the
query's scheduled time, so a slow server cannot slow the load down (no coordinated
omission). autotune supplies its two halves:

- the Query Sample Library: the workload's rows (eval pairs, or recorded requests'
  rows), one Predict request each, serialized once
  up front (nothing to load or unload per run);
- the System Under Test: each issued query becomes an asynchronous gRPC Predict of its
  pair, completed back to LoadGen when the response arrives; with several server
  instances the queries go to them in turn (round robin, one channel each, no extra
  work per query), so every instance gets an equal share. Requests go out as
  prepared bytes and responses are not decoded (only the status matters here), and the
  calls run in a couple of client processes fed through pipes, leaving LoadGen's
  process only the bookkeeping. The client processes are native (`autotune.measure.native`'s
  `loadgen_client`, gRPC's C++ callback API, 140-230 us of CPU a call here) where g++
  and gRPC's C++ headers are installed, else their Python twin
  (`autotune.measure.loadgen_worker`, 300-640 us a call under its GIL); on a
  2-core host that also runs the server, that is what keeps the adapter ahead of it at
  thousands of queries per second (BENCHMARKS.md, `loadgen_rps`).

A run's verdict and statistics come from LoadGen's own detail log (`mlperf_log_detail.txt`,
beside `mlperf_log_summary.txt` in the run's folder): the run meets the bound when
LoadGen calls it VALID (p99 within the target latency, minimum duration and query count
met, early stopping satisfied) and no request failed.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import selectors
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import grpc
import mlperf_loadgen as lg

from autotune.measure import native
from autotune.measure.loadgen_worker import DONE, ISSUE, READ_SIZE, frame_requests
from autotune.options import RunSettings

#: client processes sending the Predicts (a Python one tops out near 2,500 calls/s)
CLIENT_PROCESSES = 2
#: which client processes send the Predicts: the native one where it builds, else Python
NATIVE, PYTHON = "native", "python"
#: how long a client process may take to exit once its pipe closes
WORKER_EXIT_S = 10.0
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
#: gRPC status code number -> its name
_STATUS = {code.value[0]: code.name for code in grpc.StatusCode}
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
    `PredictRequest`s, one per eval pair (the QSL's samples). The calls run in
    `processes` client processes (`client_program`: native or Python), each with its own
    channel to every instance (used in turn): LoadGen's issue callback only writes each
    query to one of them (round robin) through a pipe, and one thread here reads what
    they report done and completes it back to LoadGen in batches. A worker that dies
    fails its outstanding queries instead of hanging the run.
    """

    def __init__(self, addresses: str | Sequence[str], requests: Sequence[bytes],
                 timeout_s: float = 10.0, processes: int = CLIENT_PROCESSES,
                 client: str | None = None) -> None:
        if not requests:
            raise ValueError("the query sample library needs at least one request")
        self._requests = list(requests)
        addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        #: the client processes' program (`client`: NATIVE, PYTHON, or None for the best here)
        self.client = client_program(client)
        self._lock = threading.Lock()
        #: failed requests of the current run, and the first one's status
        self.errors = 0
        self.first_error: str | None = None
        self._workers: list[_Worker] = []
        framed = frame_requests(self._requests)  # once: every worker reads the same bytes
        try:
            for _ in range(processes):
                self._workers.append(_Worker.start(self.client.argv, addresses, timeout_s,
                                                   framed))
        except BaseException:
            for worker in self._workers:
                worker.stop()
                os.close(worker.done_fd)
            raise
        self._turn = itertools.cycle(self._workers)
        self._reader = threading.Thread(target=self._read_done, name="loadgen-done",
                                        daemon=True)
        self._reader.start()
        self._sut = lg.ConstructSUT(self._issue, self._flush)
        self._qsl = lg.ConstructQSL(len(self._requests), len(self._requests),
                                    _load_nothing, _load_nothing)

    def __enter__(self) -> "PredictSUT":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """The client processes' ids (their CPU is the adapter's too)."""
        return [worker.process.pid for worker in self._workers]

    def close(self) -> None:
        lg.DestroyQSL(self._qsl)
        lg.DestroySUT(self._sut)
        for worker in self._workers:
            worker.stop()
        self._reader.join()

    def _issue(self, samples: list) -> None:
        worker = next(self._turn)
        ids = [sample.id for sample in samples]
        worker.outstanding.update(ids)
        try:
            os.write(worker.issue_fd, b"".join([ISSUE.pack(sample.id, sample.index)
                                                for sample in samples]))
        except OSError as error:  # the worker is gone: fail its queries now
            worker.outstanding.difference_update(ids)
            self._fail(ids, f"client process {worker.process.pid} gone ({error})")

    def _read_done(self) -> None:
        """Complete what the workers report done, one LoadGen call per read."""
        with selectors.DefaultSelector() as selector:
            for worker in self._workers:
                selector.register(worker.done_fd, selectors.EVENT_READ, worker)
            while selector.get_map():
                for key, _ in selector.select():
                    worker = key.data
                    chunk = os.read(worker.done_fd, READ_SIZE)
                    if chunk:
                        self._complete(worker, chunk)
                    else:  # the worker ended: whatever it still owed has failed
                        selector.unregister(worker.done_fd)
                        os.close(worker.done_fd)
                        lost, worker.outstanding = list(worker.outstanding), set()
                        self._fail(lost, f"client process {worker.process.pid} "
                                         f"exited ({worker.process.poll()})")

    def _complete(self, worker: "_Worker", chunk: bytes) -> None:
        data = worker.partial + chunk
        offset, responses = 0, []
        while offset + DONE.size <= len(data):
            query_id, code, length = DONE.unpack_from(data, offset)
            if offset + DONE.size + length > len(data):
                break
            if code:
                start = offset + DONE.size
                self._count_error(f"{_STATUS.get(code, code)}: "
                                  f"{data[start:start + length].decode(errors='replace')}")
            worker.outstanding.discard(query_id)
            responses.append(lg.QuerySampleResponse(query_id, 0, 0))
            offset += DONE.size + length
        worker.partial = data[offset:]
        if responses:
            lg.QuerySamplesComplete(responses)

    def _fail(self, query_ids: list[int], reason: str) -> None:
        for _ in query_ids:
            self._count_error(reason)
        if query_ids:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(query_id, 0, 0)
                                     for query_id in query_ids])

    def _count_error(self, description: str) -> None:
        with self._lock:
            self.errors += 1
            if self.first_error is None:
                self.first_error = description

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


@dataclass
class _Worker:
    """One client process (native or `autotune.measure.loadgen_worker`) and its pipes."""

    process: subprocess.Popen
    issue_fd: int
    done_fd: int
    #: queries sent to it and not yet reported done
    outstanding: set[int] = field(default_factory=set)
    #: the tail of a record split across reads
    partial: bytes = b""

    @classmethod
    def start(cls, program: Sequence[str], addresses: list[str], timeout_s: float,
              framed_requests: bytes) -> "_Worker":
        """Start `program` on its pipes and hand it the requests (`frame_requests`)."""
        issue_read, issue_fd = os.pipe()
        done_fd, done_write = os.pipe()
        # the same autotune as this process's, wherever it was imported from
        path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
        process = subprocess.Popen(
            [*program, str(issue_read), str(done_write), str(round(timeout_s * 1000)),
             *addresses],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(issue_read, done_write),
            env={**os.environ, "PYTHONPATH": path})
        os.close(issue_read)
        os.close(done_write)
        assert process.stdin is not None and process.stdout is not None
        with process.stdin:
            process.stdin.write(framed_requests)
        if process.stdout.readline().strip() != b"ready":
            os.close(issue_fd)
            os.close(done_fd)
            raise RuntimeError(f"a LoadGen client process failed to start "
                               f"(exit code {process.wait()}; its error is above)")
        return cls(process, issue_fd, done_fd)

    def stop(self) -> None:
        """End of file on its issue pipe ends it (LoadGen has nothing in flight by now)."""
        os.close(self.issue_fd)
        try:
            self.process.wait(WORKER_EXIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class ClientProgram:
    """The program every client process runs, which kind it is, and why not native."""

    kind: str
    argv: tuple[str, ...]
    #: for the Python client: why not the native one ("" when native)
    why: str = ""

    def describe(self) -> str:
        return self.kind if not self.why else f"{self.kind} ({self.why})"


@functools.cache
def client_program(kind: str | None = None) -> ClientProgram:
    """The client processes' program: `kind` (NATIVE or PYTHON), or None for native when
    it builds here and Python otherwise (the reason kept; the build is tried once)."""
    if kind not in (None, NATIVE, PYTHON):
        raise ValueError(f"no LoadGen client {kind!r}: {NATIVE} or {PYTHON}")
    if kind == PYTHON:
        why = "asked for"
    else:
        try:
            return ClientProgram(NATIVE, (str(native.build(native.LOADGEN_CLIENT)),))
        except native.NativeUnavailable as unavailable:
            if kind == NATIVE:
                raise
            why = f"native client unavailable: {unavailable}"
    return ClientProgram(PYTHON, (sys.executable, "-m", "autotune.measure.loadgen_worker"), why)


def _load_nothing(_indices: list[int]) -> None:
    """The samples are prepared requests, always in memory."""


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
