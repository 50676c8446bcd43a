"""The files a server-mode report adds beside `<study>.json/.md/.env/.html` (`<study>`:
the study's file stem, autotune.report.files):

- `<study>.batching_parameters.txt`: the best configuration's batching parameters in TF
  Serving's format, when it batches; the `docker run` line mounts it read-only at
  `/config/batching_parameters.txt` and passes TF Serving's batching flags
  (autotune.launch.docker.docker_run_command);
- `<study>.loadgen/`: LoadGen's summary and detail logs, one folder per peak search. While
  the study runs every measurement writes there; the report keeps only the best
  trial's folder.

The latency-vs-rate tables are the Markdown renderer's (autotune.report.markdown).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from autotune.report.files import report_file

BATCHING_SUFFIX = ".batching_parameters.txt"
LOGS_SUFFIX = ".loadgen"


def loadgen_log_root(report_dir: Path, study_name: str) -> Path:
    """The folder where a study's LoadGen logs go."""
    return report_file(report_dir, study_name, LOGS_SUFFIX)


def batching_file(report_dir: Path, study_name: str) -> Path:
    """Where the best configuration's batching parameters file is written."""
    return report_file(report_dir, study_name, BATCHING_SUFFIX)


def keep_best_logs(log_root: Path, best_logs: str | None) -> None:
    """Remove every measurement folder under `log_root` but the best trial's."""
    if not log_root.is_dir():
        return
    keep = Path(best_logs).resolve() if best_logs else None
    for folder in log_root.iterdir():
        if folder.is_dir() and folder.resolve() != keep:
            shutil.rmtree(folder, ignore_errors=True)
