"""Repeatability and the cost of a trial, from one set of runs.

One configuration per mode (the tutorial's) is measured with at least five restarts,
each a full tuner trial with the accuracy gate. The spread of the objective across the
restarts (coefficient of variation: online p50 latency, batch throughput) says how far
one trial's number can be trusted; the time each phase took says what a trial costs
and which phase to make faster.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from harness import BenchContext, Samples, format_value, interleaved, print_table

from autotune.launch.image import image_default_env
from autotune.modes import get_mode
from autotune.search.space import baselines, build_space

PHASES = ("server start", "model AVAILABLE", "warm-up", "measuring", "accuracy gate", "stop")


@dataclass(frozen=True)
class RestartRuns:
    launcher: str
    mode: str
    params: dict[str, object]
    samples: Samples

    def phase_median(self, phase: str) -> float:
        return statistics.median(t.phases.get(phase, 0.0) for t in self.samples.timings)

    @property
    def trial_s(self) -> float:
        return statistics.median(t.total_s for t in self.samples.timings)

    @property
    def slowest_phase(self) -> str:
        return max(PHASES, key=self.phase_median)


def tutorial_params(ctx: BenchContext, mode: str) -> dict[str, object]:
    space = build_space(ctx.host)
    named = {b.name: b.params for b in baselines(space, ctx.host, mode, image_default_env())}
    return named["tutorial"]


def measure_restarts(ctx: BenchContext, kind: str, mode: str) -> RestartRuns:
    """`ctx.sizes.restarts` full trials of the tutorial configuration, gate included."""
    params = tutorial_params(ctx, mode)
    value_of = get_mode(mode).robust_attr
    with ctx.launcher(kind) as launcher:
        samples = interleaved(launcher, {"tutorial": params}, ctx.workload(mode),
                              ctx.sizes.restarts, gate=ctx.gate(), value_of=value_of)
    return RestartRuns(launcher=kind, mode=mode, params=params, samples=samples["tutorial"])


def print_repeatability(runs: list[RestartRuns]) -> None:
    print_table("Repeatability across restarts (online: p50 latency; batch: throughput)",
                ["launcher", "mode", "restarts", "mean", "min", "max", "CV"],
                [(r.launcher, r.mode, len(r.samples.values), format_value(r.mode, r.samples.mean),
                  format_value(r.mode, min(r.samples.values)),
                  format_value(r.mode, max(r.samples.values)), f"{r.samples.cv:.2%}")
                 for r in runs])


def print_cost(runs: list[RestartRuns]) -> None:
    print_table("Cost of a trial, median seconds per phase",
                ["launcher", "mode", *PHASES, "trial total", "slowest phase"],
                [(r.launcher, r.mode, *(f"{r.phase_median(p):.2f}" for p in PHASES),
                  f"{r.trial_s:.2f}", r.slowest_phase) for r in runs])
