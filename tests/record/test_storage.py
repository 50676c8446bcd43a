"""Opening storages: every bad URL, driver, server and login is one line, exit 2, no password."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import optuna
import pytest

from autotune.errors import UsageError
from autotune.record.storage import mask_password, normalize_url, open_storage
from postgres import PostgresServer


def _autotune(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """`autotune ARGS` in a child process; its result and how long it took."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "autotune", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": os.getcwd()})
    return done, time.monotonic() - started


def _refused(done: subprocess.CompletedProcess, *needles: str) -> str:
    """The one-line error of an exit-2 refusal, after checking it has no traceback."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autotune: error: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_urls_are_pinned_to_psycopg_3_and_passwords_masked():
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert mask_password("postgresql://u:s3cret@h:5/db") == "postgresql://u:***@h:5/db"
    assert mask_password("postgresql://u:s3cret@h:port/db") == "postgresql://u:***@h:port/db"
    assert mask_password("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("url, needle", [
    ("notaurl", "is not a storage URL"),
    ("postgresql://user:hunter22@h:port/db", "is not a storage URL"),
    ("foo://user:hunter22@h/db", "no database dialect 'foo'"),
    ("mysql://user:hunter22@127.0.0.1/db", "driver MySQLdb is not installed"),
])
def test_a_bad_url_or_a_missing_driver_is_one_line(url, needle):
    with pytest.raises(UsageError, match=needle) as raised:
        open_storage(url)
    assert "hunter22" not in str(raised.value) and "\n" not in str(raised.value)


def test_sqlite_folder_is_created_and_a_missing_file_is_not_read(tmp_path):
    url = f"sqlite:///{tmp_path}/new/folder/studies.db"
    with pytest.raises(UsageError, match="no study storage"):
        open_storage(url, create=False)
    assert not (tmp_path / "new").exists()
    optuna.create_study(storage=open_storage(url), study_name="s")
    assert (tmp_path / "new" / "folder" / "studies.db").is_file()
    assert optuna.get_all_study_names(open_storage(url, create=False)) == ["s"]


def test_postgresql_storage_holds_a_study(postgres_url):
    storage = open_storage(postgres_url)
    assert storage.url.startswith("postgresql+psycopg://")
    study = optuna.create_study(storage=storage, study_name="fleet")
    study.enqueue_trial({"x": 1})
    (trial,) = optuna.load_study(study_name="fleet", storage=postgres_url).trials
    assert trial.state.name == "WAITING"


def test_a_wrong_password_is_one_line_without_the_password(postgres_server: PostgresServer):
    url = postgres_server.url(password="wrong-pass-77")
    # seconds allowed: the report imports Optuna; the tuner imports TensorFlow first, which
    # takes 5 s on a quiet host and 45 s on two cores shared by a dozen test runs. Either way
    # the refusal comes before any data, model or server work, and without a connect hang.
    for args, allowed_s in ((["report", "--storage", url], 30),
                            (["--mode", "online", "--server", "local", "--storage", url,
                              "--allow-concurrent", "--quiet"], 120)):
        done, seconds = _autotune(*args, timeout=300)
        line = _refused(done, "password authentication failed", "***")
        assert "wrong-pass-77" not in done.stderr + done.stdout, line
        assert seconds < allowed_s, f"{args[0]}: {seconds:.0f} s"


def test_an_unreachable_server_is_one_line(postgres_server: PostgresServer):
    from autotune.launch._ports import free_port

    url = f"postgresql://{postgres_server.user}:{postgres_server.password}@127.0.0.1:{free_port()}/x"
    done, seconds = _autotune("report", "--storage", url)
    _refused(done, "Connection refused", "check the host, port")
    assert postgres_server.password not in done.stderr and seconds < 30


def test_report_and_dashboard_refuse_a_bad_url_in_one_line():
    for args in (["report", "--storage", "notaurl"], ["dashboard", "--storage", "notaurl"]):
        done, _ = _autotune(*args)
        _refused(done, "is not a storage URL")
