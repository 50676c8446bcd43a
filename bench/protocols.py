"""gRPC vs REST: one model, one server, its settings, measured over both protocols.

Side by side at the tutorial's settings, per mode, in interleaved rounds (a fresh server
each time, the order rotated every round):

- gRPC, responses in the typed value fields (TF Serving's default, what the tuner measures),
- gRPC with `--enable_serialization_as_tensor_content` (packed responses; local launcher),
- REST, JSON bodies in the columnar format (what `autotune --protocol rest` measures).

Then, per mode, the default space's whole grid over both protocols in the same
interleaved rounds: the best settings of each, and what each protocol loses with the
other's best, so a reader sees whether a REST deployment needs its own tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness import (
    BenchContext,
    Samples,
    best_label,
    format_interval,
    format_value,
    log,
    print_table,
    ratio,
    timed_trial,
)

from autotune.launch import Launcher
from autotune.launch.image import image_default_env
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from autotune.modes import get_mode, speedup
from autotune.protocols import GRPC, REST
from autotune.racing.race import rotated
from autotune.search.space import baselines, build_space, describe_params

TENSOR_CONTENT_FLAG = "--enable_serialization_as_tensor_content"
GRPC_TYPED, GRPC_PACKED, REST_JSON = "gRPC", "gRPC, tensor_content", "REST"


@dataclass(frozen=True)
class Variant:
    """One way of talking to the server: the protocol, and whether responses are packed."""

    label: str
    protocol: str
    packed: bool = False


VARIANTS = (Variant(GRPC_TYPED, GRPC), Variant(GRPC_PACKED, GRPC, packed=True),
            Variant(REST_JSON, REST))


def _launcher(ctx: BenchContext, kind: str, variant: Variant) -> Launcher:
    if variant.packed:
        return LocalLauncher(ctx.model, program=(*EMBEDDED_SERVER, TENSOR_CONTENT_FLAG),
                             rest=False)
    return ctx.launcher(kind, rest=variant.protocol == REST)


def tutorial_params(ctx: BenchContext, mode: str) -> dict[str, object]:
    """The tutorial's recommended settings for `mode` on this host."""
    space = build_space(ctx.host, None, extended=False)
    named = {b.name: b.params for b in baselines(space, ctx.host, mode, image_default_env())}
    return named["tutorial"]


@dataclass(frozen=True)
class ProtocolRun:
    """One mode's rounds at the tutorial's settings: samples per variant."""

    launcher: str
    mode: str
    samples: dict[str, Samples]

    def rest_vs_grpc(self) -> float:
        """Speed ratio of REST over gRPC (> 1: REST faster)."""
        return speedup(get_mode(self.mode).direction, self.samples[REST_JSON].mean,
                       self.samples[GRPC_TYPED].mean)


def measure_protocols(ctx: BenchContext, kind: str, mode: str) -> ProtocolRun:
    """Rounds over the variants at the tutorial's settings (packed gRPC: local only)."""
    params = tutorial_params(ctx, mode)
    variants = [v for v in VARIANTS if kind == "local" or not v.packed]
    samples = {variant.label: Samples() for variant in variants}
    workload = ctx.workload(mode)
    attr = get_mode(mode).robust_attr  # online p50 (robust to outliers), batch throughput
    for round_index in range(ctx.sizes.repeats):
        for variant in rotated(variants, round_index):
            with _launcher(ctx, kind, variant) as launcher:
                timing = timed_trial(launcher, params, workload, protocol=variant.protocol)
            samples[variant.label].values.append(float(timing.attrs[attr]))
            samples[variant.label].timings.append(timing)
            log(f"  protocols round {round_index + 1} {kind} {mode} {variant.label}: "
                f"{format_value(mode, samples[variant.label].values[-1])}")
    return ProtocolRun(launcher=kind, mode=mode, samples=samples)


def print_protocols(runs: list[ProtocolRun]) -> None:
    labels = [variant.label for variant in VARIANTS]
    print_table("gRPC vs REST at the tutorial's settings (online: p50; batch: throughput; "
                "mean and 95% CI over interleaved rounds)",
                ["launcher", "mode", *labels, "REST vs gRPC"],
                [(run.launcher, run.mode,
                  *(format_interval(run.mode, run.samples[label]) if label in run.samples
                    else "-" for label in labels),
                  ratio(run.rest_vs_grpc())) for run in runs])


@dataclass(frozen=True)
class GridByProtocol:
    """One mode's default grid measured over both protocols in the same rounds."""

    mode: str
    samples: dict[str, dict[str, Samples]]  # protocol -> settings label -> samples

    def best(self, protocol: str) -> str:
        return best_label(self.samples[protocol], self.mode)

    def loss_with_the_others_best(self, protocol: str) -> float:
        """Speed ratio of the protocol's own best over the other protocol's best, both
        measured over `protocol` (1.0: the same settings win both)."""
        other = REST if protocol == GRPC else GRPC
        own, borrowed = self.samples[protocol][self.best(protocol)], \
            self.samples[protocol][self.best(other)]
        return speedup(get_mode(self.mode).direction, own.mean, borrowed.mean)


def measure_grid_by_protocol(ctx: BenchContext, mode: str,
                             max_threads: int | None = None) -> GridByProtocol:
    """Every configuration of the default space (threads up to `max_threads`, default the
    physical cores) over gRPC and REST, interleaved."""
    space = build_space(ctx.host, max_threads, extended=False)
    configs = {describe_params(params): params for params in space.configurations()}
    keys = [(protocol, label) for label in configs for protocol in (GRPC, REST)]
    samples = {protocol: {label: Samples() for label in configs} for protocol in (GRPC, REST)}
    workload = ctx.workload(mode)
    attr = get_mode(mode).robust_attr  # online p50 (robust to outliers), batch throughput
    launchers = {GRPC: ctx.launcher("local"), REST: ctx.launcher("local", rest=True)}
    for round_index in range(ctx.sizes.repeats):
        for protocol, label in rotated(keys, round_index):
            timing = timed_trial(launchers[protocol], configs[label], workload,
                                 protocol=protocol)
            samples[protocol][label].values.append(float(timing.attrs[attr]))
            log(f"  grid round {round_index + 1} {mode} {protocol} {label}: "
                f"{format_value(mode, samples[protocol][label].values[-1])}")
    return GridByProtocol(mode=mode, samples=samples)


def print_grid_by_protocol(grids: list[GridByProtocol]) -> None:
    rows = []
    for grid in grids:
        for protocol in (GRPC, REST):
            best = grid.best(protocol)
            rows.append((grid.mode, protocol, best,
                         format_interval(grid.mode, grid.samples[protocol][best]),
                         ratio(grid.loss_with_the_others_best(protocol))))
    print_table("Best settings per protocol, default grid, local launcher",
                ["mode", "protocol", "best settings", "its value", "own best vs the other's best"],
                rows)


def run_protocols(ctx: BenchContext, modes: Sequence[str], grid_modes: Sequence[str],
                  max_threads: int | None = None) -> None:
    """Both benchmarks of this module, their tables on stdout: the tutorial's settings for
    `modes`, the grid for `grid_modes` (the longest part: `--quick` keeps online only)."""
    print_protocols([measure_protocols(ctx, kind, mode)
                     for kind in ctx.launchers for mode in modes])
    print_grid_by_protocol([measure_grid_by_protocol(ctx, mode, max_threads)
                            for mode in grid_modes])
