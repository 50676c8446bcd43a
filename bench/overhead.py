"""What the server adds: the model in-process vs through the embedded server vs the image.

At the same thread settings (the tutorial's, per mode), the in-process numbers come
from a child process that calls the signature directly (bench/inprocess.py); the served
numbers are the restart runs of bench/repeatability.py. The client's own share of a
request (protobuf encoding and decoding, and the bare gRPC round trip of a
`GetModelStatus`) is measured against a running embedded server, so a reader sees
where the time of one request goes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
import numpy as np
from tensorflow_serving.apis import (get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from autotune.client import CHANNEL_OPTIONS
from autotune.measure import running_server
from autotune.paths import MODEL_NAME
from autotune.serving.tensors import decode
from autotune.space import settings_from_params
from harness import BenchContext, format_value, log, print_table
from repeatability import RestartRuns

INPROCESS_WORKER = Path(__file__).with_name("inprocess.py")
INPROCESS_RUNS = 3
TIMED_CALLS = 2000


def inprocess(ctx: BenchContext, mode: str, params: dict[str, object]) -> float:
    """Median over a few child processes: online p50 ms, or batch samples/s."""
    settings = settings_from_params(params)
    command = [sys.executable, str(INPROCESS_WORKER), "--model-dir", str(ctx.assets.model_dir),
               "--eval", str(ctx.assets.eval_path), "--mode", mode,
               "--intra", str(settings.intra_op_parallelism),
               "--inter", str(settings.inter_op_parallelism),
               "--batch-size", str(ctx.batch_size), "--iterations", str(ctx.sizes.iterations)]
    env = {**os.environ, **settings.env(), "PYTHONPATH": str(Path.cwd())}
    values = []
    for run in range(INPROCESS_RUNS):
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        values.append(result["p50_ms"] if mode == "online" else result["throughput_sps"])
        log(f"  in-process {mode} run {run + 1}: {format_value(mode, values[-1])}")
    return statistics.median(values)


def _median_us(action: Callable[[], object], calls: int = TIMED_CALLS) -> float:
    timings = np.empty(calls)
    for index in range(calls):
        begin = time.perf_counter_ns()
        action()
        timings[index] = (time.perf_counter_ns() - begin) / 1e3
    return float(np.median(timings))


@dataclass(frozen=True)
class ClientCost:
    """Microseconds the client spends per request outside the server, by batch size."""

    batch: int
    encode_us: float
    decode_us: float
    rpc_floor_us: float


def client_costs(ctx: BenchContext, params: dict[str, object]) -> list[ClientCost]:
    """Encoding, decoding and the bare RPC round trip, against a running embedded server."""
    costs = []
    with ctx.launcher("local") as launcher, running_server(
            launcher, settings_from_params(params), MODEL_NAME, 120.0) as server:
        channel = grpc.insecure_channel(launcher.address, options=CHANNEL_OPTIONS)
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = MODEL_NAME
        rpc_floor = _median_us(lambda: status(status_request))
        for batch in (1, ctx.batch_size):
            users, items = ctx.eval_set.random_pairs(batch, seed=0)
            request = server.client.request(users, items)
            response_bytes = predict(request).SerializeToString()
            calls = TIMED_CALLS if batch == 1 else 50
            encode = _median_us(request.SerializeToString, calls)
            key = server.client.signature.output_key
            decode_us = _median_us(
                lambda: decode(predict_pb2.PredictResponse.FromString(response_bytes).outputs[key]),
                calls)
            costs.append(ClientCost(batch=batch, encode_us=encode, decode_us=decode_us,
                                    rpc_floor_us=rpc_floor))
        channel.close()
    return costs


@dataclass(frozen=True)
class Overhead:
    mode: str
    inprocess: float
    served: dict[str, float]

    def server_overhead_ms(self, kind: str = "local") -> float:
        """Online: served p50 minus in-process p50."""
        return self.served[kind] - self.inprocess

    def efficiency(self, kind: str = "local") -> float:
        """Batch: served throughput as a share of in-process throughput."""
        return self.served[kind] / self.inprocess


def measure_overhead(ctx: BenchContext, runs: list[RestartRuns]) -> list[Overhead]:
    results = []
    for mode in ("online", "batch"):
        mode_runs = [r for r in runs if r.mode == mode]
        floor = inprocess(ctx, mode, mode_runs[0].params)
        results.append(Overhead(mode=mode, inprocess=floor,
                                served={r.launcher: r.samples.mean for r in mode_runs}))
    return results


def print_overhead(results: list[Overhead], costs: list[ClientCost]) -> None:
    launchers = sorted({kind for r in results for kind in r.served})
    print_table("What the server adds, tutorial settings (online: p50; batch: throughput)",
                ["mode", "in-process", *(f"{kind} server" for kind in launchers),
                 *(f"{kind} vs in-process" for kind in launchers)],
                [(r.mode, format_value(r.mode, r.inprocess),
                  *(format_value(r.mode, r.served[k]) for k in launchers),
                  *((f"+{r.server_overhead_ms(k):.3f} ms" if r.mode == "online"
                     else f"{r.efficiency(k):.1%}") for k in launchers)) for r in results])
    print_table("The client's own cost per request (microseconds, median)",
                ["batch", "encode request", "decode response", "bare gRPC round trip"],
                [(c.batch, f"{c.encode_us:.1f}", f"{c.decode_us:.1f}", f"{c.rpc_floor_us:.1f}")
                 for c in costs])
