"""What the server adds: the model in-process vs through the embedded server vs the image.

At the same thread settings (the tutorial's, per mode), rounds measure the model called
in-process by a child process (bench/inprocess.py) and then served by each launcher,
back to back. The client's own share of a
request (protobuf encoding and decoding, and the bare gRPC round trip of a
`GetModelStatus`) is measured against a running embedded server, so a reader sees
where the time of one request goes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
import numpy as np
from harness import (
    BenchContext,
    Samples,
    format_interval,
    format_value,
    log,
    print_table,
    timed_trial,
)
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from autotune.measure.grpc_client import CHANNEL_OPTIONS
from autotune.measure.running import running_server
from autotune.measure.signature import NCF_INPUTS, pair_rows
from autotune.modes import get_mode
from autotune.paths import MODEL_NAME
from autotune.search.space import settings_from_params
from autotune.serving.tensors import decode

INPROCESS_WORKER = Path(__file__).with_name("inprocess.py")
IN_PROCESS = "in-process"
ROUNDS = 3
TIMED_CALLS = 2000


def inprocess(ctx: BenchContext, mode: str, params: dict[str, object]) -> float:
    """One child process calling the model directly: online p50 ms, or batch samples/s."""
    settings = settings_from_params(params)
    command = [sys.executable, str(INPROCESS_WORKER), "--model-dir", str(ctx.assets.model_dir),
               "--eval", str(ctx.assets.eval_path), "--mode", mode,
               "--intra", str(settings.intra_op_parallelism),
               "--inter", str(settings.inter_op_parallelism),
               "--batch-size", str(ctx.batch_size), "--iterations", str(ctx.sizes.iterations)]
    env = {**os.environ, **settings.env()}
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])["value"]


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
            request = server.client.request(pair_rows(users, items))
            response_bytes = predict(request).SerializeToString()
            calls = TIMED_CALLS if batch == 1 else 50
            encode = _median_us(request.SerializeToString, calls)
            key = NCF_INPUTS.score
            decode_us = _median_us(
                lambda response_bytes=response_bytes, key=key: decode(
                    predict_pb2.PredictResponse.FromString(response_bytes).outputs[key]),
                calls)
            costs.append(ClientCost(batch=batch, encode_us=encode, decode_us=decode_us,
                                    rpc_floor_us=rpc_floor))
        channel.close()
    return costs


@dataclass(frozen=True)
class Overhead:
    """In-process and served numbers of one mode, measured in the same rounds."""

    mode: str
    samples: dict[str, Samples]

    def server_overhead_ms(self, kind: str = "local") -> float:
        """Online: served p50 minus in-process p50 (means over the rounds)."""
        return self.samples[kind].mean - self.samples[IN_PROCESS].mean

    def efficiency(self, kind: str = "local") -> float:
        """Batch: served throughput as a share of in-process throughput."""
        return self.samples[kind].mean / self.samples[IN_PROCESS].mean


def measure_overhead(ctx: BenchContext,
                     params_by_mode: dict[str, dict[str, object]]) -> list[Overhead]:
    """Per mode, rounds of: the model in-process, then through each launcher's server.

    The three are measured back to back in every round, so a drift of the host touches
    all of them; online records p50, batch throughput.
    """
    results = []
    for mode, params in params_by_mode.items():
        samples = {name: Samples() for name in (IN_PROCESS, *ctx.launchers)}
        workload = ctx.workload(mode)
        for round_index in range(ROUNDS):
            samples[IN_PROCESS].values.append(inprocess(ctx, mode, params))
            for kind in ctx.launchers:
                with ctx.launcher(kind) as launcher:
                    timing = timed_trial(launcher, params, workload)
                value = timing.attrs[get_mode(mode).robust_attr]
                samples[kind].values.append(float(value))
            log(f"  overhead round {round_index + 1} {mode}: " + ", ".join(
                f"{name} {format_value(mode, s.values[-1])}" for name, s in samples.items()))
        results.append(Overhead(mode=mode, samples=samples))
    return results


def print_overhead(results: list[Overhead], costs: list[ClientCost]) -> None:
    launchers = [kind for kind in results[0].samples if kind != IN_PROCESS]
    print_table("What the server adds, tutorial settings (online: p50; batch: throughput; "
                "mean and 95% CI over interleaved rounds)",
                ["mode", "in-process", *(f"{kind} server" for kind in launchers),
                 *(f"{kind} vs in-process" for kind in launchers)],
                [(r.mode, format_interval(r.mode, r.samples[IN_PROCESS]),
                  *(format_interval(r.mode, r.samples[k]) for k in launchers),
                  *((f"{r.efficiency(k):.1%}" if get_mode(r.mode).batched
                     else f"+{r.server_overhead_ms(k):.3f} ms") for k in launchers))
                 for r in results])
    print_table("The client's own cost per request (microseconds, median)",
                ["batch", "encode request", "decode response", "bare gRPC round trip"],
                [(c.batch, f"{c.encode_us:.1f}", f"{c.decode_us:.1f}", f"{c.rpc_floor_us:.1f}")
                 for c in costs])
