"""`autotune dashboard`: optuna-dashboard on a study storage, on 127.0.0.1 only.

Before serving, every study autotune ran in the storage gets its report
(autotune.report.markdown) as its dashboard note, so a study whose run was interrupted
shows the same summary as a finished one (a study another program wrote there is
served as optuna-dashboard shows it, with no note); the metric name (`latency_ms` or
`throughput_sps`) and the infeasible trials (greyed, from the `constraints` system
attr) are already in the storage. The dashboard's "best trial" is the best feasible
one (`feasible_best_storage`).

The WSGI app is optuna-dashboard's own (`optuna_dashboard.wsgi`), served by waitress
with a pool of request threads (the browser loads several API routes at once).
`--port 0` takes a free port; the address printed is the real one. Ctrl-C stops the
server and returns 0.

Listening on 127.0.0.1 keeps other hosts out, not other web pages: a page the user
visits can send requests to 127.0.0.1 itself, or through a name of its own that it
points at 127.0.0.1 (DNS rebinding), and the dashboard's API deletes studies. So every
request passes `HostAllowlist` first: its `Host` (and `Origin`, when a browser sends
one) must name 127.0.0.1, localhost or a name given on purpose with `--allow-host`
(a tunnel's or a proxy's), else it gets 403 and touches nothing.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, Iterable, TextIO
from urllib.parse import urlsplit

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autotune.errors import UsageError
from autotune.record.schema import is_feasible, written_by_autotune
from autotune.record.storage import open_storage
from autotune.report.data import build_report
from autotune.report.markdown import render_markdown

HOST = "127.0.0.1"
#: the names a request may address the dashboard by, besides those of `--allow-host`
LOCAL_NAMES = (HOST, "localhost")
#: waitress's request threads: the dashboard's page loads several API routes at once
THREADS = 8
_REFUSED = (b"403 Forbidden: this dashboard answers requests addressed to 127.0.0.1 or "
            b"localhost (autotune dashboard --allow-host NAME adds a name)\n")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _host_name(authority: str | None) -> str | None:
    """The host name of a `Host` header's `name[:port]` (lower case, no brackets)."""
    try:
        return urlsplit(f"//{authority}").hostname if authority else None
    except ValueError:  # a malformed port or bracket
        return None


class HostAllowlist:
    """WSGI middleware: a request whose `Host` names none of `names`, or whose `Origin`
    (sent by browsers with every cross-site and state-changing request) comes from a
    page of another host, gets 403 before `app` sees it (module docstring)."""

    def __init__(self, app: WsgiApp, names: Iterable[str]) -> None:
        self.app = app
        self.names = {name.lower().strip("[]") for name in names}

    def allows(self, environ: dict[str, Any]) -> bool:
        """Whether the request's `Host` and `Origin` both name an allowed host."""
        if _host_name(environ.get("HTTP_HOST")) not in self.names:
            return False
        origin = environ.get("HTTP_ORIGIN")
        return origin is None or _host_name(urlsplit(origin).netloc) in self.names

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.allows(environ):
            return self.app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(_REFUSED)))])
        return [_REFUSED]


def feasible_best_storage(storage: optuna.storages.RDBStorage) -> optuna.storages.RDBStorage:
    """`storage`, whose best trial becomes the best *feasible* one.

    optuna-dashboard 0.21 asks the storage for the best trial, which knows nothing of
    constraints, so it would crown a fast trial below the accuracy floors. This
    storage answers as `Study.best_trial` does (and as the report does); only a study
    with no feasible trial at all falls back to the storage's own answer.
    """
    any_best = storage.get_best_trial

    def get_best_trial(study_id: int) -> FrozenTrial:
        complete = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.COMPLETE,))
        feasible = [trial for trial in complete if is_feasible(trial)]
        if not feasible:
            return any_best(study_id)
        minimize = storage.get_study_directions(study_id)[0] == StudyDirection.MINIMIZE
        return (min if minimize else max)(feasible, key=lambda trial: trial.value)

    storage.get_best_trial = get_best_trial  # type: ignore[method-assign]
    return storage


def save_report_notes(storage: optuna.storages.RDBStorage) -> list[str]:
    """Save the report of each study autotune ran as its dashboard note; every study's
    name (another program's study is shown as optuna-dashboard shows it, with no note)."""
    from optuna_dashboard import save_note

    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    for summary in summaries:
        if written_by_autotune(summary.user_attrs):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            save_note(study, render_markdown(build_report(study)))
    return [summary.study_name for summary in summaries]


def serve_dashboard(storage: str, port: int, out: TextIO = sys.stdout,
                    allowed_hosts: Iterable[str] = ()) -> int:
    """Serve optuna-dashboard for `storage` on 127.0.0.1:`port` until Ctrl-C, to requests
    addressed to 127.0.0.1, localhost or one of `allowed_hosts`; exit code 0."""
    import waitress
    from optuna_dashboard import wsgi

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one)")
    opened = open_storage(storage, create=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = save_report_notes(opened)
    with warnings.catch_warnings():  # optuna-dashboard reads attrs Optuna calls experimental
        warnings.simplefilter("ignore")
        app = HostAllowlist(wsgi(feasible_best_storage(opened)),
                            (*LOCAL_NAMES, *allowed_hosts))
    try:
        server = waitress.create_server(app, host=HOST, port=port, threads=THREADS)
    except OSError as error:
        raise UsageError(f"cannot listen on {HOST}:{port} ({error.strerror}); "
                         "pick another with --port") from None
    address = f"http://{HOST}:{server.effective_port}/dashboard/"
    print(f"optuna-dashboard for {len(names)} studies ({', '.join(names) or 'none'}) "
          f"on {address} (Ctrl-C to stop)", file=out, flush=True)
    try:
        server.run()  # returns on Ctrl-C: waitress catches the KeyboardInterrupt itself
    except KeyboardInterrupt:  # one that lands outside waitress's loop
        pass
    finally:
        server.close()
    print("dashboard stopped", file=out, flush=True)
    return 0
