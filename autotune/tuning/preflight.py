"""Checks of a run's flags and folders before its first trial (and any slow work).

A bad value or a `--report-dir` that cannot be written must stop the run at once with one
line and exit 2, not after every trial has run (the report is the last thing written)
nor with a traceback. So must a request the server would refuse: a `--batch-size`
above the pairs one request may carry (the server's `--max_batch_size`) failed every
trial as "server stopped answering", after tens of seconds. The storage is opened
(autotune.record.storage) and the assets are checked (autotune.assets) right after
these, also before any slow work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autotune.errors import UsageError
from autotune.modes import MODES
from autotune.paths import check_folder, check_writable_folder
from autotune.protocols import PROTOCOL_LABELS
from autotune.serving.options import DEFAULT_MAX_BATCH_SIZE

if TYPE_CHECKING:
    from autotune.options import TuningOptions

#: the longest study name an Optuna storage keeps (its `study_name` column)
MAX_STUDY_NAME = 512


def check_run(options: "TuningOptions") -> None:
    """What a run needs before anything slow, beyond its storage (opened first, by
    autotune.record.storage): a writable report folder, and a data folder that is one."""
    check_writable_folder(options.report_dir, "--report-dir")
    if options.data_dir is not None:  # written only when its eval set must be built
        check_folder(options.data_dir, "--data-dir")


def check_options(options: TuningOptions) -> None:
    """Refuse values no run can use, with the reason (`UsageError`, exit 2)."""
    problems = [message for bad, message in (
        (not 0 <= options.min_hr <= 1, f"--min-hr {options.min_hr} is not within [0, 1]"),
        (not 0 <= options.min_ndcg <= 1, f"--min-ndcg {options.min_ndcg} is not within [0, 1]"),
        (not 0 <= options.precision < 1, f"--precision {options.precision} is not within [0, 1)"),
        (options.p99_ms <= 0, f"--p99-ms {options.p99_ms:g} must be > 0 (a latency bound in ms)"),
        (options.confirm_budget < 0, f"--confirm-budget {options.confirm_budget} is negative"),
        (not 0 < options.confirm_precision < 1,
         f"--confirm-precision {options.confirm_precision} is not within (0, 1)"),
        (options.timeout is not None and options.timeout <= 0, "--timeout must be positive"),
        (options.start_timeout <= 0, "--start-timeout must be positive"),
        (options.heartbeat_interval < 1, "--heartbeat-interval must be at least 1 second"),
        (options.grace_period <= options.heartbeat_interval,
         "--grace-period must be longer than --heartbeat-interval"),
        (options.request_timeout <= 0, "--request-timeout must be positive"),
        (options.protocol not in options.mode.protocols, _unmeasurable(options)),
        (options.max_memory_mb is not None and options.max_memory_mb <= 0,
         "--max-memory-mb must be positive"),
        (len(options.study_name or "") > MAX_STUDY_NAME,
         f"--study-name is longer than the {MAX_STUDY_NAME} characters a storage keeps"),
        (options.mode.batched and options.batch_size > DEFAULT_MAX_BATCH_SIZE,
         f"--batch-size {options.batch_size:,} is more than one request may carry (the "
         f"server takes at most {DEFAULT_MAX_BATCH_SIZE:,} pairs, its --max_batch_size); "
         f"use at most {DEFAULT_MAX_BATCH_SIZE}"),
    ) if bad]
    if problems:
        raise UsageError("; ".join(problems))


def _unmeasurable(options: TuningOptions) -> str:
    """Why `--protocol` cannot be measured in `--mode`, and what can."""
    mode, label = options.mode, PROTOCOL_LABELS.get(options.protocol, options.protocol)
    able = [name for name, other in MODES.items() if options.protocol in other.protocols]
    return (f"--mode {mode.name} measures over "
            f"{' and '.join(PROTOCOL_LABELS[p] for p in mode.protocols)} only; use --protocol "
            f"{mode.protocols[0]}, or --mode {' or '.join(able) or '(none)'} to measure {label}")
