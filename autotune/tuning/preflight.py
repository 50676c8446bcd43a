"""Checks of a run's flags and folders before its first trial (and any slow work).

A bad value or a `--report-dir` that cannot be written must stop the run at once with one
line and exit 2, not after every trial has run (the report is the last thing written)
nor with a traceback. So must a request the server would refuse: a `--batch-size`
above the pairs one request may carry (the server's `--max_batch_size`) failed every
trial as "server stopped answering", after tens of seconds. The deployment limits are
checked against the host and the launcher once both are known (`check_limits`), still
before the first trial. The storage is opened (autotune.record.storage) and the assets
are checked (autotune.assets) right after these, also before any slow work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autotune.errors import UsageError
from autotune.host.cgroups import format_cpu_list, parse_cpu_list
from autotune.host.facts import HostFacts
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
        (options.racing_budget < 0, f"--confirm-budget {options.confirm_budget} is negative"),
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
        (options.max_foreign_cpu is not None and not 0 <= options.max_foreign_cpu < 1,
         f"--max-foreign-cpu {options.max_foreign_cpu} is not a share within [0, 1)"),
        (options.quiet_wait < 0, "--quiet-wait must not be negative"),
        *_limit_problems(options),
        # the output-agreement gate (recorded requests)
        (not options.rtol >= 0, f"--rtol {options.rtol:g} is negative (a relative tolerance)"),
        (not options.atol >= 0, f"--atol {options.atol:g} is negative (an absolute tolerance)"),
        (len(options.study_name or "") > MAX_STUDY_NAME,
         f"--study-name is longer than the {MAX_STUDY_NAME} characters a storage keeps"),
        (options.mode.batched and (options.batch_size or 0) > DEFAULT_MAX_BATCH_SIZE,
         f"--batch-size {options.batch_size or 0:,} is more than one request may carry (the "
         f"server takes at most {DEFAULT_MAX_BATCH_SIZE:,} pairs, its --max_batch_size); "
         f"use at most {DEFAULT_MAX_BATCH_SIZE}"),
    ) if bad]
    if problems:
        raise UsageError("; ".join(problems))


def _limit_problems(options: TuningOptions) -> list[tuple[bool, str]]:
    """The deployment limits and right-sizing flags that no run can use."""
    return [
        (options.cpus is not None and options.cpus <= 0, "--cpus must be positive"),
        (options.memory is not None and options.memory <= 0, "--memory must be positive (MB)"),
        (options.cpuset_cpus is not None and _cpu_list(options.cpuset_cpus) is None,
         f"--cpuset-cpus {options.cpuset_cpus!r} is not a CPU list such as 0-3 or 0,2"),
        (options.target_qps is not None and options.target_qps <= 0,
         "--target-qps must be positive (requests/s)"),
        (options.target_qps is not None and not options.mode.bounded,
         f"--target-qps right-sizes a server under --p99-ms: use --mode server, not "
         f"--mode {options.mode.name}"),
    ]


def _cpu_list(text: str) -> set[int] | None:
    """The CPUs of a kernel CPU list; None when it is not one (or is empty)."""
    try:
        cpus = parse_cpu_list(text)
    except ValueError:
        return None
    return cpus or None


def check_limits(options: TuningOptions, host: HostFacts, launcher_kind: str) -> None:
    """The deployment limits against this host and launcher (`UsageError`, exit 2): no
    more CPUs than the host allows, a cpuset within its CPUs, and for the local launcher
    a cgroup filesystem it can write (autotune.launch.server_cgroup)."""
    allowed = host.cpu_limit if host.cpu_limit is not None else float(len(host.usable_cpus))
    if options.cpus is not None and options.cpus > allowed:
        raise UsageError(f"--cpus {options.cpus:g} is more than this host allows ({allowed:g} "
                         "CPUs); give at most that")
    wanted = _cpu_list(options.cpuset_cpus) if options.cpuset_cpus else set()
    if wanted and not wanted <= set(host.usable_cpus):
        raise UsageError(f"--cpuset-cpus {options.cpuset_cpus} names CPUs this process may not "
                         f"use (it may use {format_cpu_list(host.usable_cpus)})")
    if launcher_kind == "local" and (options.cpus or options.memory or options.target_qps):
        from autotune.launch.server_cgroup import check_writable

        check_writable(options.cpus or host.cpu_budget, options.memory)


def _unmeasurable(options: TuningOptions) -> str:
    """Why `--protocol` cannot be measured in `--mode`, and what can."""
    mode, label = options.mode, PROTOCOL_LABELS.get(options.protocol, options.protocol)
    able = [name for name, other in MODES.items() if options.protocol in other.protocols]
    return (f"--mode {mode.name} measures over "
            f"{' and '.join(PROTOCOL_LABELS[p] for p in mode.protocols)} only; use --protocol "
            f"{mode.protocols[0]}, or --mode {' or '.join(able) or '(none)'} to measure {label}")
