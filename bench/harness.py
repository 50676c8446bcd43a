"""What every benchmark shares: the context, one timed trial, interleaved rounds, statistics.

A benchmark trial does what a tuner trial does (restart the server with the settings,
wait for AVAILABLE, warm up, measure, optionally run the accuracy gate, stop), through
the tuner's own `running_server`, workload and gate, and times each phase on the way. Every
comparison is measured in interleaved rounds: each round visits all configurations in
a rotated order with a fresh server each time, so a drift of the host hits all alike.

All ratios are speed ratios as the report states them (`autotune.modes.speedup`):
> 1 means the first is faster (lower latency, or higher throughput).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import optuna

from autotune.assets.prepare import PreparedAssets, prepare_assets
from autotune.data.eval_rows import EvalRows
from autotune.host.facts import HostFacts, detect_host
from autotune.launch import Launcher, ModelLocation, docker_ready, make_launcher
from autotune.launch.group import InstanceGroup
from autotune.measure.accuracy import AccuracyGate, AccuracyResult
from autotune.measure.running import running_server
from autotune.measure.workload import Workload
from autotune.modes import BATCH, ONLINE, get_mode
from autotune.options import DEFAULT_BATCH_SIZE, TuningOptions, default
from autotune.paths import MODEL_NAME
from autotune.protocols import GRPC
from autotune.racing.race import rotated
from autotune.report import build_report
from autotune.search.space import settings_from_params
from autotune.stats import geometric_mean_and_ci95
from autotune.tuning.run import run_tuning

Params = Mapping[str, object]


@dataclass(frozen=True)
class BenchSizes:
    """How much each benchmark measures; `--quick` shrinks everything but the shape."""

    restarts: int
    iterations: int
    replay_seeds: int
    extended_modes: tuple[str, ...]
    reduced_extended_space: bool
    #: rounds of the interleaved comparisons (protocols, instances)
    repeats: int
    #: rounds of the server-mode gain: fewer than 3 give no interval at all, so however
    #: large the gain, the benchmark could not say whether it is significant
    gain_rounds: int
    #: the server-mode study's budget (None: the tuner's default)
    server_trials: int | None
    #: the answer benchmark: tuner runs per mode, seconds of grid rounds per mode (after
    #: at least `grid_min_rounds` rounds: a grid known from one or two rounds judges
    #: nothing), and the racing budget of each tuner run (None: the tuner's default for
    #: the mode, in both: the benchmark judges the answer users get)
    answer_runs: int
    grid_budget_s: float
    grid_min_rounds: int
    confirm_budget_s: float | None
    #: server mode's answer grid with one instance only (bench/answer.grid_configurations)
    reduced_server_grid: bool


FULL = BenchSizes(restarts=5, iterations=40, replay_seeds=50,
                  extended_modes=(ONLINE.name, BATCH.name), reduced_extended_space=False,
                  repeats=3, gain_rounds=5, server_trials=None, answer_runs=5,
                  grid_budget_s=900, grid_min_rounds=10, confirm_budget_s=None,
                  reduced_server_grid=False)
QUICK = BenchSizes(restarts=5, iterations=40, replay_seeds=20, extended_modes=(ONLINE.name,),
                   reduced_extended_space=True, repeats=2, gain_rounds=5, server_trials=8,
                   answer_runs=3, grid_budget_s=150, grid_min_rounds=5, confirm_budget_s=None,
                   reduced_server_grid=True)


@dataclass
class BenchContext:
    """The prepared model, the eval set, the host and the launchers to compare."""

    assets: PreparedAssets
    eval_set: EvalRows
    host: HostFacts
    launchers: tuple[str, ...]
    sizes: BenchSizes
    batch_size: int = DEFAULT_BATCH_SIZE
    image: str = default("image")

    @classmethod
    def create(cls, quick: bool, launchers: Sequence[str],
               image: str = default("image")) -> "BenchContext":
        assets = prepare_assets(quiet=True)
        available = tuple(kind for kind in launchers if kind != "docker" or docker_ready(image))
        for kind in set(launchers) - set(available):
            log(f"skipping the {kind} launcher: no Docker engine or no image "
                "(autotune image build)")
        return cls(assets=assets, eval_set=EvalRows.load(Path(assets.eval_path)),
                   host=detect_host(),
                   launchers=available, sizes=QUICK if quick else FULL, image=image)

    @property
    def model(self) -> ModelLocation:
        return ModelLocation(Path(self.assets.model_dir), MODEL_NAME)

    def launcher(self, kind: str, rest: bool = False) -> Launcher:
        """Launchers of `kind` as the tuner groups them, so a config may run several instances."""
        return InstanceGroup(lambda: make_launcher(kind, self.model, image=self.image, rest=rest),
                             self.host)

    def workload(self, mode: str, objective: str = "mean") -> Workload:
        return Workload.build(mode, objective, self.batch_size, self.sizes.iterations,
                              self.eval_set, seed=0)

    def gate(self) -> AccuracyGate:
        return AccuracyGate(self.eval_set, min_hr=default("min_hr"), min_ndcg=default("min_ndcg"))

    def machine(self) -> str:
        host = self.host
        return (f"{host.cpu_model}, {host.physical_cores} physical cores, "
                f"{host.logical_cpus} logical CPUs, {host.sockets} socket(s)")


class PhaseClock:
    """Records when each phase begins; a phase lasts until the next one begins."""

    def __init__(self) -> None:
        self._marks: list[tuple[str, float]] = []

    def __call__(self, phase: str) -> None:
        self._marks.append((phase, time.perf_counter()))

    def durations(self) -> dict[str, float]:
        """Seconds per phase; the last mark only ends the phase before it."""
        return {phase: later - began
                for (phase, began), (_, later) in itertools.pairwise(self._marks)}


@dataclass(frozen=True)
class TrialTiming:
    """One measured configuration: the objective, the trial attrs, seconds per phase."""

    value: float
    attrs: dict[str, object]
    phases: dict[str, float]
    accuracy: AccuracyResult | None = None

    @property
    def total_s(self) -> float:
        return sum(self.phases.values())


def timed_trial(launcher: Launcher, params: Params, workload: Workload,
                gate: AccuracyGate | None = None, start_timeout_s: float = 120.0,
                protocol: str = GRPC) -> TrialTiming:
    """Measure `params` as a tuner trial does, with a fresh server, over `protocol` (the
    launcher serves REST when it was made with `rest=True`); time every phase.

    The server's life is the tuner's own (`running_server`), whose phase hook is the clock.
    """
    clock = PhaseClock()
    with running_server(launcher, settings_from_params(params), MODEL_NAME, start_timeout_s,
                        on_phase=clock, protocol=protocol) as server:
        value, attrs = workload.measure(server.clients, clock, server.in_flight)
        accuracy = None
        if gate is not None:
            clock("accuracy gate")
            accuracy = gate.check(server.client)
    clock("end")
    return TrialTiming(value=value, attrs=attrs, phases=clock.durations(), accuracy=accuracy)


@dataclass
class Samples:
    """Repeated measurements of one configuration."""

    values: list[float] = field(default_factory=list)
    timings: list[TrialTiming] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """The geometric mean (the centre of `ci95`)."""
        return geometric_mean_and_ci95(self.values)[0]

    @property
    def ci95(self) -> tuple[float, float] | None:
        """The 95% interval on the log scale; None below three values."""
        return geometric_mean_and_ci95(self.values)[1]

    @property
    def cv(self) -> float:
        """Coefficient of variation: stdev / mean (0 for fewer than two values)."""
        values = self.values
        return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0


def interleaved(launcher: Launcher, configs: Mapping[str, Params], workload: Workload,
                repeats: int, gate: AccuracyGate | None = None,
                value_of: str | None = None, budget_s: float | None = None,
                min_rounds: int = 0) -> dict[str, Samples]:
    """Measure every config `repeats` times in rotated rounds, a restart for each.

    `value_of` names a trial attr to record instead of the workload's objective
    (e.g. `latency_ms_p50`). With `budget_s`, a round after the first `min_rounds` is
    started only when one more round as long as the slowest so far still ends within
    the budget.
    """
    labels = list(configs)
    samples = {label: Samples() for label in labels}
    for round_index in budgeted_rounds(repeats, budget_s, min_rounds):
        for label in rotated(labels, round_index):
            timing = timed_trial(launcher, configs[label], workload, gate)
            value = float(timing.attrs[value_of]) if value_of else timing.value
            samples[label].values.append(value)
            samples[label].timings.append(timing)
            log(f"  round {round_index + 1} {launcher.kind} {workload.mode.name} "
                f"{label}: {workload.mode.format(value)}")
    return samples


def budgeted_rounds(limit: int, budget_s: float | None = None,
                    min_rounds: int = 0) -> Iterator[int]:
    """Round indexes 0, 1, ... below `limit`; with `budget_s`, a round after the first
    `min_rounds` is started only when one more round as long as the slowest so far (the
    time until the caller asks for the next index) still ends within the budget."""
    began = time.monotonic()
    slowest = 0.0
    for index in range(limit):
        if (budget_s is not None and index >= min_rounds
                and time.monotonic() - began + slowest > budget_s):
            return
        round_began = time.monotonic()
        yield index
        slowest = max(slowest, time.monotonic() - round_began)


def best_label(samples: Mapping[str, Samples], mode: str) -> str:
    """The configuration with the best mean."""
    pick = min if get_mode(mode).direction == "minimize" else max
    return pick(samples, key=lambda label: samples[label].mean)


def format_value(mode: str, value: float) -> str:
    """The objective of `mode` with its unit, as the report writes it."""
    return get_mode(mode).format(value)


def format_interval(mode: str, samples: Samples) -> str:
    if samples.ci95 is None:
        return f"{format_value(mode, samples.mean)} ({len(samples.values)} value(s): no interval)"
    low, high = samples.ci95
    return (f"{format_value(mode, samples.mean)} "
            f"[{format_value(mode, low)}, {format_value(mode, high)}]")


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A Markdown table on stdout: readable in a terminal, pasteable into BENCHMARKS.md."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    sys.stdout.flush()


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables and the summary."""
    print(message, file=sys.stderr, flush=True)


def ratio(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def tuned_report(ctx: BenchContext, options: TuningOptions) -> dict:
    """Run the tuner with `options` on the prepared assets, its printed report sent to
    stderr (progress here, not a table); the report of the study it wrote."""
    with contextlib.redirect_stdout(sys.stderr):
        run_tuning(options, assets=ctx.assets)
    study = optuna.load_study(study_name=options.study_name, storage=options.storage)
    return build_report(study, Path(options.report_dir))
