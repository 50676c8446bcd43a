"""Open the Optuna storage a study lives in, from any storage URL, or say in one line why not.

The tuner, `autotune report` and `autotune dashboard` all open their `--storage` here, so
every one of them accepts the same URLs and refuses the same bad ones the same way:

    sqlite:///studies/autotune.db            (the default; its folder is created)
    postgresql://user:password@host/db       (several hosts tuning one study; psycopg 3)

A URL SQLAlchemy cannot parse, a database driver that is not installed, a server that
does not answer and a refused login each become a `UsageError` (exit 2) whose message
names the URL with its password masked: passwords never reach the terminal or a log.

A storage that stops answering while a run uses it (a PostgreSQL server stopped, the
network gone) is the same kind of failure, met later: `storage_lost_as_error` turns it
into one line naming the masked URL and the driver's reason (Optuna's own message
blames "invalid data ... e.g. exceeding max length"), after the run has stopped its
servers.

Opening an Optuna storage creates Optuna's tables where they are missing. The tuner
means to (it writes its study there); the readers (`autotune report`, the dashboard:
`create=False`) must not turn a user's own database into a study storage, so they first
look at its tables without writing (a SQLite file opened read-only) and refuse one that
is not an Optuna storage already.

`postgresql://` and `postgres://` are read as `postgresql+psycopg://`, so psycopg 3 (a
declared dependency) serves them whichever driver the installed SQLAlchemy would pick.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage
from sqlalchemy.engine import URL, make_url

from autotune.errors import UsageError

#: seconds a PostgreSQL (or MySQL) connection attempt may take before the server counts
#: as unreachable: a firewalled host would otherwise hang the tool for minutes
CONNECT_TIMEOUT_S = 10
#: how many times opening is retried when workers create the tables at the same moment
_CREATE_ATTEMPTS = 3
#: the plain PostgreSQL schemes, pinned to psycopg 3
_PSYCOPG_SCHEMES = ("postgresql", "postgres")
#: query parameters that carry a secret (libpq's and the drivers' names)
_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "sslpassword"}
#: a URL's scheme, user name and password (up to the last `@` of the authority)
_USERINFO = re.compile(r"^(?P<user>[^:/?#]+://[^:/?#@]*):[^/?#]*@")
#: tables every Optuna storage has (its studies, and its schema version)
OPTUNA_TABLES = ("studies", "version_info")

def normalize_url(url: str) -> str:
    """`url` with a plain PostgreSQL scheme pinned to psycopg 3; other URLs unchanged."""
    parsed = make_url(url)
    if parsed.drivername not in _PSYCOPG_SCHEMES:
        return url
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def mask_password(url: str) -> str:
    """`url` with every secret in it (the password, a password query parameter) shown as
    `***`, for every message and log line; the one place URLs are masked.

    SQLAlchemy parses the URL; where it cannot, everything between the user name and the
    authority's last `@` goes. An unescaped `@` in a password makes SQLAlchemy end the
    password there and take the rest for the host, so the host is cut at its last `@`."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return _USERINFO.sub(r"\g<user>:***@", url)
    if parsed.host and "@" in parsed.host:
        parsed = parsed.set(password="***", host=parsed.host.rsplit("@", 1)[1])
    query = {key: "***" if key.lower() in _SECRET_QUERY_KEYS else value
             for key, value in parsed.query.items()}
    masked = parsed.set(query=query).render_as_string(hide_password=True)
    return masked.replace("%2A%2A%2A", "***")


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///` URL (relative or absolute); None otherwise."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def open_storage(url: str, *, create: bool = True, heartbeat_interval: int | None = None,
                 grace_period: int | None = None) -> RDBStorage:
    """The Optuna storage at `url`; a `UsageError` naming the masked URL when it cannot open.

    `create=False` (the readers) refuses a SQLite file that does not exist yet (reading a
    report of a study that was never run) instead of creating an empty database, and a
    database that is not an Optuna storage instead of adding Optuna's tables. The heartbeat
    arguments are Optuna's: a trial whose worker stops beating for `grace_period` seconds
    is failed by the next worker that looks (autotune.fleet.fail_stale_trials).
    """
    shown = mask_password(url)
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.is_file():
            raise UsageError(f"no study storage at {shown}; run `autotune --mode online` first")
        _make_folder(path, shown)
    try:
        parsed = make_url(normalize_url(url))
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UsageError(f"--storage {shown!r} is not a storage URL; give one such as "
                         "sqlite:///studies/autotune.db or "
                         "postgresql://user:password@host:5432/db") from None
    if parsed.host and "@" in parsed.host:
        raise UsageError(f"--storage {shown}: the user info holds an unescaped '@'; write an "
                         "'@' in a user name or password as %40")
    dialect, password = parsed.get_backend_name(), parsed.password
    engine_kwargs = ({"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
                     if dialect in ("postgresql", "mysql") else {})
    if not create:
        _require_optuna_tables(parsed, path, engine_kwargs, shown)
    for _ in range(_CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are experimental in name only
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(parsed.render_as_string(hide_password=False),
                                  engine_kwargs=engine_kwargs,
                                  heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            # Two workers creating the tables at once: one wins, the other opens them next.
            failure: Exception = error
        except sqlalchemy.exc.OperationalError as error:
            failure = error  # SQLite says the same race as "table ... already exists"
            if "already exists" not in str(error.orig):
                break
        except Exception as error:  # noqa: BLE001 (each cause is named below, one line)
            failure = error
            break
    raise UsageError(_without(_describe(failure, shown, dialect), password)) from None


def _require_optuna_tables(parsed: URL, path: Path | None, engine_kwargs: dict,
                           shown: str) -> None:
    """`UsageError` unless the database at `parsed` already has Optuna's tables; looked
    at without writing (a SQLite file through a read-only URI), so nothing changes."""
    if path is not None:
        parsed = parsed.set(database=path.resolve().as_uri(), query={"mode": "ro", "uri": "true"})
    engine = sqlalchemy.create_engine(parsed, **engine_kwargs)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    except Exception as error:  # noqa: BLE001 (each cause is named by _describe, one line)
        raise UsageError(_without(_describe(error, shown, parsed.get_backend_name()),
                                  parsed.password)) from None
    finally:
        engine.dispose()
    if not set(OPTUNA_TABLES) <= tables:
        raise UsageError(f"{shown} is not an Optuna study storage (it has no "
                         f"{' or '.join(sorted(set(OPTUNA_TABLES) - tables))} table) and is "
                         "left as it is; name the storage a tuner wrote with --storage")


class StorageLostError(UsageError):
    """The storage stopped answering during a run (exit 2, one line)."""


def is_storage_failure(error: BaseException) -> bool:
    """Whether `error` says the storage stopped answering (its connection refused or
    lost), as SQLAlchemy raises it or as Optuna wraps it (`StorageInternalError`)."""
    lost = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
    return isinstance(error, lost) or (
        isinstance(error, optuna.exceptions.StorageInternalError)
        and isinstance(error.__cause__, lost))


@contextmanager
def storage_lost_as_error(url: str) -> Iterator[None]:
    """Run the body; a storage that stops answering in it becomes a `StorageLostError`
    saying so in one line, with the driver's reason (never the password)."""
    try:
        yield
    except Exception as error:
        if not is_storage_failure(error):
            raise
        cause = error if isinstance(error, sqlalchemy.exc.DBAPIError) else error.__cause__
        reason = _first_line(getattr(cause, "orig", None) or cause or error)
        raise StorageLostError(_without(
            f"lost the study storage {mask_password(url)}: {reason}; the run stopped. Rerun "
            "once it answers: the trial being measured is then failed ('tuner died') and "
            "measured again", make_url(url).password)) from None


def _make_folder(path: Path, shown: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the folder of storage {shown}: {error.strerror}; "
                         "pick a writable path") from None


def _describe(error: Exception, shown: str, dialect: str) -> str:
    """One line saying why `shown` did not open and what to do; never the password."""
    if isinstance(error, sqlalchemy.exc.NoSuchModuleError):
        return (f"--storage {shown}: no database dialect {dialect!r}; use sqlite:/// or "
                "postgresql:// (or another SQLAlchemy dialect that is installed)")
    if isinstance(error, ImportError):
        missing = getattr(error.__cause__, "name", None) or "its driver"
        return (f"--storage {shown}: the database driver {missing} is not installed; "
                f"install it, or use postgresql:// (psycopg 3 is included)")
    if isinstance(error, sqlalchemy.exc.OperationalError):
        reason = _first_line(error.orig) if error.orig is not None else _first_line(error)
        hint = ("check the host, port, user and password, and that the database exists"
                if dialect != "sqlite" else "check that the path is writable")
        return f"cannot open storage {shown}: {reason}; {hint}"
    return f"cannot open storage {shown}: {_first_line(error)}"


def _without(message: str, password: object) -> str:
    """`message` with any copy of the password a driver may have echoed masked (as a whole
    word: a short password must not garble the words it is part of)."""
    if not password:
        return message
    return re.sub(rf"(?<!\w){re.escape(str(password))}(?!\w)", "***", message)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
