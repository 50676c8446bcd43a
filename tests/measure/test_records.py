"""Recorded requests read and checked against the model: TF Serving's warmup records of
the test model, their rows and responses, and what does not fit (the CLI's refusals are
tests/reliability/test_bad_requests.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from autotune.errors import UsageError
from autotune.measure.records import check_records, read_records
from autotune.measure.signature import model_signatures
from autotune.serving.warmup import MAX_RECORDS
from own_model import (
    DENSE,
    FEATURES,
    IDS_INPUT,
    LARGEST,
    LOGITS,
    PROBABILITY,
    RECORDS,
    ROWS,
    WARMUP,
    export_own_model,
    prediction_logs,
    write_requests,
)


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_own_model(tmp_path_factory.mktemp("records") / "ctr")


def test_warmup_records_become_rows_of_the_signatures_inputs(own_model):
    records = read_records(own_model / "1" / WARMUP)
    check_records(records, model_signatures(own_model))
    sizes = [ROWS[index % len(ROWS)] for index in range(RECORDS)]
    assert [len(request) for request in records.requests] == sizes
    assert records.largest == LARGEST and records.signature == "serving_default"
    rows = records.rows()
    assert len(rows) == sum(sizes) and rows.outputs == ()  # no filter: every output
    assert (rows.arrays[DENSE].dtype, rows.arrays[DENSE].shape) == (np.float32,
                                                                     (sum(sizes), FEATURES))
    assert rows.arrays[IDS_INPUT].dtype == np.int64
    assert records.responses == (None,) * RECORDS
    assert records.describe()["rows"] == sum(sizes) and len(records.digest) == 16
    assert read_records(own_model / "1" / WARMUP).digest == records.digest


def test_recorded_responses_and_output_filters_are_kept(own_model, tmp_path):
    logs = prediction_logs(answered_by=own_model / "1", records=3)
    logs[0].predict_log.request.output_filter.append(LOGITS)
    logs[1].predict_log.request.output_filter.append(PROBABILITY)
    records = read_records(write_requests(tmp_path / "answered", logs))
    check_records(records, model_signatures(own_model))
    assert records.rows().outputs == ()  # the third asks for every output
    assert [len(response[LOGITS]) for response in records.responses] == list(ROWS[:3])
    filtered = read_records(write_requests(tmp_path / "filtered", logs[:2]))
    assert filtered.rows().outputs == (LOGITS, PROBABILITY)


def _refusal(path: Path, model: Path | None = None) -> str:
    with pytest.raises(UsageError) as raised:
        records = read_records(path)
        check_records(records, model_signatures(model))
    return str(raised.value)


def test_what_cannot_be_measured_is_refused_naming_the_record(own_model, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert f"{empty} holds no records" in _refusal(empty)
    assert "no requests file" in _refusal(tmp_path / "missing")
    logs = prediction_logs(records=2)
    logs[1].predict_log.request.model_spec.signature_name = "other"
    assert "record 1 asks for signature 'other' and record 0 for 'serving_default'" in _refusal(
        write_requests(tmp_path / "two", logs))
    logs = prediction_logs(records=1)
    logs[0].predict_log.request.inputs[DENSE].CopyFrom(
        tf.make_tensor_proto(np.ones((LARGEST + 1, FEATURES), np.float32)))
    assert "record 0: its inputs ('dense' [17,13], 'ids' [1,26]) do not share a first " \
           "dimension" in _refusal(write_requests(tmp_path / "lengths", logs))
    logs = prediction_logs(answered_by=own_model / "1", records=1)
    logs[0].predict_log.response.outputs[LOGITS].CopyFrom(
        tf.make_tensor_proto(np.ones((5, 4), np.float32)))
    assert "its response output 'logits' has shape [5,4] for a request of 1 rows" in _refusal(
        write_requests(tmp_path / "answers", logs), own_model)
    logs = prediction_logs(records=1)
    logs[0].predict_log.request.output_filter.append("score")
    assert "record 0 asks for output 'score', which signature 'serving_default' does not " \
           "have" in _refusal(write_requests(tmp_path / "filter", logs), own_model)


def test_more_records_than_tf_serving_replays_are_refused(tmp_path):
    many = write_requests(tmp_path / "many", prediction_logs(records=1) * (MAX_RECORDS + 1))
    assert f"has more than {MAX_RECORDS:,} records, the most TF Serving replays" in _refusal(many)
