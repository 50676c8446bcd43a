"""The report in the terminal: the best trials as a rich table, then the Markdown summary."""

from __future__ import annotations

from typing import Any

import optuna
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from autotune.modes import format_metric, metric_unit
from autotune.record.schema import TrialAttr, complete_trials, is_feasible
from autotune.report.gate import gate_columns
from autotune.report.markdown import render_markdown
from autotune.search.space import PARAM_LABELS

#: trials shown in the table
TABLE_ROWS = 10


def print_report(study: optuna.Study, report: dict[str, Any], console: Console) -> None:
    """The best trials as a table (infeasible ones dimmed), then the Markdown summary."""
    console.print(_trials_table(study, report))
    console.print(Markdown(render_markdown(report)))


def _trials_table(study: optuna.Study, report: dict[str, Any]) -> Table:
    complete = complete_trials(study)
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(complete, key=lambda t: (not is_feasible(t), -t.value if reverse else t.value))
    params = list(dict.fromkeys(name for trial in ranked for name in trial.params))
    metric = report["objective"]["metric"]
    shown = ranked[:TABLE_ROWS]
    memory = any(TrialAttr.RSS_MB in trial.user_attrs for trial in shown)
    gate = gate_columns([trial.user_attrs for trial in shown])
    table = Table(title=f"{report['study']}: best trials")
    objective_column = f"{metric.split('_')[0]} ({metric_unit(metric)})"
    for column in ["trial", *[PARAM_LABELS.get(p, p) for p in params], objective_column,
                   *(["MB"] if memory else []), *[label for _, label, _ in gate], "baseline"]:
        table.add_column(column)
    for trial in shown:
        rss_mb = trial.user_attrs.get(TrialAttr.RSS_MB, float("nan"))
        table.add_row(str(trial.number), *[str(trial.params.get(p, "-")) for p in params],
                      format_metric(metric, trial.value, unit=False),
                      *([f"{rss_mb:,.0f}"] if memory else []),
                      *[format(trial.user_attrs.get(key, float("nan")), spec)
                        for key, _, spec in gate],
                      trial.user_attrs.get(TrialAttr.BASELINE, ""),
                      style=None if is_feasible(trial) else "dim")
    return table
