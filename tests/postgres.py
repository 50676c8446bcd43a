"""A throwaway PostgreSQL server for the tests that need one (imported by the root conftest).

`postgres_server` (session) runs `initdb` and `pg_ctl start` in a fresh temporary folder,
listening on a free 127.0.0.1 port with password (scram-sha-256) logins, and removes the
folder after the session. `postgres_url` (per test) creates an empty database on it and
gives its `postgresql://` URL, so tests never see each other's studies. `throwaway_cluster`
is the same without pytest (bench/fleet.py uses it).

The binaries come from `$AUTOTUNE_PG_BIN`, else the newest /usr/lib/postgresql/*/bin,
else PATH. PostgreSQL refuses to run as root: as root, the cluster is made and run by the
`postgres` OS user (Debian's package creates it) through `runuser`. When the server
cannot be started the tests skip with the reason, except under CI=true, where `.ci/run`
installs PostgreSQL and a missing server is a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from autotune.launch._ports import free_port
from ci import unavailable

USER = "autotune"
PASSWORD = "fleet-secret-9"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class PostgresServer:
    """A running test cluster: where it listens and how to log in."""

    port: int
    user: str = USER
    password: str = PASSWORD
    host: str = "127.0.0.1"
    #: stops the server at once (`pg_ctl stop -m immediate`), as a crash or an operator
    stop: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """`postgresql://user:password@127.0.0.1:port/database` (another password if given)."""
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@{self.host}:{self.port}/{database}"


def _bin_dir() -> Path | None:
    if os.environ.get("AUTOTUNE_PG_BIN"):
        return Path(os.environ["AUTOTUNE_PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server could be started here; the message says why."""


class _Cluster:
    """initdb + pg_ctl in `folder`, as the `postgres` OS user when we are root."""

    def __init__(self, bin_dir: Path, folder: Path) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterUnavailable(
                    "running as root and there is no `postgres` OS user to run the server "
                    "(apt-get install postgresql creates it)") from None
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, str(self.bin_dir / program), *args],
                              capture_output=True, text=True, timeout=START_TIMEOUT_S)

    def write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self.prefix:
            shutil.chown(path, "postgres")

    def start(self) -> PostgresServer:
        password_file = self.folder / "password"
        self.write(password_file, PASSWORD + "\n")
        made = self.run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={password_file}",
                        "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync",
                        "-E", "UTF8", "--locale=C")
        password_file.unlink()
        if made.returncode:
            raise ClusterUnavailable(f"initdb failed: {made.stderr.strip().splitlines()[-1:]}")
        for _ in range(3):  # another process may take the free port first
            port = free_port()
            started = self.run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                "-t", str(START_TIMEOUT_S), "-o",
                f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50",
                "start")
            if started.returncode == 0:
                return PostgresServer(port, stop=self.stop)
        log = self.log.read_text().strip().splitlines()[-1:] if self.log.exists() else []
        raise ClusterUnavailable(f"pg_ctl start failed: {started.stderr.strip() or log}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextmanager
def throwaway_cluster() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster on a free 127.0.0.1 port, stopped and removed on exit;
    `ClusterUnavailable` when none can be started here."""
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise ClusterUnavailable("no PostgreSQL binaries (apt-get install postgresql, or set "
                                 "$AUTOTUNE_PG_BIN to the folder holding initdb and pg_ctl)")
    folder = Path(tempfile.mkdtemp(prefix="autotune-pg-"))
    try:
        cluster = _Cluster(bin_dir, folder)
        try:
            yield cluster.start()
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's throwaway cluster: skipped with the reason when it cannot start,
    failed instead under CI=true."""
    with available_cluster() as server:
        yield server


@contextmanager
def available_cluster() -> Iterator[PostgresServer]:
    """A throwaway cluster, or the test skipped with the reason (failed under CI=true)."""
    try:
        with throwaway_cluster() as server:
            yield server
    except ClusterUnavailable as error:
        unavailable("PostgreSQL (.ci/run installs it)", str(error))


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database on the test cluster, for this test alone."""
    import psycopg

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    with psycopg.connect(postgres_server.url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url(name)
