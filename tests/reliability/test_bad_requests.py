"""Recorded requests that cannot be measured stop a run before its first trial: one line
naming the file, the record and the input (and what the signature wants), exit 2, and
nothing written: no cache, no storage, no report folder, the model folder unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from own_model import DENSE, IDS_INPUT, export_own_model, prediction_logs, write_requests

from .cli import refused
from .test_bad_input import _tuner
from .tree import snapshot

Change = Callable[[prediction_log_pb2.PredictionLog], None]


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_own_model(tmp_path_factory.mktemp("bad-requests") / "ctr")


def _set(name: str, array: np.ndarray) -> Change:
    def change(log: prediction_log_pb2.PredictionLog) -> None:
        log.predict_log.request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    return change


def _drop(name: str) -> Change:
    def change(log: prediction_log_pb2.PredictionLog) -> None:
        del log.predict_log.request.inputs[name]
    return change


#: (a change to the first record, what the refusal must say)
BAD_RECORDS = {
    "missing input": (_drop(IDS_INPUT),
                      ["record 0 lacks input ids int64 [-1,26]", "dense float32 [-1,13]"]),
    "unknown input": (_set("age", np.ones((1, 1), np.float32)),
                      ["record 0: input 'age' is not in signature 'serving_default'",
                       "which wants: dense float32 [-1,13]; ids int64 [-1,26]"]),
    "wrong dtype": (_set(DENSE, np.ones((1, 13), np.float64)),
                    ["record 0: input 'dense' is float64",
                     "the signature wants dense float32 [-1,13]"]),
    "wrong shape": (_set(DENSE, np.ones((1, 12), np.float32)),
                    ["record 0: input 'dense' has shape [1,12]",
                     "the signature wants dense float32 [-1,13]"]),
}


def _refused_unchanged(tmp_path: Path, model: Path, *flags: str) -> str:
    before = snapshot(model)
    line = refused(_tuner(tmp_path, "--model-dir", str(model),
                           "--report-dir", str(tmp_path / "reports"), *flags))
    assert snapshot(model) == before
    assert not (tmp_path / "reports").exists() and not (tmp_path / "studies.db").exists()
    return line


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_records_that_do_not_fit_the_signature_are_refused(tmp_path, own_model, case):
    change, words = BAD_RECORDS[case]
    logs = prediction_logs(records=3)
    change(logs[0])
    requests = write_requests(tmp_path / "requests.tfrecord", logs)
    line = _refused_unchanged(tmp_path, own_model, "--requests", str(requests))
    assert str(requests) in line
    for word in words:
        assert word in line, line


def test_a_file_that_is_not_a_tfrecord_of_prediction_logs_is_refused(tmp_path, own_model):
    junk = tmp_path / "requests.json"
    junk.write_text('{"instances": [[1.0, 2.0]]}\n')
    line = _refused_unchanged(tmp_path, own_model, "--requests", str(junk))
    assert f"{junk} is not a TFRecord file of PredictionLog records: record 0" in line


def test_records_of_another_message_are_refused(tmp_path, own_model):
    """tf.Example records read as TFRecords, but hold no predict_log."""
    examples = tmp_path / "examples.tfrecord"
    with tf.io.TFRecordWriter(str(examples)) as writer:
        writer.write(tf.train.Example().SerializeToString())
    line = _refused_unchanged(tmp_path, own_model, "--requests", str(examples))
    assert f"{examples}: record 0 holds no predict_log" in line


def test_a_model_with_no_records_and_not_ncfs_signature_says_what_to_provide(tmp_path):
    model = export_own_model(tmp_path / "bare", warmup=False)
    line = _refused_unchanged(tmp_path, model)
    assert "pass --requests FILE" in line
    assert str(model / "1" / "assets.extra" / "tf_serving_warmup_requests") in line
