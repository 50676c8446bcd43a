"""Publishing a report: its files, the study's dashboard note, and the printed summary.

Files (`<study>`: the study's file stem, one rule for every file: autotune.report.files):
`<report-dir>/<study>.json` (the data, docs/DESIGN.md), `.md`, `.html` (the
study in pictures, autotune.report.html) and, when there is a best configuration,
`.env` and `.k8s.yaml` (a Kubernetes Deployment, autotune.report.kubernetes); server
mode adds the best configuration's batching parameters file and keeps
the best trial's LoadGen logs (autotune.report.server_files). The Markdown is also saved
as the study's optuna-dashboard note, so the dashboard shows the same summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from autotune.launch.settings import ServerSettings
from autotune.record.schema import TrialAttr
from autotune.report.data import build_report
from autotune.report.env_file import env_file_text
from autotune.report.files import ENV, JSON, MARKDOWN, report_file
from autotune.report.kubernetes import SUFFIX as K8S_SUFFIX
from autotune.report.kubernetes import kubernetes_text
from autotune.report.markdown import render_markdown
from autotune.report.server_files import batching_file, keep_best_logs, loadgen_log_root
from autotune.report.terminal import print_report


def write_report_files(report: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write `<study>.json`, `.md` and (when there is a best) `.env` and `.k8s.yaml`; the
    paths written."""
    report_dir.mkdir(parents=True, exist_ok=True)
    name = report["study"]
    files = {report_file(report_dir, name, JSON): json.dumps(report, indent=2) + "\n",
             report_file(report_dir, name, MARKDOWN): render_markdown(report)}
    if report["best"] is not None:
        files[report_file(report_dir, name, ENV)] = env_file_text(report)
        files[report_file(report_dir, name, K8S_SUFFIX)] = kubernetes_text(report)
        batching = ServerSettings.from_params(report["best"]["params"]).batching
        if batching is not None:
            files[batching_file(report_dir, report["study"])] = batching.to_text()
    for path, text in files.items():
        path.write_text(text)
    return list(files)


def publish_report(study: optuna.Study, report_dir: Path, quiet: bool = False) -> dict[str, Any]:
    """Build the report, write its files (and the HTML), save it as the dashboard note,
    print it."""
    from optuna_dashboard import save_note

    from autotune.report.html import write_html_report

    report = build_report(study, report_dir)
    paths = write_report_files(report, report_dir)
    paths.append(write_html_report(study, report, report_dir))
    # server mode: only the best trial's LoadGen logs stay (no folder in other modes)
    keep_best_logs(loadgen_log_root(report_dir, study.study_name),
                   (report["best"] or {}).get(TrialAttr.LOADGEN_LOGS))
    save_note(study, render_markdown(report))
    console = Console()
    if not quiet:
        print_report(study, report, console)
    console.print(f"Report: {', '.join(str(path) for path in paths)}", highlight=False)
    return report
