"""A model that is not the NCF one, with TF Serving's warmup records: what "tune your own
model" is tested on (and the README's example of writing warmup records).

A small click-through model: inputs `dense` (float32, [None, 13], numeric features) and
`ids` (int64, [None, 26], categorical ids below `IDS`); outputs `logits` (float32,
[None, 4]) and `probability` (float32, [None, 1]). Its version 1 carries
`assets.extra/tf_serving_warmup_requests`: `RECORDS` PredictionLog records of 1 to
`LARGEST` rows each (`write_requests`), optionally with the responses the model gave.

From the command line (what the closing note's runs use):

    python tests/own_model.py /tmp/ctr        # writes /tmp/ctr/1/... with warmup records
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

DENSE, IDS_INPUT = "dense", "ids"
FEATURES, SLOTS, IDS = 13, 26, 1000
LOGITS, PROBABILITY = "logits", "probability"
#: the records' rows: every batch size from 1 up to `LARGEST`, in turn
ROWS = (1, 3, 8, 16, 2, 5)
RECORDS = 12
LARGEST = max(ROWS)
WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"


class ClickModel(tf.Module):
    """Id embeddings averaged over the slots, beside a projection of the dense features,
    through a hidden layer to four logits and a click probability."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embeddings = tf.Variable(rng.normal(size=(IDS, 8)).astype(np.float32))
        self.project = tf.Variable(rng.normal(size=(FEATURES, 16)).astype(np.float32) / 4)
        self.hidden = tf.Variable(rng.normal(size=(24, 32)).astype(np.float32) / 4)
        self.out = tf.Variable(rng.normal(size=(32, 4)).astype(np.float32) / 4)
        self.serve = tf.function(self._predict, input_signature=[
            tf.TensorSpec([None, FEATURES], tf.float32, name=DENSE),
            tf.TensorSpec([None, SLOTS], tf.int64, name=IDS_INPUT),
        ])

    def _predict(self, dense: tf.Tensor, ids: tf.Tensor) -> dict[str, tf.Tensor]:
        embedded = tf.reduce_mean(tf.gather(self.embeddings, ids), axis=1)
        features = tf.concat([embedded, tf.matmul(dense, self.project)], axis=1)
        logits = tf.matmul(tf.nn.relu(tf.matmul(features, self.hidden)), self.out)
        return {LOGITS: logits,
                PROBABILITY: tf.sigmoid(tf.reduce_sum(logits, axis=1, keepdims=True))}


def request_inputs(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Valid inputs of `rows` examples."""
    return {DENSE: rng.normal(size=(rows, FEATURES)).astype(np.float32),
            IDS_INPUT: rng.integers(0, IDS, size=(rows, SLOTS), dtype=np.int64)}


def prediction_logs(seed: int = 0, answered_by: Path | None = None,
                    records: int = RECORDS) -> list[prediction_log_pb2.PredictionLog]:
    """`records` PredictionLogs of valid requests; with `answered_by` (a version folder),
    each carries that model's response too."""
    rng = np.random.default_rng(seed)
    model = tf.saved_model.load(str(answered_by)) if answered_by else None
    logs = []
    for index in range(records):
        inputs = request_inputs(ROWS[index % len(ROWS)], rng)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "ctr"
        request.model_spec.signature_name = "serving_default"
        for name, array in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
        log = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request))
        if model is not None:
            outputs = model.signatures["serving_default"](
                **{name: tf.constant(array) for name, array in inputs.items()})
            for name, tensor in outputs.items():
                log.predict_log.response.outputs[name].CopyFrom(
                    tf.make_tensor_proto(tensor.numpy()))
        logs.append(log)
    return logs


def write_requests(path: Path, logs: list[prediction_log_pb2.PredictionLog]) -> Path:
    """Write `logs` as a TFRecord file (TF Serving's warmup format) at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def export_own_model(base_path: Path, seed: int = 0, warmup: bool = True,
                     responses: bool = False) -> Path:
    """`base_path/1/`: the model with weights of `seed`, and (`warmup`) its warmup records
    (`responses`: with the model's own answers); `base_path` back."""
    version = base_path / "1"
    module = ClickModel(seed)
    tf.saved_model.save(module, str(version), signatures={"serving_default": module.serve})
    if warmup:
        write_requests(version / WARMUP,
                       prediction_logs(answered_by=version if responses else None))
    return base_path


if __name__ == "__main__":
    print(export_own_model(Path(sys.argv[1])))
