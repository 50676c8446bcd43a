"""Tuned inside a 1-CPU quota vs the tutorial sized to the node (`--deployed-only`).

The field's common failure: a server in a pod limited to 1 CPU runs the NCF tutorial's
settings, sized to the node's cores (batch mode: OMP and intra-op threads = cores), so
its threads fight over one CPU's quota and are throttled. The benchmark runs the tuner
with `--cpus 1` (every trial server in a 1-CPU cgroup or container), then measures its
recommendation and the tutorial's node-sized settings side by side in interleaved
rounds (a fresh server per measurement, each under the same 1-CPU quota), with each
measurement's CFS throttling read from the server's cgroup (`cpu.stat`). The table
gives each one's throughput with its 95% interval and median throttled ratio, and the
tuned over tutorial paired ratio with its interval.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    BenchContext,
    Samples,
    budgeted_rounds,
    format_interval,
    log,
    print_table,
    tuned_report,
)

from autotune.host.cgroups import throttling_of
from autotune.launch import make_launcher
from autotune.launch.group import InstanceGroup
from autotune.launch.settings import DeployLimits
from autotune.measure.running import running_server
from autotune.modes import BATCH
from autotune.options import TuningOptions
from autotune.paths import MODEL_NAME
from autotune.racing.race import rotated
from autotune.search.space import describe_params, settings_from_params
from autotune.stats import paired_ratio

MODE = BATCH.name
#: the CPU limit of the pod the benchmark tunes for
CPUS = 1.0


@dataclass
class Deployed:
    """A configuration's throughput and throttled ratio per round under the quota."""

    params: dict
    samples: Samples = field(default_factory=Samples)
    throttled: list[float] = field(default_factory=list)


def measure_deployed(ctx: BenchContext, kind: str) -> dict[str, Deployed]:
    """Tune with `--cpus 1`, then the tuned vs the tutorial's node-sized settings."""
    with tempfile.TemporaryDirectory(prefix="bench-deployed-") as folder:
        report = _tuned_report(ctx, kind, Path(folder))
    tutorial = dict(zip(("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism"),
                        BATCH.tutorial_threads(ctx.host.physical_cores), strict=True))
    configs = {"tuned": Deployed(report["best"]["params"]), "tutorial": Deployed(tutorial)}
    for name, config in configs.items():
        log(f"{name}: {describe_params(config.params)}, under a {CPUS:g}-CPU quota")
    workload = ctx.workload(MODE)
    group = InstanceGroup(lambda: make_launcher(kind, ctx.model, image=ctx.image), ctx.host,
                          DeployLimits(cpus=CPUS))
    with group as launcher:
        for index in budgeted_rounds(ctx.sizes.restarts):
            for name in rotated(list(configs), index):
                value, ratio = _measure(launcher, configs[name].params, workload)
                configs[name].samples.values.append(value)
                configs[name].throttled.append(ratio)
                log(f"  round {index + 1} {kind} {name}: {BATCH.format(value)}, "
                    f"throttled {ratio:.1%}")
    return configs


def _tuned_report(ctx: BenchContext, kind: str, folder: Path) -> dict:
    """The report of a tuner run with `--cpus 1` (fresh storage, the default search)."""
    options = TuningOptions(mode=MODE, server=kind, image=ctx.image, cpus=CPUS,
                            iterations=ctx.sizes.iterations,
                            confirm_budget=ctx.sizes.confirm_budget_s,
                            storage=f"sqlite:///{folder / 'deployed.db'}",
                            study_name=f"bench-deployed-{kind}", report_dir=folder / "reports",
                            allow_concurrent=True, quiet=True)
    log(f"tuner run with --cpus {CPUS:g} on the {kind} launcher")
    return tuned_report(ctx, options)


def _measure(launcher: InstanceGroup, params: dict, workload) -> tuple[float, float]:
    """One fresh server's throughput and its throttled ratio over the measurement."""
    with running_server(launcher, settings_from_params(params), MODEL_NAME, 120.0) as server:
        before = throttling_of(launcher.server_pids())
        value, _ = workload.measure(server.clients, lambda phase: None, server.in_flight)
        window = throttling_of(launcher.server_pids()) - before
    return value, window.ratio if window.ratio is not None else 0.0


def print_deployed(kind: str, configs: dict[str, Deployed]) -> str:
    """The table, and the summary keys `deployed_gain` and the throttled ratios."""
    tuned, tutorial = configs["tuned"], configs["tutorial"]
    gain = paired_ratio(BATCH.direction, tuned.samples.values, tutorial.samples.values)
    interval = (f"{gain.ci[0]:.2f}-{gain.ci[1]:.2f}x" if gain.ci else "n/a")
    print_table(f"Inside a {CPUS:g}-CPU quota ({kind} launcher, batch throughput, "
                f"{len(tuned.samples.values)} interleaved rounds)",
                ["configuration", "settings", "samples/s (95% CI)", "throttled (median)"],
                [(name, describe_params(config.params), format_interval(MODE, config.samples),
                  f"{statistics.median(config.throttled):.1%}")
                 for name, config in configs.items()])
    print_table("Tuned over tutorial", ["ratio", "95% CI"], [(f"{gain.ratio:.2f}x", interval)])
    return (f"deployed_gain={gain.ratio:.3f} "
            f"throttled_tuned={statistics.median(tuned.throttled):.3f} "
            f"throttled_tutorial={statistics.median(tutorial.throttled):.3f}")
