"""TF Serving's model warmup: a version's recorded requests, replayed before it is AVAILABLE.

A SavedModel version may carry `assets.extra/tf_serving_warmup_requests`: a TFRecord
file of `tensorflow.serving.PredictionLog` records (at most `MAX_RECORDS`). TF Serving
replays each record's request once when it loads the version (`--enable_model_warmup`,
on by default), so the first real requests do not pay for TensorFlow's lazy
initialisation; a record it cannot run fails the load. This server does the same
(`replay_warmup`): every `predict_log` request goes through the checks and the runner
of a Predict (batching included, as TF Serving's warmup runs through its batching
session, so a record larger than a batching server's `max_batch_size` fails the load
there too); a record with no log is skipped, as TF Serving skips it; any other kind
(classify, regress, ...) fails the load, since this server answers Predict only.

The same reader serves the tuner, which measures a model from these records
(autotune.measure.records), and the same writer `autotune prepare`, which gives the
NCF export its warmup records (autotune.model.export).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from autotune.serving.batching import Runner
from autotune.serving.model import ServedModel
from autotune.serving.validation import RequestError, decode_inputs, find_signature

#: where TF Serving looks for a version's warmup records
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
#: the most records TF Serving replays; a file with more fails the load
MAX_RECORDS = 1000
PREDICT_LOG = "predict_log"
#: TensorFlow's op context around a reader's error message
_OP_NOISE = re.compile(r"\{\{.*?\}\}|\[Op:.*$", re.DOTALL)


class WarmupError(Exception):
    """A warmup or requests file that cannot be replayed; the message names the file and
    the record."""


def read_prediction_logs(path: Path) -> Iterator[prediction_log_pb2.PredictionLog]:
    """Each record of a TFRecord file of `PredictionLog`s, parsed, in order.

    `WarmupError` naming the file and the record when the file is not a TFRecord (or is
    damaged), a record is not a `PredictionLog`, or there are more than `MAX_RECORDS`."""
    index = 0
    try:
        for index, record in enumerate(tf.data.TFRecordDataset(str(path))):
            if index >= MAX_RECORDS:
                raise WarmupError(f"{path} has more than {MAX_RECORDS:,} records, the most TF "
                                  "Serving replays as warmup")
            try:
                yield prediction_log_pb2.PredictionLog.FromString(record.numpy())
            except DecodeError:
                raise WarmupError(f"{path}: record {index} is not a tensorflow.serving."
                                  "PredictionLog") from None
    except tf.errors.OpError as error:
        reason = " ".join(_OP_NOISE.sub("", error.message).split())
        raise WarmupError(f"{path} is not a TFRecord file of PredictionLog records: record "
                          f"{index} cannot be read ({reason})") from None


def predict_request(log: prediction_log_pb2.PredictionLog, index: int,
                    path: Path) -> predict_pb2.PredictRequest | None:
    """The Predict request a record carries; None for a record with no log (TF Serving
    skips those); `WarmupError` for a log of another kind."""
    kind = log.WhichOneof("log_type")
    if kind is None:
        return None
    if kind != PREDICT_LOG:
        raise WarmupError(f"{path}: record {index} is a {kind}; only {PREDICT_LOG} records "
                          "are served here (Predict)")
    return log.predict_log.request


def write_prediction_logs(path: Path, logs: Iterable[prediction_log_pb2.PredictionLog]) -> None:
    """Write `logs` as a TFRecord file at `path` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def replay_warmup(model: ServedModel, run: Runner, max_batch_size: int) -> int:
    """Run every warmup request of the served version through `run`, as a Predict would;
    how many ran (0 without a warmup file). `WarmupError` for the first that fails."""
    path = model.path / WARMUP_FILE
    if not path.is_file():
        return 0
    replayed = 0
    for index, log in enumerate(read_prediction_logs(path)):
        request = predict_request(log, index, path)
        if request is None:
            continue
        try:
            signature = find_signature(model, request.model_spec.signature_name)
            run(signature, decode_inputs(signature, request.inputs, max_batch_size))
        except RequestError as error:
            raise WarmupError(f"{path}: record {index}: {error.message}") from None
        except tf.errors.OpError as error:
            raise WarmupError(f"{path}: record {index}: the model refused it: "
                              f"{error.message.splitlines()[0]}") from None
        replayed += 1
    return replayed
