"""`autotune report`: the report of a stored study (`autotune dashboard` is
autotune.report.dashboard)."""

from __future__ import annotations

from pathlib import Path

import optuna

from autotune.errors import NoFeasibleTrialError, UsageError
from autotune.report.publish import publish_report


def print_stored_report(storage: str, study_name: str | None, report_dir: Path) -> int:
    """`autotune report`: the report of a stored study (the only one when unnamed)."""
    from autotune.record.storage import mask_password, open_storage

    opened = open_storage(storage, create=False)
    shown = mask_password(storage)
    names = optuna.study.get_all_study_names(storage=opened)
    if study_name is None:
        if len(names) != 1:
            raise UsageError(f"storage {shown} holds {len(names)} studies "
                             f"({', '.join(names) or 'none'}); name one with --study-name")
        study_name = names[0]
    elif study_name not in names:
        raise UsageError(f"no study {study_name!r} in {shown}; "
                         f"it has: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=opened)
    report = publish_report(study, report_dir)
    if report["best"] is None:
        raise NoFeasibleTrialError(f"study {study_name!r} has no feasible trial")
    return 0
