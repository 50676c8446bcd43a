"""The output-agreement gate: np.allclose's test, output by output, and the gate through
real servers of the test model over both protocols, against an in-process reference and
against responses recorded from other weights."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import optuna
import pytest

from autotune.launch import Launcher, ModelLocation, ServerSettings, make_launcher
from autotune.measure.agreement import IN_PROCESS, RECORDED, build_agreement_gate, compare
from autotune.measure.grpc_client import ServingClient
from autotune.measure.records import read_records
from autotune.measure.rest_client import RestClient
from autotune.record.schema import TrialAttr
from own_model import (
    LARGEST,
    LOGITS,
    PROBABILITY,
    WARMUP,
    export_own_model,
    prediction_logs,
    write_requests,
)

RTOL, ATOL = 1e-4, 1e-5


def _compare(got: dict, want: dict):
    return compare({k: np.asarray(v) for k, v in got.items()},
                   {k: np.asarray(v) for k, v in want.items()}, RTOL, ATOL)


def test_outputs_within_the_tolerance_agree():
    want = {"p": np.array([[0.5], [1.0]], np.float32), "ids": np.array([3, 4])}
    exact = _compare(want, want)
    assert exact.ok and exact.max_abs_err == 0 and exact.constraints()["agreement"] <= 0
    close = _compare({"p": [[0.5 + 5e-6], [1.0]], "ids": [3, 4]}, want)
    assert close.ok and close.max_abs_err == pytest.approx(5e-6, rel=1e-3)
    assert close.max_rel_err == pytest.approx(1e-5, rel=1e-3) and close.shortfall() == ""


def test_outputs_beyond_it_do_not_and_say_which():
    want = {"p": np.array([0.5, 1.0]), "q": np.array([2.0])}
    off = _compare({"p": [0.5, 1.001], "q": [2.0]}, want)
    assert not off.ok and off.worst == "p" and off.constraints()["agreement"] > 0
    assert off.max_abs_err == pytest.approx(1e-3) and off.max_rel_err == pytest.approx(1e-3)
    assert off.shortfall().startswith("outputs disagree with the reference: output 'p' max abs "
                                      "err 0.001, max rel err 0.001, beyond rtol 0.0001")
    assert off.attrs() == {"max_abs_err": off.max_abs_err, "max_rel_err": off.max_rel_err,
                           "agreement_ok": False}


@pytest.mark.parametrize("got, words", [
    ({"p": [np.nan, 1.0]}, "output 'p' has NaN where the reference has none"),
    ({"p": [1.0, 1.0, 1.0]}, "output 'p' has shape [3], the reference [2]"),
    ({}, "the server answered no output 'p'"),
])
def test_what_no_tolerance_covers_is_a_mismatch(got, words):
    result = _compare(got, {"p": [1.0, 1.0]})
    assert not result.ok and result.constraints() == {"agreement": 1.0}
    assert words in result.shortfall()


def test_nan_agrees_with_nan_and_strings_must_be_equal():
    assert _compare({"p": [np.nan, 1.0]}, {"p": [np.nan, 1.0]}).ok
    words = {"w": np.array([b"a", b"b"], dtype=object)}
    assert _compare(words, words).ok
    other = _compare({"w": np.array([b"a", b"c"], dtype=object)}, words)
    assert not other.ok and "output 'w' differs in 1 of 2 values" in other.shortfall()


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_own_model(tmp_path_factory.mktemp("agreement") / "ctr")


@pytest.fixture(scope="module")
def served(own_model: Path) -> Iterator[Launcher]:
    """The test model's embedded server, gRPC and REST (1/2/1 threads)."""
    with make_launcher("local", ModelLocation(own_model, "ctr"), rest=True) as launcher:
        launcher.start(ServerSettings(1, 2, 1))
        launcher.wait_until_available(120)
        yield launcher


@pytest.mark.parametrize("rows_per_request", [1, LARGEST])
def test_the_server_agrees_with_the_in_process_reference(own_model, served, rows_per_request):
    records = read_records(own_model / "1" / WARMUP)
    gate = build_agreement_gate(records, own_model, RTOL, ATOL, rows_per_request, seed=0,
                                sample=40)
    assert gate.source == IN_PROCESS and len(gate.rows) == 40
    assert {name: array.shape for name, array in gate.reference.items()} == {
        LOGITS: (40, 4), PROBABILITY: (40, 1)}
    with ServingClient(served.address, "ctr") as grpc_client, \
            RestClient(served.rest_address, "ctr") as rest:
        for client in (grpc_client, rest):
            result = gate.check(client)
            assert result.ok and result.max_abs_err < ATOL, result.shortfall()
            assert gate.check(client, max_request=3).ok  # a batching server's cap


def test_responses_recorded_from_other_weights_disagree(own_model, served, tmp_path):
    other = export_own_model(tmp_path / "other", seed=1, warmup=False)
    records = read_records(write_requests(tmp_path / "theirs",
                                          prediction_logs(answered_by=other / "1")))
    gate = build_agreement_gate(records, own_model, RTOL, ATOL, 1, seed=0)
    assert gate.source == RECORDED
    with ServingClient(served.address, "ctr") as client:
        result = gate.check(client)
    assert not result.ok and result.max_abs_err > 1e-2
    assert gate.unmet([]) == ""  # no trial disagreed: nothing to name
    disagreed = optuna.trial.create_trial(value=1.0, user_attrs={
        TrialAttr.AGREEMENT_OK: False, TrialAttr.MAX_ABS_ERR: result.max_abs_err,
        TrialAttr.MAX_REL_ERR: result.max_rel_err})
    assert gate.unmet([disagreed]).startswith(
        "1 with outputs not within rtol 0.0001 and atol 1e-05 of the reference (recorded "
        "responses); the closest, trial")
