"""`autotune report`: the report of a stored study (`autotune dashboard` is
autotune.report.dashboard); `stored_study`, how a command finds it (`autotune check`
too)."""

from __future__ import annotations

from pathlib import Path

import optuna

from autotune.errors import NoFeasibleTrialError, UsageError
from autotune.paths import check_writable_folder
from autotune.record.schema import written_by_autotune
from autotune.report.publish import publish_report


def print_stored_report(storage: str, study_name: str | None, report_dir: Path) -> int:
    """`autotune report`: the report of a stored study (the only one of autotune's when
    unnamed); a study another program wrote there has none (`UsageError`)."""
    check_writable_folder(report_dir, "--report-dir")
    study = stored_study(storage, study_name)
    report = publish_report(study, report_dir)
    if report["best"] is None:
        raise NoFeasibleTrialError(f"study {study.study_name!r} has no feasible trial")
    return 0


def stored_study(storage: str, study_name: str | None) -> optuna.Study:
    """The study of autotune's named `study_name` in the storage at `storage` (the only
    one when None); `UsageError` saying what the storage holds when there is no such
    study, or when another program wrote it (it has no autotune mode)."""
    from autotune.record.storage import mask_password, open_storage

    opened = open_storage(storage, create=False)
    shown = mask_password(storage)
    summaries = optuna.get_all_study_summaries(opened, include_best_trial=False)
    names = [summary.study_name for summary in summaries
             if written_by_autotune(summary.user_attrs)]
    others = [summary.study_name for summary in summaries if summary.study_name not in names]
    if study_name is None:
        if len(names) != 1:
            raise UsageError(f"storage {shown} holds {len(names)} studies of autotune's "
                             f"({', '.join(names) or 'none'}); name one with --study-name")
        study_name = names[0]
    elif study_name in others:
        raise UsageError(f"study {study_name!r} in {shown} was not run by autotune (it has "
                         "no autotune mode), so it has no report; `autotune dashboard` "
                         "shows it")
    elif study_name not in names:
        raise UsageError(f"no study {study_name!r} in {shown}; "
                         f"it has: {', '.join(names + others) or 'none'}")
    return optuna.load_study(study_name=study_name, storage=opened)
