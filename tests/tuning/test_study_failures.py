"""Studies that go wrong: no feasible trial, a server that cannot start, Ctrl-C, a second
tuner; and resuming. Every server is real; afterwards none may be left running."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from autotune.errors import NoFeasibleTrialError, UsageError
from autotune.host.lock import HostLock
from autotune.record.schema import TrialAttr
from autotune.tuning.run import run_tuning
from autotune.tuning.trials import StudyAbortedError
from processes import serving_processes, wait_for_answering_server

DRIVER = Path(__file__).with_name("tuner_driver.py")


def _only_study(storage: str) -> optuna.Study:
    (name,) = optuna.study.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def test_a_floor_no_model_reaches_makes_every_trial_infeasible(tuning_options, small_assets):
    options = tuning_options("online", trials=2, min_hr=0.99)
    with pytest.raises(NoFeasibleTrialError) as raised:
        run_tuning(options, assets=small_assets)
    assert raised.value.exit_code == 3
    study = _only_study(options.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        assert trial.user_attrs["accuracy_ok"] is False
        assert "HR@10" in trial.user_attrs["infeasible"] and trial.constraints["hr"] > 0
    with pytest.raises(ValueError):
        _ = study.best_trial  # Optuna itself never reports an infeasible trial as best
    report = (options.report_dir / f"{study.study_name}.json").read_text()
    assert '"best": null' in report and '"infeasible": 2' in report


def test_a_server_that_cannot_start_fails_trials_and_ends_the_study(tuning_options, small_assets):
    options = tuning_options("batch", trials=5, start_timeout=0.001)  # never AVAILABLE in time
    with pytest.raises(StudyAbortedError) as raised:
        run_tuning(options, assets=small_assets)
    assert raised.value.exit_code != 0 and "3 trials in a row failed" in str(raised.value)
    # a suggestion that repeats a failed configuration is skipped, not measured or counted
    trials = [t for t in _only_study(options.storage).trials
              if TrialAttr.DUPLICATE_OF not in t.user_attrs]
    assert [t.state for t in trials[:3]] == [TrialState.FAIL] * 3
    assert all("server did not start" in t.user_attrs["failure"] for t in trials[:3])
    assert not serving_processes()


def test_resume_adds_trials_to_the_same_study(tuning_options, small_assets):
    first = tuning_options("online", trials=1, confirm_budget=0)
    assert run_tuning(first, assets=small_assets) == 0
    assert run_tuning(first, assets=small_assets) == 0
    study = _only_study(first.storage)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    # the baselines were enqueued once: the second run measured the waiting one
    assert [t.user_attrs.get("baseline") for t in complete] == ["tutorial", "image-defaults"]
    assert not study.get_trials(states=(TrialState.WAITING,))


def _tuner(request: pytest.FixtureRequest, storage: str, small_assets) -> subprocess.Popen:
    """A tuner process, killed at the test's end if still running: a tuner this test failed
    to stop must not hold the host lock for the tests after it."""
    tuner = subprocess.Popen([sys.executable, str(DRIVER), storage, str(small_assets.eval_path),
                              str(small_assets.model_dir)], stderr=subprocess.PIPE)
    request.addfinalizer(lambda: tuner.poll() is None and (tuner.kill(), tuner.wait()))
    return tuner


def test_ctrl_c_stops_the_server_marks_the_trial_and_a_rerun_resumes(tmp_path, small_assets,
                                                                      request):
    storage = f"sqlite:///{tmp_path}/studies.db"
    tuner = _tuner(request, storage, small_assets)
    servers = wait_for_answering_server(psutil.Process(tuner.pid), timeout_s=120)
    time.sleep(1.0)  # the server has answered for a moment
    tuner.send_signal(signal.SIGINT)
    assert tuner.wait(60) == 130, tuner.stderr.read().decode()[-2000:]
    for server in servers:
        assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    study = _only_study(storage)
    (interrupted,) = study.get_trials(states=(TrialState.FAIL,))
    assert interrupted.user_attrs["failure"] == "interrupted"

    rerun = _tuner(request, storage, small_assets)
    wait_for_answering_server(psutil.Process(rerun.pid), timeout_s=120)
    time.sleep(1.0)
    rerun.send_signal(signal.SIGTERM)  # SIGTERM is handled like Ctrl-C
    assert rerun.wait(60) == 130
    resumed = _only_study(storage)  # the same study went on: a second trial was interrupted
    assert resumed.study_name == study.study_name
    assert [t.user_attrs["failure"] for t in resumed.get_trials(states=(TrialState.FAIL,))] == [
        "interrupted", "interrupted"]


def test_a_second_tuner_is_refused(tuning_options, small_assets):
    with HostLock():
        with pytest.raises(UsageError) as raised:
            run_tuning(tuning_options("online", trials=1), assets=small_assets)
    assert raised.value.exit_code == 2
    assert f"pid {os.getpid()}" in str(raised.value) and "--allow-concurrent" in str(raised.value)


def test_resuming_with_another_setup_is_refused(tuning_options, small_assets):
    options = tuning_options("online", study_name="mine")
    stored = optuna.create_study(storage=options.storage, study_name="mine")
    stored.set_user_attr("objective", "p99")
    with pytest.raises(UsageError, match="objective 'p99' \\(this run: 'mean'\\)"):
        run_tuning(options, assets=small_assets)
    assert not serving_processes()
