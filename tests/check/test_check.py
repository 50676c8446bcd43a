"""`autotune check` with real local servers on real storages: exit 0 against a study's own
recommendation, 1 when the deployed settings are significantly faster, 2 on bad input,
and the verdict as a JUnit file that a JUnit parser reads.

Two short online studies on one SQLite storage, one trial each: `good` measured the
tutorial's settings (1/1/1) and recommends them, and its check holds every other
configuration to a quarter of a CPU (tests/throttled.py: on a quiet host the image's
defaults are faster than 1/1/1 for this model, and the check rightly says so); `slow`
measured 64 threads of each kind on this small host and recommends them. Sixty-four
threads of each kind per server on a host of a few cores are several times slower for
batch-1 requests than one, busy host or not, so its check against the good settings is
robustly significant: it races with a budget no host's rounds use up and stops as soon
as the recommendation is dropped, so a quick host is not kept waiting and a slow one
still gets the rounds a claim needs. The good study's own check passes whether its race
separates the configurations or not. A check killed mid-race leaves no server and no
temporary folder behind.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from junitparser import Failure, JUnitXml

from autotune.check import RECOMMENDATION, check_finalists, judge, run_check, study_options
from autotune.cli import main
from autotune.options import CheckOptions
from autotune.racing.record import Finalist, RaceRecord
from autotune.record.schema import StudyAttr
from autotune.tuning.run import run_tuning
from processes import serving_processes
from quick import quick_options
from reliability.leftovers import serving_processes_of, wait_until
from throttled import threads_of, throttling
from trials import online_study

DRIVER = Path(__file__).with_name("check_driver.py")
#: how long a killed check's servers and LoadGen log folder may outlive it
CLEANUP_S = 10.0
SLOW = {"omp_num_threads": 64, "intra_op_parallelism": 64, "inter_op_parallelism": 64}
GOOD = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1}


@pytest.fixture(scope="module")
def studies(tmp_path_factory, small_assets):
    """The storage URL, the good study's `.env` and both studies' names."""
    folder = tmp_path_factory.mktemp("check")
    good = quick_options(folder, "online", trials=1, study_name="good", confirm_budget=0)
    assert run_tuning(good, assets=small_assets) == 0
    slow = quick_options(folder, "online", trials=1, study_name="slow", max_threads=64,
                         confirm_budget=0)
    optuna.create_study(storage=slow.storage, study_name="slow").enqueue_trial(SLOW)
    assert run_tuning(slow, assets=small_assets) == 0
    return good.storage, good.report_dir / "good.env"


def _check(storage: str, name: str, env_file: Path, **overrides) -> CheckOptions:
    return CheckOptions(env_file=env_file, storage=storage, study_name=name, quiet=True,
                        **overrides)


def test_a_study_passes_against_its_own_recommendation(studies, small_assets, tmp_path,
                                                       capsys, cgroups):
    storage, env_file = studies
    junit = tmp_path / "check.xml"
    # every other configuration held to a quarter of a CPU: on a quiet host the image's
    # defaults are faster than 1/1/1 (a check that says so is right, but not this test)
    factory = throttling(lambda settings: threads_of(settings) != GOOD)
    assert run_check(_check(storage, "good", env_file, confirm_budget=40, junit_xml=junit),
                     assets=small_assets, launcher_factory=factory) == 0
    assert "autotune check good: PASS" in capsys.readouterr().out
    (case,) = [case for suite in JUnitXml.fromfile(str(junit)) for case in suite]
    assert case.is_passed and case.name == "recommendation of good"
    assert not serving_processes()


def test_faster_deployed_settings_fail_the_check_with_their_ratio(studies, small_assets,
                                                                  tmp_path, capsys):
    storage, env_file = studies
    junit = tmp_path / "check.xml"
    # a budget no host's rounds use up: the race ends when the recommendation is dropped
    assert run_check(_check(storage, "slow", env_file, confirm_budget=600, junit_xml=junit),
                     assets=small_assets) == 1
    out = capsys.readouterr().out
    assert "autotune check slow: FAIL" in out and "significantly faster" in out
    assert "% CI" in out  # at the level of the look that dropped it (RaceRecord.claim)
    suites = list(JUnitXml.fromfile(str(junit)))
    assert [suite.name for suite in suites] == ["autotune check"]
    (case,) = list(suites[0])
    (failure,) = case.result
    assert isinstance(failure, Failure) and "significantly faster" in failure.message
    assert not serving_processes()


def test_a_killed_check_leaves_no_server_and_no_temporary_folder(studies, small_assets,
                                                                tmp_path):
    """SIGKILL mid-race: the launchers' watchdogs and the LoadGen log folder's own remove
    what the check made (its servers, their scratch folders, its `autotune-check-*`)."""
    storage, env_file = studies
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    check = subprocess.Popen(
        [sys.executable, str(DRIVER), storage, "good", str(env_file),
         str(small_assets.eval_path), str(small_assets.model_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(scratch)})

    def racing() -> bool:
        """the check races: a server of its runs, beside its LoadGen log folder"""
        return bool(serving_processes_of(check.pid)) and any(scratch.glob("autotune-check-*"))
    try:
        wait_until(racing, 240)
    finally:
        check.kill()
    assert check.wait(30) == -signal.SIGKILL

    def nothing_left() -> bool:
        """no server of the killed check, and nothing in its temporary directory"""
        return not serving_processes_of(check.pid) and not any(scratch.iterdir())
    wait_until(nothing_left, CLEANUP_S)


def test_bad_input_is_one_line_and_exit_2_with_nothing_written(studies, tmp_path, capsys):
    storage, env_file = studies
    junit = tmp_path / "ci" / "check.xml"
    model_only = tmp_path / "model.env"
    model_only.write_text("# the model only\nMODEL_NAME=ncf\n")
    for argv, says in (
            (["--study-name", "missing", "--env-file", str(env_file)], "no study 'missing'"),
            (["--study-name", "good", "--env-file", str(tmp_path / "none.env")],
             "cannot read it"),
            (["--study-name", "good", "--env-file", str(Path(__file__))], "is not KEY=value"),
            (["--study-name", "good", "--env-file", str(model_only)], "sets none of")):
        assert main(["check", "--storage", storage, "--junit-xml", str(junit), *argv]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and says in error, error
    assert not junit.parent.exists()


def test_a_missing_study_in_postgresql_is_refused(postgres_url, tmp_path, capsys):
    optuna.create_study(storage=postgres_url, study_name="another")
    env_file = tmp_path / "deployed.env"
    env_file.write_text("OMP_NUM_THREADS=1\n")
    assert main(["check", "--storage", postgres_url, "--study-name", "missing",
                 "--env-file", str(env_file)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no study 'missing'" in error


def test_the_verdict_is_the_race_seen_from_the_recommendation():
    best = {"trial": 3, "params": {"x": 1}}
    (both,) = check_finalists(best, {"x": 1})  # deployed as recommended: one configuration
    assert both.baselines == [RECOMMENDATION, "deployed"]
    record = RaceRecord("minimize", 0.02, 60, rounds=4, finalists=[
        Finalist(3, {"x": 1}, True, [RECOMMENDATION], values=[2.0, 2.1, 1.9, 2.0]),
        Finalist(-1, {"x": 2}, True, ["deployed"], values=[1.0, 1.1, 0.9, 1.0])])
    beaten = judge(record)
    assert beaten.exit_code == 1 and beaten.ratio is not None and beaten.ratio.ci[0] > 1
    assert "95% CI" in beaten.sentence  # a survivor: the usual level
    record.finalists[0].dropped_round, record.finalists[0].dropped_alpha = 4, 0.0125
    assert "98.75% CI" in judge(record).sentence  # dropped: the level of its look
    record.finalists[0].dropped_round = record.finalists[0].dropped_alpha = None
    record.finalists[1].values = [2.0, 2.0, 2.1, 1.9]
    assert judge(record).exit_code == 0


def test_a_check_measures_as_the_study_did_unless_told_otherwise(tmp_path):
    study = online_study(f"sqlite:///{tmp_path}/s.db", "stored")
    for key, value in {StudyAttr.SERVER: "local", StudyAttr.OBJECTIVE: "p95",
                       StudyAttr.PRECISION: 0.05, StudyAttr.LIMITS: {"cpus": 1.5}}.items():
        study.set_user_attr(key, value)
    options = study_options(study, CheckOptions(env_file=tmp_path / "x.env"))
    assert (options.mode.name, options.objective, options.precision, options.cpus,
            options.image, options.server, options.model_dir) == (
        "online", "p95", 0.05, 1.5, "autotune/serving:mkl", "local", Path("/m/ncf"))
    told = study_options(study, CheckOptions(env_file=tmp_path / "x.env", image="new:1",
                                             server="docker", model_dir=tmp_path))
    assert (told.image, told.server, told.model_dir) == ("new:1", "docker", tmp_path)
