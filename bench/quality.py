"""How good is the tuner's answer? Tuned vs the grid optimum, the tutorial and the image.

Per launcher and mode: run the tuner with its default budget (on this host's default
space that is the whole grid, then its confirmation round; one round with `--quick`) and
take the configuration it reports as best; then measure every configuration of the default space in
interleaved rounds, a restart each time. The optimum is the configuration with the best
mean over those rounds; the tuned, tutorial and image-default configurations are read
from the same rounds, so every ratio compares measurements taken side by side.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
from harness import (
    BenchContext,
    Samples,
    best_label,
    format_interval,
    interleaved,
    log,
    print_table,
    ratio,
)

from autotune.image import image_default_env
from autotune.modes import speedup
from autotune.options import TuningOptions
from autotune.report import build_report
from autotune.space import baselines, build_space, describe_params
from autotune.study import run_tuning


@dataclass(frozen=True)
class QualityResult:
    launcher: str
    mode: str
    tuned: str
    optimum: str
    tuned_vs_optimum: float
    tuned_vs_tutorial: float
    tuned_vs_defaults: float


def tuned_params(ctx: BenchContext, kind: str, mode: str, workdir: Path) -> dict[str, object]:
    """The best configuration the tuner reports after its default budget."""
    options = TuningOptions(mode=mode, server=kind, image=ctx.image,
                            iterations=ctx.sizes.iterations,
                            confirm_rounds=ctx.sizes.confirm_rounds,
                            storage=f"sqlite:///{workdir / 'bench.db'}",
                            study_name=f"bench-{kind}-{mode}",
                            report_dir=workdir / "reports", allow_concurrent=True, quiet=True)
    log(f"tuning {mode} on the {kind} launcher with the default budget")
    with contextlib.redirect_stdout(sys.stderr):  # its report is progress here, not a table
        run_tuning(options, assets=ctx.assets)
    study = optuna.load_study(study_name=options.study_name, storage=options.storage)
    return dict(build_report(study)["best"]["params"])


def measure_quality(ctx: BenchContext, kind: str, mode: str) -> QualityResult:
    with tempfile.TemporaryDirectory(prefix="autotune-bench-") as workdir:
        tuned = tuned_params(ctx, kind, mode, Path(workdir))
    space = build_space(ctx.host)
    configs = {describe_params(params): params for params in space.configurations()}
    named = {b.name: describe_params(b.params)
             for b in baselines(space, ctx.host, mode, image_default_env())}
    workload = ctx.workload(mode)
    with ctx.launcher(kind) as launcher:
        samples = interleaved(launcher, configs, workload, ctx.sizes.repeats)
    optimum = best_label(samples, mode)
    tuned_label = describe_params(tuned)
    print_grid(kind, mode, samples, tuned_label, optimum, named)
    mean = {label: s.mean for label, s in samples.items()}
    return QualityResult(
        launcher=kind, mode=mode, tuned=tuned_label, optimum=optimum,
        tuned_vs_optimum=speedup(workload.direction, mean[tuned_label], mean[optimum]),
        tuned_vs_tutorial=speedup(workload.direction, mean[tuned_label],
                                  mean[named["tutorial"]]),
        tuned_vs_defaults=speedup(workload.direction, mean[tuned_label],
                                  mean[named["image-defaults"]]),
    )


def print_grid(kind: str, mode: str, samples: dict[str, Samples], tuned: str, optimum: str,
               named: dict[str, str]) -> None:
    roles = {label: [] for label in samples}
    roles[optimum].append("optimum")
    roles[tuned].append("tuned")
    for name, label in named.items():
        roles[label].append(name)
    print_table(f"Grid of the default space, {kind} launcher, {mode} (mean and 95% CI)",
                ["configuration", "objective", "CV", "role"],
                [(label, format_interval(mode, s), f"{s.cv:.1%}", ", ".join(roles[label]))
                 for label, s in samples.items()])


def print_quality(results: list[QualityResult]) -> None:
    print_table("Quality of the tuned settings (speed ratios, > 1 = tuned faster)",
                ["launcher", "mode", "tuned", "optimum", "tuned/optimum", "tuned/tutorial",
                 "tuned/defaults"],
                [(r.launcher, r.mode, r.tuned, r.optimum, ratio(r.tuned_vs_optimum),
                  ratio(r.tuned_vs_tutorial), ratio(r.tuned_vs_defaults)) for r in results])
