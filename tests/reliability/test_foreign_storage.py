"""`autotune report` and `autotune dashboard` read a storage, they never change one that
is not theirs: a user's own database is refused and left byte for byte (issue 27, item
5), and a study another program wrote into a study storage is left out of the reports,
never a traceback."""

from __future__ import annotations

import hashlib
import sqlite3
import warnings
from pathlib import Path

import optuna
import pytest

from trials import online_study

from .cli import autotune, dashboard, http_status, refused


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _app_database(path: Path) -> None:
    """A database of the user's own application: one table, one row."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('ada')")
    connection.close()


@pytest.mark.parametrize("content", ["application", "empty"])
@pytest.mark.parametrize("command", [["report"], ["dashboard", "--port", "0"]])
def test_a_database_that_is_not_a_study_storage_is_left_as_it_is(tmp_path, content, command):
    """Optuna's 13 tables were added to it (an empty file became a 114 KB database)."""
    database = tmp_path / "myapp.db"
    if content == "application":
        _app_database(database)
    else:
        database.touch()
    before = _digest(database)
    run = autotune(*command, "--storage", f"sqlite:///{database}")
    refused(run, "not an Optuna study storage")
    assert _digest(database) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["myapp.db"]


def test_a_postgresql_database_of_an_application_is_left_as_it_is(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE users (id serial PRIMARY KEY, name text)")
    refused(autotune("report", "--storage", postgres_url), "not an Optuna study storage")
    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables "
                                    "WHERE schemaname = 'public'").fetchall()
    assert tables == [("users",)]


@pytest.fixture
def mixed_storage(tmp_path: Path) -> str:
    """A study storage holding a study of autotune's and a plain Optuna study (a float
    param `x`), as another program writes one."""
    storage = f"sqlite:///{tmp_path}/studies.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        online_study(storage, "tuned")
    plain = optuna.create_study(storage=storage, study_name="plain")
    plain.optimize(lambda trial: trial.suggest_float("x", 0, 1) ** 2, n_trials=3)
    return storage


def test_report_leaves_out_a_study_autotune_did_not_run(tmp_path, mixed_storage):
    """Building its report crashed in settings_from_params: a traceback."""
    run = autotune("report", "--storage", mixed_storage, "--report-dir", str(tmp_path / "r"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(path.name for path in (tmp_path / "r").iterdir()) == [
        "tuned.env", "tuned.html", "tuned.json", "tuned.k8s.yaml", "tuned.md"]
    refused(autotune("report", "--storage", mixed_storage, "--study-name", "plain",
                     "--report-dir", str(tmp_path / "r")), "'plain'", "not run by autotune")


def test_the_dashboard_serves_a_study_autotune_did_not_run(mixed_storage):
    """The dashboard crashed writing that study's note, before it served anything."""
    with dashboard(mixed_storage) as port:
        assert http_status(port, "GET", "/api/studies", Host=f"127.0.0.1:{port}") == 200
