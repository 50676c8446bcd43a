"""Several pinned instances vs one, batch mode: is the split worth it on this host?

The best multi-instance configuration and the best single-instance one are picked from
the batch grid of the default space (every thread setting with every instance count,
measured side by side in interleaved rounds). Each is measured as the tuner measures
it: every instance kept busy at once with as many requests in flight as its inter-op
parallelism, so the grid's inter-op values give each side one and two requests in
flight to choose from. The two
winners are then measured again, alone, in fresh interleaved rounds, so their ratio
(`instances_gain`, > 1: several instances faster) is not the luck of picking the best
of many noisy grid cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness import BenchContext, Samples, format_interval, interleaved, log, print_table

from autotune.modes import BATCH
from autotune.record.schema import instances_of
from autotune.search.space import build_space, describe_params

MODE = BATCH.name


@dataclass(frozen=True)
class InstancesResult:
    launcher: str
    single: str
    multi: str | None
    samples: dict[str, Samples]

    @property
    def gain(self) -> float:
        """Mean throughput of the best multi-instance configuration over the best single one."""
        if self.multi is None:
            return math.nan
        return self.samples[self.multi].mean / self.samples[self.single].mean


def measure_instances(ctx: BenchContext, kind: str) -> InstancesResult:
    """Measure the batch grid, pick both winners from it and re-measure them."""
    space = build_space(ctx.host, instances=BATCH.searches_instances)
    configs = {describe_params(params): params for params in space.configurations()}
    log(f"measuring the {len(configs)} batch configurations, {kind}, for the instances gain")
    with ctx.launcher(kind) as launcher:
        grid = interleaved(launcher, configs, ctx.workload(MODE), ctx.sizes.repeats)
    by_mean = sorted(grid, key=lambda label: grid[label].mean, reverse=True)
    single = next(label for label in by_mean if instances_of(configs[label]) == 1)
    multi = next((label for label in by_mean if instances_of(configs[label]) > 1), None)
    if multi is None:
        log("one physical core: no multi-instance configuration to compare")
        return InstancesResult(kind, single, None, {})
    log(f"instances gain: {multi} vs {single}, {ctx.sizes.restarts} interleaved rounds")
    with ctx.launcher(kind) as launcher:
        samples = interleaved(launcher, {single: configs[single], multi: configs[multi]},
                              ctx.workload(MODE), ctx.sizes.restarts)
    return InstancesResult(kind, single, multi, samples)


def print_instances(results: list[InstancesResult]) -> None:
    print_table("Several pinned instances vs one, batch (mean and 95% CI over fresh interleaved "
                "rounds; in flight per instance = inter-op)",
                ["launcher", "best single instance", "throughput", "best multi-instance",
                 "throughput", "instances_gain"],
                [(r.launcher, r.single, format_interval(MODE, r.samples[r.single])
                  if r.samples else "-", r.multi or "-",
                  format_interval(MODE, r.samples[r.multi]) if r.multi else "-",
                  f"{r.gain:.3f}" if r.multi else "n/a") for r in results])
