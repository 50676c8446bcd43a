"""`autotune dashboard` on a real short study, looked at in headless Chromium."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from typing import Iterator

import optuna
import pytest

from autotune.cli import main
from autotune.errors import NoFeasibleTrialError
from autotune.tuning.run import run_tuning
from quick import quick_options

from .conftest import BrowserPage, ShortStudy

pytestmark = pytest.mark.slow
ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)/dashboard/")


@pytest.fixture
def dashboard(short_online_study: ShortStudy,
              small_assets) -> Iterator[tuple[str, subprocess.Popen]]:
    """`autotune dashboard --port 0` on the study's storage, with one more study beside it
    whose trials all miss the floors (to be greyed); its address and process."""
    options = short_online_study.options
    infeasible = quick_options(options.report_dir.parent, "online", trials=1, min_hr=1.0,
                               study_name="all-infeasible", confirm_budget=0)
    with pytest.raises(NoFeasibleTrialError):
        run_tuning(infeasible, assets=small_assets)
    process = subprocess.Popen(
        [sys.executable, "-m", "autotune", "dashboard", "--storage", options.storage,
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # as from a terminal: Ctrl-C is delivered even when pytest runs as a background job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first_line = process.stdout.readline()
        match = ADDRESS.search(first_line)
        assert match, f"no address in {first_line!r}"
        yield match.group(0), process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_dashboard_shows_study_trials_metric_and_report(dashboard, short_online_study: ShortStudy,
                                                        browser_page: BrowserPage):
    address, process = dashboard
    study = short_online_study.study
    report = json.loads((short_online_study.options.report_dir
                         / f"{study.study_name}.json").read_text())
    page = browser_page.page

    page.goto(address)
    page.get_by_text(study.study_name).first.wait_for()
    page.get_by_text("all-infeasible").first.wait_for()
    browser_page.screenshot("studies")

    study_id = study._study_id
    page.goto(f"{address}studies/{study_id}")
    page.get_by_text("latency_ms").first.wait_for()  # the metric, not "Objective 0"
    # the best *feasible* search trial (the report's best may differ: it is the raced one)
    page.get_by_text(f"Best Trial (number={study.best_trial.number})").wait_for()
    browser_page.screenshot("history")

    page.goto(f"{address}studies/{study_id}/trials")
    page.get_by_text(f"{len(study.trials)} Trials").wait_for()
    for trial in study.trials:
        page.get_by_text(f"Trial {trial.number}", exact=True).wait_for()
    browser_page.screenshot("trials")

    page.goto(f"{address}studies/{study_id}/note")
    page.get_by_text("Best settings").wait_for()
    note = page.inner_text("body")
    for name, value in report["best"]["env"].items():
        assert f"{name}={value}" in note  # the ready docker run of the best settings
    browser_page.screenshot("note")

    infeasible_id = study_id + 1
    page.goto(f"{address}studies/{infeasible_id}")
    page.get_by_text("Infeasible").first.wait_for()  # the timeline's grey legend entry
    browser_page.screenshot("infeasible")

    assert browser_page.errors == []
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "dashboard stopped" in output


def test_bad_storage_or_port_is_one_line_and_exit_2(tmp_path, capsys):
    missing = f"sqlite:///{tmp_path}/none.db"
    assert main(["dashboard", "--storage", missing]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    storage = f"sqlite:///{tmp_path}/studies.db"
    optuna.create_study(storage=storage, study_name="empty")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--storage", storage, "--port", str(port)]) == 2
    assert "pick another with --port" in capsys.readouterr().err
