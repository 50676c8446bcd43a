"""The gRPC client of a TF-Serving-compatible server, and the two measurements a trial makes.

Input names and dtypes come from the model's `serving_default` signature as
`GetModelMetadata` reports it, so a model exported with `item_id` as uint16 (the
tutorial's way) is driven as correctly as the project's int32 export. Requests are
built once from numpy (`tensor_content`), never inside a timed loop.

- Online (`measure_latency`): batch-1 requests, one at a time, each timed with the
  monotonic `perf_counter_ns`, in windows of `window` requests, until the 95% interval
  of the objective is within `precision` of it (or a request/time cap is hit). The
  interval is that of the mean of the windows' values (the batch-means method:
  consecutive requests are correlated, windows of a few hundred much less so); the
  statistics are those of all measured requests.
- Batch (`measure_throughput`): the same large request sent again and again, as in the
  tutorial, until the 95% interval of the mean request time is within `precision` of
  it (at least `MIN_ITERATIONS`, at most `iterations` requests); samples per second
  over the whole run, and of each request. With several server instances the requests
  go to all of them at once, each kept busy with `in_flight` requests outstanding; the
  precision is that of the mean round trip over all of them and the samples per second
  are the total.

Both results carry the precision reached (the interval's half-width relative to the
value) and `converged` (False when a cap stopped the measurement first). The online
distribution (101 percentiles) and the per-request batch throughputs are stored as
trial attrs, so the HTML report can draw them for any stored study.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import grpc
import numpy as np

# The serving protos import TensorFlow; its C++ banner is noise in the tuner's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from autotune.errors import UsageError
from autotune.options import DEFAULT_PRECISION, LatencyPolicy
from autotune.serving.tensors import decode, numpy_dtype
from autotune.stats import relative_half_width

#: no message size limit: a large --batch-size or gate request can pass gRPC's 4 MiB default
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
PhaseCallback = Callable[[str], None]
#: batch requests measured at least, so that the interval has a few degrees of freedom
MIN_ITERATIONS = 5


@dataclass(frozen=True)
class InputSpec:
    """One request tensor: its key in the signature and the dtype the model wants."""

    key: str
    dtype_enum: int

    @property
    def dtype(self) -> np.dtype:
        return numpy_dtype(self.dtype_enum)


@dataclass(frozen=True)
class Signature:
    """What a predict request needs to know about the served model."""

    name: str
    user: InputSpec
    item: InputSpec
    output_key: str


class Sender(Protocol):
    """What the batch measurement drives: the gRPC `ServingClient` or the REST client."""

    def request(self, users: np.ndarray, items: np.ndarray) -> Any: ...

    def send_async(self, request: Any) -> Any: ...

    def receive(self, future: Any) -> np.ndarray: ...


class ServingClient:
    """A channel to one server and model; use as a context manager to close it."""

    def __init__(self, address: str, model_name: str, signature_name: str = "serving_default",
                 timeout_s: float = 120.0) -> None:
        self.address = address
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.signature = self._read_signature(signature_name)

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _read_signature(self, signature_name: str) -> Signature:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        response = self._stub.GetModelMetadata(request, timeout=self.timeout_s)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return pick_signature(self.model_name, signature_map, signature_name)

    def request(self, users: np.ndarray, items: np.ndarray) -> predict_pb2.PredictRequest:
        """A predict request for these (user, item) pairs, typed as the signature wants."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = self.signature.name
        request.output_filter.append(self.signature.output_key)
        for spec, values in ((self.signature.user, users), (self.signature.item, items)):
            request.inputs[spec.key].CopyFrom(_tensor_proto(np.asarray(values).ravel(), spec))
        return request

    def send(self, request: predict_pb2.PredictRequest) -> np.ndarray:
        """Send a prepared request; the scores, one per pair."""
        return self._scores(self._stub.Predict(request, timeout=self.timeout_s))

    def send_async(self, request: predict_pb2.PredictRequest) -> grpc.Future:
        """Send a prepared request without waiting; `receive` its future for the scores."""
        return self._stub.Predict.future(request, timeout=self.timeout_s)

    def receive(self, future: grpc.Future) -> np.ndarray:
        """The scores of a request sent with `send_async`, once it is answered."""
        return self._scores(future.result())

    def predict(self, users: np.ndarray, items: np.ndarray, batch_size: int = 100_000,
                in_flight: int = 2) -> np.ndarray:
        """Scores for any number of pairs, in requests of `batch_size` pairs.

        Up to `in_flight` requests are outstanding, so the client encodes the next batch
        while the server computes the current one.
        """
        users, items = np.asarray(users).ravel(), np.asarray(items).ravel()
        pending: deque[grpc.Future] = deque()
        scores: list[np.ndarray] = []
        for start in range(0, len(users), batch_size):
            request = self.request(users[start:start + batch_size], items[start:start + batch_size])
            pending.append(self.send_async(request))
            if len(pending) >= in_flight:
                scores.append(self.receive(pending.popleft()))
        scores.extend(self.receive(future) for future in pending)
        return np.concatenate(scores) if scores else np.empty(0, dtype=np.float32)

    def _scores(self, response: predict_pb2.PredictResponse) -> np.ndarray:
        return decode(response.outputs[self.signature.output_key]).ravel()


def pick_signature(model_name: str, signature_map: get_model_metadata_pb2.SignatureDefMap,
                   signature_name: str) -> Signature:
    """What a request needs of `signature_name` in a model's metadata: the user and item
    inputs with their dtypes, and the score output (`rating`, else the first)."""
    if signature_name not in signature_map.signature_def:
        raise UsageError(f"model {model_name!r} has no signature {signature_name!r}; "
                         f"it has {sorted(signature_map.signature_def)}")
    signature = signature_map.signature_def[signature_name]
    inputs = {key: info.dtype for key, info in signature.inputs.items()}
    user_key, item_key = _input_key(inputs, "user"), _input_key(inputs, "item")
    outputs = list(signature.outputs)
    output_key = "rating" if "rating" in outputs else outputs[0]
    return Signature(signature_name, InputSpec(user_key, inputs[user_key]),
                     InputSpec(item_key, inputs[item_key]), output_key)


def _input_key(inputs: dict[str, int], role: str) -> str:
    matches = [key for key in inputs if role in key.lower()]
    if len(matches) != 1:
        raise UsageError(f"cannot tell the {role} input among the signature inputs "
                         f"{sorted(inputs)}")
    return matches[0]


def _tensor_proto(values: np.ndarray, spec: InputSpec) -> tensor_pb2.TensorProto:
    """A packed 1-D TensorProto of `values` cast to the input's dtype."""
    return tensor_pb2.TensorProto(
        dtype=spec.dtype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))]),
        tensor_content=values.astype(spec.dtype, copy=False).tobytes(),
    )


@dataclass(frozen=True)
class LatencyResult:
    """Batch-1 latency statistics in milliseconds over every measured request."""

    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    precision: float
    converged: bool
    #: the 0th..100th percentiles of the same requests: the distribution, compactly
    percentiles_ms: tuple[float, ...] = ()

    def statistic(self, objective: str) -> float:
        """The value of `--objective` (`mean`, `p50`, `p95` or `p99`)."""
        return float(getattr(self, f"{objective}_ms"))

    def attrs(self) -> dict[str, float | int | bool | list[float] | None]:
        """Trial user attrs, named as docs/DESIGN.md fixes them."""
        return {"latency_ms_mean": self.mean_ms, "latency_ms_p50": self.p50_ms,
                "latency_ms_p95": self.p95_ms, "latency_ms_p99": self.p99_ms,
                "measured_requests": self.requests, "precision": _finite(self.precision),
                "converged": self.converged,
                "latency_ms_percentiles": [round(value, 4) for value in self.percentiles_ms]}


def latency_statistics(latencies_ms: np.ndarray) -> dict[str, float]:
    """Mean and percentiles of a set of latencies."""
    p50, p95, p99 = np.percentile(latencies_ms, [50, 95, 99])
    return {"mean": float(np.mean(latencies_ms)), "p50": float(p50), "p95": float(p95),
            "p99": float(p99)}


def measure_latency(client: ServingClient, users: np.ndarray, items: np.ndarray,
                    objective: str = "mean", policy: LatencyPolicy = LatencyPolicy(),
                    on_phase: PhaseCallback | None = None) -> LatencyResult:
    """Batch-1 latency over the (user, item) pairs given, cycled; see the module docstring."""
    requests = [client.request(users[i:i + 1], items[i:i + 1]) for i in range(len(users))]
    _notify(on_phase, "warm-up")
    for index in range(policy.warmup_requests):
        client.send(requests[index % len(requests)])
    _notify(on_phase, "measuring")
    windows: list[np.ndarray] = []
    window_values: list[float] = []
    started = time.monotonic()
    sent = 0
    while True:
        latencies = np.empty(policy.window, dtype=np.float64)
        for slot in range(policy.window):
            request = requests[sent % len(requests)]
            begin = time.perf_counter_ns()
            client.send(request)
            latencies[slot] = (time.perf_counter_ns() - begin) / 1e6
            sent += 1
        windows.append(latencies)
        window_values.append(latency_statistics(latencies)[objective])
        precision = relative_half_width(window_values)
        converged = len(windows) >= policy.min_windows and precision <= policy.precision
        capped = sent >= policy.max_requests or time.monotonic() - started >= policy.max_seconds
        if converged or capped:
            break
    measured = np.concatenate(windows)
    stats = latency_statistics(measured)
    return LatencyResult(mean_ms=stats["mean"], p50_ms=stats["p50"], p95_ms=stats["p95"],
                         p99_ms=stats["p99"], requests=sent, precision=precision,
                         converged=converged,
                         percentiles_ms=tuple(np.percentile(measured, np.arange(101)).tolist()))


@dataclass(frozen=True)
class ThroughputResult:
    """Samples per second of `iterations` requests of `batch_size` pairs, over all instances."""

    samples_per_s: float
    batch_size: int
    iterations: int
    seconds: float
    precision: float
    converged: bool
    instances: int = 1
    in_flight: int = 1
    #: samples per second of each request, in the order answered (see `measure_throughput`)
    request_sps: tuple[float, ...] = ()

    def attrs(self) -> dict[str, float | int | bool | list[float] | None]:
        return {"throughput_sps": self.samples_per_s, "measured_requests": self.iterations,
                "precision": _finite(self.precision), "converged": self.converged,
                "in_flight": self.in_flight,
                "request_sps": [round(value, 1) for value in self.request_sps]}


def measure_throughput(clients: Sequence[Sender], users: np.ndarray, items: np.ndarray,
                       iterations: int, in_flight: int = 1, warmup_requests: int = 2,
                       precision: float = DEFAULT_PRECISION,
                       on_phase: PhaseCallback | None = None) -> ThroughputResult:
    """Throughput of one request of all the pairs, sent until precise (at most `iterations`).

    Every client (one per server instance) is driven at once, each with up to
    `in_flight` requests outstanding; one client with `in_flight=1` sends them one after
    another. The measurement stops once the 95% interval of the mean round trip, over
    every request answered, is within `precision` of it (from `MIN_ITERATIONS`, and at
    least one round of every client's `in_flight`), or at `iterations` requests; the
    samples per second are those of every request over the wall time. Each request's own
    throughput is its samples times the requests outstanding at once over its round trip
    (Little's law: with one outstanding, its samples over its time), so the per-request
    values of one and of several instances are comparable.
    """
    request = clients[0].request(users, items)
    concurrent = len(clients) * in_flight
    _notify(on_phase, "warm-up")
    _in_parallel(clients,
                 lambda client: _drive(client, request, in_flight, _Quota(warmup_requests)))
    _notify(on_phase, "measuring")
    quota = _Quota(max(iterations, concurrent), max(MIN_ITERATIONS, concurrent), precision)
    begin = time.perf_counter_ns()
    _in_parallel(clients, lambda client: _drive(client, request, in_flight, quota))
    seconds = (time.perf_counter_ns() - begin) / 1e9
    round_trips = np.array(quota.round_trips)
    reached = relative_half_width(quota.round_trips)
    return ThroughputResult(samples_per_s=len(users) * len(round_trips) / seconds,
                            batch_size=len(users), iterations=len(round_trips), seconds=seconds,
                            precision=reached, converged=reached <= precision,
                            instances=len(clients), in_flight=in_flight,
                            request_sps=tuple((len(users) * concurrent / round_trips).tolist()))


class _Quota:
    """The requests the clients of one measurement may still send, shared by their threads:
    at most `most`, and none more once `least` are answered with the mean round trip
    within `precision` (None: send `most`)."""

    def __init__(self, most: int, least: int = 0, precision: float | None = None) -> None:
        self.most, self.least, self.precision = most, least, precision
        self.round_trips: list[float] = []
        self._sent = 0
        self._enough = False
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Whether one more request may be sent (and count it as sent)."""
        with self._lock:
            if self._enough or self._sent >= self.most:
                return False
            self._sent += 1
            return True

    def answered(self, seconds: float) -> None:
        """Record one round trip; enough once the interval is within the precision."""
        with self._lock:
            self.round_trips.append(seconds)
            self._enough = (self.precision is not None and len(self.round_trips) >= self.least
                            and relative_half_width(self.round_trips) <= self.precision)


def _drive(client: Sender, request: Any, in_flight: int, quota: _Quota) -> None:
    """Send `request` while `quota` allows, up to `in_flight` outstanding; record each
    round trip in `quota`."""
    pending: deque[tuple[int, Any]] = deque()

    def receive_one() -> None:
        sent_at, future = pending.popleft()
        client.receive(future)
        quota.answered((time.perf_counter_ns() - sent_at) / 1e9)

    while quota.take():
        pending.append((time.perf_counter_ns(), client.send_async(request)))
        if len(pending) >= in_flight:
            receive_one()
    while pending:
        receive_one()


def _in_parallel(clients: Sequence[Sender], action: Callable[[Sender], None]) -> None:
    """`action` on every client at once (in this thread when there is one client)."""
    if len(clients) == 1:
        action(clients[0])
        return
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for future in [pool.submit(action, client) for client in clients]:
            future.result()


def _finite(value: float) -> float | None:
    """JSON has no infinity: an interval that could not be computed is stored as None."""
    return value if math.isfinite(value) else None


def _notify(on_phase: PhaseCallback | None, phase: str) -> None:
    if on_phase is not None:
        on_phase(phase)
