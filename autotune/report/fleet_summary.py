"""`autotune report --fleet`: one row per host class in a storage.

Each study a class tuned is read with the ordinary report (autotune.report), so a row
says what `autotune report --study-name` would: the best settings with their interval,
the speed-up over the tutorial's settings, how many trials were measured and failed,
and the hosts whose workers measured them (from each trial's `worker` attr).
"""

from __future__ import annotations

from typing import Any

import optuna
from rich.console import Console
from rich.table import Table

from autotune.errors import UsageError
from autotune.modes import mode_of_metric
from autotune.record.schema import StudyAttr, TrialAttr
from autotune.record.storage import mask_password, open_storage
from autotune.report import build_report
from autotune.report.markdown import describe_ratio
from autotune.search.space import describe_params


def fleet_rows(storage: optuna.storages.BaseStorage) -> list[dict[str, Any]]:
    """A JSON-ready summary of every study in `storage` that has a host class."""
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        host_class = study.user_attrs.get(StudyAttr.HOST_CLASS)
        if host_class is None:
            continue
        report = build_report(study)
        hosts = sorted({trial.user_attrs[TrialAttr.WORKER].rsplit(":", 1)[0]
                        for trial in study.get_trials(deepcopy=False)
                        if TrialAttr.WORKER in trial.user_attrs})
        rows.append({"study": study.study_name, "host_class": host_class, "hosts": hosts,
                     "metric": report["objective"]["metric"], "best": report["best"],
                     "speedup_over_tutorial": report["speedup"].get("tutorial"),
                     "trials": report["trials"].get("COMPLETE", 0),
                     "failures": report["trials"].get("FAIL", 0)})
    return rows


def fleet_table(rows: list[dict[str, Any]]) -> Table:
    """The rows as the table `autotune report --fleet` prints."""
    table = Table(title="host classes")
    for column in ("class (study)", "hosts", "best settings", "objective (95% CI)",
                   "vs tutorial", "trials", "failed"):
        table.add_column(column)
    for row in rows:
        best, metric = row["best"], row["metric"]
        if best is None:
            settings, value = "no feasible trial", "-"
        else:
            settings = describe_params(best["params"])
            mode = mode_of_metric(metric)
            value = mode.format(best["value"])
            if best["ci95"]:
                low, high = best["ci95"]
                value += f" ({mode.format_number(low)} to {mode.format_number(high)})"
        ratio = row["speedup_over_tutorial"]
        table.add_row(row["study"], f"{len(row['hosts'])}: {', '.join(row['hosts'])}", settings,
                      value, describe_ratio(ratio) if ratio else "-", str(row["trials"]),
                      str(row["failures"]))
    return table


def print_fleet_report(storage_url: str) -> int:
    """Print the fleet table of the storage at `storage_url`; exit code 0."""
    storage = open_storage(storage_url, create=False)
    rows = fleet_rows(storage)
    if not rows:
        raise UsageError(f"storage {mask_password(storage_url)} holds no host-class study; "
                         "tune with `autotune --mode ...` against it first")
    Console().print(fleet_table(rows))
    return 0
