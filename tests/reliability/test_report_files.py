"""A study's name becomes its report files' name by one rule (autotune.report.files): every
file stays inside `--report-dir`, a long or odd name writes its report, and two studies
never write the same file (issue 27, items 2 and 3)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import optuna
import pytest

from autotune.report import print_stored_report
from autotune.tuning.run import run_tuning
from trials import online_study

from .tree import snapshot

#: a name that climbs out of the folder and is too long for a file name
LONG_CLIMB = "../" + "n" * 300


def _stored(tmp_path: Path, *names: str) -> str:
    storage = f"sqlite:///{tmp_path}/studies.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name in names:
            online_study(storage, name)
    return storage


def _outside(tmp_path: Path, report_dir: Path) -> dict[str, str]:
    """Everything under tmp_path but the report folder and the storage."""
    return {path: digest for path, digest in snapshot(tmp_path).items()
            if not (tmp_path / path).is_relative_to(report_dir) and "studies.db" not in path}


@pytest.mark.parametrize("name", ["../../evil", "{tmp}/outside/evil", "a/b", "n" * 300])
def test_a_study_name_never_writes_outside_the_report_folder(tmp_path, name):
    """`--study-name ../../evil` or an absolute path wrote the report files outside
    `--report-dir`; a name with `/` or of 300 characters ended in a traceback."""
    name = name.format(tmp=tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "deep").mkdir()
    report_dir = tmp_path / "deep" / "reports"
    storage = _stored(tmp_path, name)
    before = _outside(tmp_path, report_dir)
    assert print_stored_report(storage, name, report_dir) == 0
    assert _outside(tmp_path, report_dir) == before
    (report,) = report_dir.glob("*.json")
    assert json.loads(report.read_text())["study"] == name
    written = sorted(path.name for path in report_dir.iterdir())
    assert written == [f"{report.stem}{suffix}"
                       for suffix in (".env", ".html", ".json", ".k8s.yaml", ".md")]


def test_two_studies_never_share_a_report_file(tmp_path):
    """`v1.0-final` and `v1.1-final` both wrote `v1.json`, `v1.md`, `v1.env`."""
    names = ["v1.0-final", "v1.1-final", "a/b", "a_b", "a?b"]
    storage = _stored(tmp_path, *names)
    for name in names:
        assert print_stored_report(storage, name, tmp_path / "reports") == 0
    reports = {json.loads(path.read_text())["study"]: path.name
               for path in (tmp_path / "reports").glob("*.json")}
    assert sorted(reports) == sorted(names)
    assert reports["v1.0-final"] == "v1.0-final.json"


def test_a_run_named_to_climb_out_writes_its_report_inside(tmp_path, small_assets,
                                                            tuning_options):
    """The tuner itself, after its trials: the report of `../nnn...n` (300 characters)."""
    options = tuning_options("online", study_name=LONG_CLIMB, trials=1, confirm_budget=0)
    assert run_tuning(options, assets=small_assets) == 0
    (report,) = options.report_dir.glob("*.json")
    assert json.loads(report.read_text())["study"] == LONG_CLIMB
    written = {path.name for path in options.report_dir.iterdir()}
    assert {f"{report.stem}.md", f"{report.stem}.html"} <= written
    assert not list(tmp_path.glob("n*"))
