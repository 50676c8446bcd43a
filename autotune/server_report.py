"""What a server-mode report adds: latency-vs-rate tables, the batching file, LoadGen's logs.

Files beside `<study>.json/.md/.env` in the report folder:

- `<study>.batching_parameters.txt`: the best configuration's batching parameters in TF
  Serving's format, when it batches; the `docker run` line mounts it read-only at
  `/config/batching_parameters.txt` and passes TF Serving's batching flags;
- `<study>.loadgen/`: LoadGen's summary and detail logs, one folder per peak search. While
  the study runs every measurement writes there; the report keeps only the best
  trial's folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from autotune.launch.batching_file import CONTAINER_PATH, batching_args
from autotune.serving.batching_config import BatchingParameters

BATCHING_SUFFIX = ".batching_parameters.txt"
LOGS_SUFFIX = ".loadgen"


def loadgen_log_root(report_dir: Path, study_name: str) -> Path:
    """The folder where a study's LoadGen logs go."""
    return Path(report_dir) / f"{study_name}{LOGS_SUFFIX}"


def batching_file(report_dir: Path, study_name: str) -> Path:
    """Where the best configuration's batching parameters file is written."""
    return Path(report_dir) / f"{study_name}{BATCHING_SUFFIX}"


def docker_batching_words(host_file: Path, parameters: BatchingParameters | None
                          ) -> tuple[list[str], list[str]]:
    """(`docker run` options, server args) that mount the file and turn batching on."""
    if parameters is None:
        return [], []
    mount = f"{Path(host_file).resolve()}:{CONTAINER_PATH}:ro"
    return ["-v", mount], batching_args(CONTAINER_PATH)


def rate_table(name: str, rows: Sequence[dict[str, Any]], bound_ms: float | None) -> list[str]:
    """Markdown lines: each rate tried, its latency percentiles and whether it met the bound."""
    bound = f" (bound p99 <= {bound_ms:g} ms)" if bound_ms is not None else ""
    lines = [f"### {name}{bound}", "", "| requests/s | p50 ms | p95 ms | p99 ms | errors | met |",
             "|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda row: row["qps"]):
        lines.append(f"| {row['qps']:,.0f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
                     f"{row['p99_ms']:.2f} | {row['errors']} | {'yes' if row['ok'] else 'no'} |")
    return [*lines, ""]


def keep_best_logs(log_root: Path, best_logs: str | None) -> None:
    """Remove every measurement folder under `log_root` but the best trial's."""
    if not log_root.is_dir():
        return
    keep = Path(best_logs).resolve() if best_logs else None
    for folder in log_root.iterdir():
        if folder.is_dir() and folder.resolve() != keep:
            shutil.rmtree(folder, ignore_errors=True)

