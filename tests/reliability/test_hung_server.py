"""A server that stops answering mid-measurement (SIGSTOP, `docker pause`) fails its trial
within `--request-timeout`, and is removed; a server killed mid-trial fails only its trial."""

from __future__ import annotations

import os

import optuna
import pytest
from optuna.trial import TrialState

from autotune.errors import NoFeasibleTrialError
from autotune.options import LatencyPolicy
from autotune.tuning.run import run_tuning

from .faults import WhenMeasuring, container, local_server
from .leftovers import containers_of, serving_processes_of

REQUEST_TIMEOUT_S = 2.0
#: stopping the paused server and recording the trial, on a busy host
STOP_MARGIN_S = 10.0
#: a measurement that goes on until the server is paused
ENDLESS = LatencyPolicy(warmup_requests=20, window=50, precision=0.0, max_requests=10**7,
                        max_seconds=120.0)


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    (name,) = optuna.study.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage).get_trials(
        states=(TrialState.FAIL, TrialState.COMPLETE, TrialState.RUNNING))


def _paused_trial(options, assets, find) -> optuna.trial.FrozenTrial:
    fault = WhenMeasuring(lambda: find(os.getpid()), lambda server: server.pause())
    fault.start()
    try:
        with pytest.raises(NoFeasibleTrialError):
            run_tuning(options, assets=assets)
    finally:
        fault.cancel()
    paused_at = fault.wait_acted(0)
    (trial,) = _trials(options.storage)
    assert trial.state == TrialState.FAIL
    assert "DEADLINE_EXCEEDED" in trial.user_attrs["failure"], trial.user_attrs["failure"]
    assert trial.datetime_complete.timestamp() - paused_at < REQUEST_TIMEOUT_S + STOP_MARGIN_S
    return trial


def test_a_paused_local_server_fails_its_trial_within_the_request_timeout(
        tuning_options, small_assets):
    options = tuning_options("online", trials=1, confirm_budget=0, latency_policy=ENDLESS,
                             precision=0.0, request_timeout=REQUEST_TIMEOUT_S)
    _paused_trial(options, small_assets, local_server)
    assert not serving_processes_of(os.getpid())


@pytest.mark.docker
def test_a_paused_container_fails_its_trial_within_the_request_timeout(
        tuning_options, small_assets, serving_image):
    options = tuning_options("online", server="docker", image=serving_image, trials=1,
                             confirm_budget=0, latency_policy=ENDLESS, precision=0.0,
                             request_timeout=REQUEST_TIMEOUT_S)
    _paused_trial(options, small_assets, container)
    assert not containers_of(os.getpid())


def test_a_server_killed_mid_trial_fails_that_trial_and_the_study_goes_on(
        tuning_options, small_assets):
    options = tuning_options("online", trials=2, confirm_budget=0)
    fault = WhenMeasuring(lambda: local_server(os.getpid()), lambda server: server.kill())
    fault.start()
    try:
        assert run_tuning(options, assets=small_assets) == 0
    finally:
        fault.cancel()
    fault.wait_acted(0)
    trials = _trials(options.storage)
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL"]
    (killed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert "server stopped answering" in killed.user_attrs["failure"]
    assert not serving_processes_of(os.getpid())
