"""The model called in-process, at given thread settings: the floor a server is held to.

Run as a child process (`python bench/inprocess.py ...`) with the settings in its
environment, because OpenMP reads `OMP_NUM_THREADS` and `KMP_*` once, at start. It
loads the model through the embedded server's own loader (autotune.serving.model) and
calls the signature on the same eval pairs the benchmarks send over gRPC, so the only
difference left is the server: gRPC, protobuf and the request handling. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

from autotune.data.eval_rows import EvalRows
from autotune.measure.workload import ONLINE_PAIRS
from autotune.modes import BATCH, ONLINE, get_mode
from autotune.serving.model import ServedModel

ONLINE_CALLS = 3000
WARMUP_CALLS = 50


def online_p50_ms(model: ServedModel, users: np.ndarray, items: np.ndarray) -> float:
    signature = model.signatures["serving_default"]
    inputs = [{"user_id": users[i:i + 1], "item_id": items[i:i + 1]} for i in range(len(users))]
    for index in range(WARMUP_CALLS):
        signature(inputs[index % len(inputs)])
    latencies = np.empty(ONLINE_CALLS)
    for index in range(ONLINE_CALLS):
        begin = time.perf_counter_ns()
        signature(inputs[index % len(inputs)])
        latencies[index] = (time.perf_counter_ns() - begin) / 1e6
    return float(np.percentile(latencies, 50))


def batch_throughput(model: ServedModel, users: np.ndarray, items: np.ndarray,
                     iterations: int) -> float:
    signature = model.signatures["serving_default"]
    inputs = {"user_id": users, "item_id": items}
    for _ in range(2):
        signature(inputs)
    begin = time.perf_counter_ns()
    for _ in range(iterations):
        signature(inputs)
    return len(users) * iterations / ((time.perf_counter_ns() - begin) / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True)
    parser.add_argument("--mode", choices=(ONLINE.name, BATCH.name), required=True)
    parser.add_argument("--intra", type=int, required=True)
    parser.add_argument("--inter", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    model = ServedModel("ncf", args.model_dir)
    eval_set = EvalRows.load(args.eval)
    if get_mode(args.mode).batched:
        users, items = eval_set.random_pairs(args.batch_size, seed=0)
        value = batch_throughput(model, users, items, args.iterations)
    else:
        users, items = eval_set.random_pairs(ONLINE_PAIRS, seed=0)
        value = online_p50_ms(model, users, items)
    print(json.dumps({"value": value}))


if __name__ == "__main__":
    main()
