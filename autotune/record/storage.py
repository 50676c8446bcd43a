"""Open the Optuna storage a study lives in, from any storage URL, or say in one line why not.

The tuner, `autotune report` and `autotune dashboard` all open their `--storage` here, so
every one of them accepts the same URLs and refuses the same bad ones the same way:

    sqlite:///studies/autotune.db            (the default; its folder is created)
    postgresql://user:password@host/db       (several hosts tuning one study; psycopg 3)

A URL SQLAlchemy cannot parse, a database driver that is not installed, a server that
does not answer and a refused login each become a `UsageError` (exit 2) whose message
names the URL with its password masked: passwords never reach the terminal or a log.

`postgresql://` and `postgres://` are read as `postgresql+psycopg://`, so psycopg 3 (a
declared dependency) serves them whichever driver the installed SQLAlchemy would pick.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url

from autotune.errors import UsageError

#: seconds a PostgreSQL (or MySQL) connection attempt may take before the server counts
#: as unreachable: a firewalled host would otherwise hang the tool for minutes
CONNECT_TIMEOUT_S = 10
#: how many times opening is retried when workers create the tables at the same moment
_CREATE_ATTEMPTS = 3
_PSYCOPG_SCHEMES = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}

StaleTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def normalize_url(url: str) -> str:
    """`url` with a plain PostgreSQL scheme pinned to psycopg 3; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    return f"{_PSYCOPG_SCHEMES[scheme]}://{rest}" if sep and scheme in _PSYCOPG_SCHEMES else url


def mask_password(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, for every message and log line."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///` URL (relative or absolute); None otherwise."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url and len(url) > len(prefix):
        return Path(url[len(prefix):])
    return None


def open_storage(url: str, *, create: bool = True, heartbeat_interval: int | None = None,
                 grace_period: int | None = None,
                 stale_trial_callback: StaleTrialCallback | None = None) -> RDBStorage:
    """The Optuna storage at `url`; a `UsageError` naming the masked URL when it cannot open.

    `create=False` refuses a SQLite file that does not exist yet (reading a report of a
    study that was never run) instead of creating an empty database. The heartbeat
    arguments are Optuna's: a trial whose worker stops beating for `grace_period` seconds
    is failed by the next worker that looks, and `stale_trial_callback` runs for it.
    """
    shown = mask_password(url)
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.is_file():
            raise UsageError(f"no study storage at {shown}; run `autotune --mode online` first")
        _make_folder(path, shown)
    url = normalize_url(url)
    try:
        dialect = make_url(url).get_backend_name()
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UsageError(f"--storage {shown!r} is not a storage URL; give one such as "
                         "sqlite:///studies/autotune.db or "
                         "postgresql://user:password@host:5432/db") from None
    password = make_url(url).password
    engine_kwargs = ({"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
                     if dialect in ("postgresql", "mysql") else {})
    for _ in range(_CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are experimental in name only
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs,
                                  heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                  heartbeat_stale_trial_callback=stale_trial_callback)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            # Two workers creating the tables at once: one wins, the other opens them next.
            failure: Exception = error
        except Exception as error:  # noqa: BLE001 (each cause is named below, one line)
            failure = error
            break
    raise UsageError(_without(_describe(failure, shown, dialect), password)) from None


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
    """`message` with any copy of the password a driver may have echoed masked."""
    return message.replace(str(password), "***") if password else message


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
