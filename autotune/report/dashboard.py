"""`autotune dashboard`: optuna-dashboard on a study storage, on 127.0.0.1 only.

Before serving, every study in the storage gets its report (autotune.report.markdown)
as its dashboard note, so a study whose run was interrupted shows the same summary as
a finished one; the metric name (`latency_ms` or `throughput_sps`) and the infeasible
trials (greyed, from the `constraints` system attr) are already in the storage. The
dashboard's "best trial" is the best feasible one (`feasible_best_storage`).

The WSGI app is optuna-dashboard's own (`optuna_dashboard.wsgi`), served by waitress
with a pool of request threads (the browser loads several API routes at once).
`--port 0` takes a free port; the address printed is the real one. Ctrl-C stops the
server and returns 0.
"""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autotune.errors import UsageError
from autotune.record.schema import is_feasible
from autotune.record.storage import open_storage
from autotune.report.data import build_report
from autotune.report.markdown import render_markdown

HOST = "127.0.0.1"
#: waitress's request threads: the dashboard's page loads several API routes at once
THREADS = 8


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
    """Save each study's report as its dashboard note; the study names."""
    from optuna_dashboard import save_note

    names = optuna.study.get_all_study_names(storage=storage)
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        save_note(study, render_markdown(build_report(study)))
    return names


def serve_dashboard(storage: str, port: int, out: TextIO = sys.stdout) -> int:
    """Serve optuna-dashboard for `storage` on 127.0.0.1:`port` until Ctrl-C; exit code 0."""
    import waitress
    from optuna_dashboard import wsgi

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one)")
    opened = open_storage(storage, create=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = save_report_notes(opened)
    with warnings.catch_warnings():  # optuna-dashboard reads attrs Optuna calls experimental
        warnings.simplefilter("ignore")
        app = wsgi(feasible_best_storage(opened))
    try:
        server = waitress.create_server(app, host=HOST, port=port, threads=THREADS)
    except OSError as error:
        raise UsageError(f"cannot listen on {HOST}:{port} ({error.strerror}); "
                         "pick another with --port") from None
    address = f"http://{HOST}:{server.effective_port}/dashboard/"
    print(f"optuna-dashboard for {len(names)} studies ({', '.join(names) or 'none'}) "
          f"on {address} (Ctrl-C to stop)", file=out, flush=True)
    try:
        server.run()  # returns on Ctrl-C: waitress closes the server itself then
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("dashboard stopped", file=out, flush=True)
    return 0
