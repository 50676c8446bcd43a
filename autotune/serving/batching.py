"""Server-side batching of concurrent Predict calls, the way TF Serving's batching layer does it.

With `--enable_batching`, a Predict call does not run the model itself: once its
request is checked and decoded (so a malformed request fails alone, before batching),
its inputs join the open batch of its signature and the gRPC thread waits. Batch
threads (`num_batch_threads`) run batches in arrival order; a batch goes when it is
full (`max_batch_size` rows, or the next task does not fit), or when its oldest task
has waited `batch_timeout_micros`, whichever comes first. The batch's inputs are
concatenated along dimension 0, padded to the next of `allowed_batch_sizes` (with
copies of the first row, as TF Serving pads), run once, and the outputs are split back
per request. More than `max_enqueued_batches` waiting batches, or a request larger than
`max_batch_size`, are refused with TF Serving's status and message.

One departure, on purpose: when the model fails on a batch of several requests (an id
out of the embedding's range, say), every request of the batch runs again alone, so
only the bad one fails.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping

import grpc
import numpy as np
import tensorflow as tf

from autotune.serving.batching_config import BatchingParameters
from autotune.serving.model import ServedSignature
from autotune.serving.validation import RequestError

Arrays = dict[str, np.ndarray]
#: runs a signature on decoded inputs: the plain call, or `BatchScheduler.run`
Runner = Callable[[ServedSignature, Mapping[str, np.ndarray]], Arrays]
#: gRPC threads are where requests wait for their batch: enough for two full batches,
#: as TF Serving's docs advise for client threads, within a sane bound
MAX_GRPC_THREADS_WITH_BATCHING = 256


def unbatched(signature: ServedSignature, inputs: Mapping[str, np.ndarray]) -> Arrays:
    """Run the signature on one request's inputs (no batching)."""
    return signature(inputs)


def grpc_threads(grpc_max_threads: int, parameters: BatchingParameters | None) -> int:
    """The gRPC worker threads: `grpc_max_threads`, more when requests wait for batches."""
    if parameters is None:
        return grpc_max_threads
    wanted = 2 * parameters.max_batch_size * parameters.batch_threads
    return max(grpc_max_threads, min(wanted, MAX_GRPC_THREADS_WITH_BATCHING))


@dataclass
class _Task:
    """One request waiting in a batch: its inputs, rows, and (once run) its result."""

    inputs: Mapping[str, np.ndarray]
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    outputs: Arrays | None = None
    error: BaseException | None = None


@dataclass
class _Batch:
    """Tasks of one signature that will run together."""

    signature: ServedSignature
    opened: float
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0
    closed: bool = False


def task_size(inputs: Mapping[str, np.ndarray]) -> int:
    """The rows of a request: the common dimension 0 of its inputs, else `RequestError`."""
    sizes = {array.shape[0] if array.ndim else None for array in inputs.values()}
    if None in sizes:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           "Batching Run() input tensors must have at least one dimension")
    if len(sizes) != 1:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           "Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def padded_size(size: int, allowed: tuple[int, ...]) -> int:
    """The smallest allowed batch size >= `size` (`size` itself when none are given)."""
    return next((choice for choice in allowed if choice >= size), size)


def run_batch(signature: ServedSignature, tasks: list[_Task],
              allowed_batch_sizes: tuple[int, ...]) -> None:
    """Run `tasks` as one batch and hand each its rows of the outputs (or its error)."""
    total = sum(task.size for task in tasks)
    padding = padded_size(total, allowed_batch_sizes) - total
    merged = {}
    for name in signature.inputs:
        parts = [task.inputs[name] for task in tasks]
        if padding:
            parts.append(np.repeat(parts[0][:1], padding, axis=0))
        merged[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    try:
        outputs = signature(merged)
    except tf.errors.OpError as error:
        if len(tasks) == 1:
            tasks[0].error = error
        else:  # find the culprit: each request alone
            for task in tasks:
                run_batch(signature, [task], ())
        return
    rows = total + padding
    bad = [name for name, array in outputs.items() if array.ndim == 0 or array.shape[0] != rows]
    offset = 0
    for task in tasks:
        if bad:
            task.error = RequestError(grpc.StatusCode.INTERNAL,
                                      f"batched outputs {bad} do not have the batch size "
                                      f"{rows} as dimension 0")
        else:
            task.outputs = {name: array[offset:offset + task.size]
                            for name, array in outputs.items()}
        offset += task.size


class BatchScheduler:
    """The batching queue and its batch threads; `run` is a drop-in `Runner`."""

    def __init__(self, parameters: BatchingParameters) -> None:
        self.parameters = parameters
        self._timeout_s = parameters.batch_timeout_micros / 1e6
        self._condition = threading.Condition()
        self._batches: deque[_Batch] = deque()
        self._threads = [threading.Thread(target=self._work, name=f"batch-{index}", daemon=True)
                         for index in range(parameters.batch_threads)]
        for thread in self._threads:
            thread.start()

    def run(self, signature: ServedSignature, inputs: Mapping[str, np.ndarray]) -> Arrays:
        """Queue the request, wait for its batch to run, return its outputs (or raise)."""
        size = task_size(inputs)
        if size > self.parameters.max_batch_size:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Task size {size} is larger than maximum input batch size "
                               f"{self.parameters.max_batch_size}")
        if size == 0:
            return signature(inputs)
        task = _Task(inputs, size)
        self._enqueue(signature, task)
        task.done.wait()
        if task.error is not None:
            raise task.error
        assert task.outputs is not None
        return task.outputs

    def _enqueue(self, signature: ServedSignature, task: _Task) -> None:
        with self._condition:
            batch = next((b for b in reversed(self._batches) if b.signature is signature), None)
            limit = self.parameters.max_batch_size
            if batch is None or batch.closed or batch.size + task.size > limit:
                if len(self._batches) >= self.parameters.max_enqueued_batches:
                    raise RequestError(grpc.StatusCode.UNAVAILABLE,
                                       "The batch scheduling queue to which this task was "
                                       "submitted is full")
                if batch is not None:
                    batch.closed = True
                batch = _Batch(signature, opened=time.monotonic())
                self._batches.append(batch)
            batch.tasks.append(task)
            batch.size += task.size
            self._condition.notify()

    def _next_batch(self) -> _Batch:
        """Block until a batch is ready (closed, full or timed out); take it off the queue."""
        with self._condition:
            while True:
                now = time.monotonic()
                for batch in self._batches:
                    waited = now - batch.opened
                    if (batch.closed or batch.size >= self.parameters.max_batch_size
                            or waited >= self._timeout_s):
                        self._batches.remove(batch)
                        return batch
                wait = (min(self._timeout_s - (now - b.opened) for b in self._batches)
                        if self._batches else None)
                self._condition.wait(wait)

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                run_batch(batch.signature, batch.tasks, self.parameters.allowed_batch_sizes)
            except BaseException as error:  # never leave a caller waiting forever
                for task in batch.tasks:
                    if task.outputs is None and task.error is None:
                        task.error = error
            finally:
                for task in batch.tasks:
                    task.done.set()
