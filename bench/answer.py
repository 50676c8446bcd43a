"""How trustworthy is the tuner's answer? K tuner runs from scratch against a well-measured grid.

Per mode (on the first launcher): the tuner runs from scratch `answer_runs` times (a
fresh study each time, its default search and racing with `confirm_budget_s`; server
mode with `server_trials` trials at the bench's `--p99-ms`); then every configuration of
the grid is measured in rounds side by side, as the tuner races
(autotune.measure.side_by_side: each round a fresh server for every configuration, all
up at once, visited in a rotated order, in the mode's blocks: short blocks of requests,
or server mode's peak at the bound, searched in full in the first round and refined
around the last one after): at least `grid_min_rounds` rounds, then for as long as
`grid_budget_s` allows. The grid is the mode's default space (`grid_configurations`:
server mode's has 400 configurations with batching, so its grid is the space without
batching, threads x instances, and with `--quick` one instance: the threads alone),
plus the baselines and every run's recommendation, so that each is judged by rounds it
was measured in. The grid's optimum is the configuration with the best geometric mean,
and which configurations the grid cannot tell apart from it is printed. Per run:

- the recommended configuration and its ratio to the grid's optimum, from the grid's
  own paired rounds (1.000 = the optimum, or measured as fast);
- each speed-up the run claims as significant, checked against the grid: the claim is
  contradicted when the grid's paired ratio of the same two configurations points the
  other way (<= 1 where the claim says faster, >= 1 where it says slower) or its 95%
  interval does not overlap the claim's.

`answer_worst` is the worst run's ratio to the optimum over online and batch and
`false_claims` the number of their contradicted claims; `server_answer_worst` and
`server_false_claims` the same for server mode (bench/run.answer_keys); `tune_min` the
median run's wall time in minutes (the tuner on the prepared data and model: search,
racing and report), of the slower of online and batch.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Iterable

from harness import (
    BenchContext,
    Params,
    Samples,
    budgeted_rounds,
    format_interval,
    log,
    print_table,
    ratio,
    tuned_report,
)

from autotune.errors import BoundMissedError, MeasurementError
from autotune.launch.image import image_default_env
from autotune.measure.blocks import ROUND_CAP_S, racing_blocks
from autotune.measure.peak import ServerLoad
from autotune.measure.side_by_side import SideBySide
from autotune.measure.workload import Workload
from autotune.modes import ONLINE, Mode, get_mode
from autotune.options import (
    DEFAULT_P99_MS,
    DEFAULT_REQUEST_TIMEOUT_S,
    PeakPolicy,
    RunSettings,
    TuningOptions,
)
from autotune.racing.race import rotated
from autotune.search.space import SearchSpace, baselines, build_space, describe_params
from autotune.stats import PairedRatio, paired_ratio

#: an upper bound on grid rounds; the budget decides first
MAX_GRID_ROUNDS = 1000
#: seconds of blocks each configuration gets in a grid round, where not the race's
#: (`ROUND_CAP_S`). The grid is the referee, and a round's server starts cost about as
#: much as the race's 3 s of blocks, so online, the noisy mode, gets three times as many
#: blocks per start. One online block's paired log-ratio varies by 0.20-0.25 here (80
#: alternated blocks of four servers, 2026-11-29) and a server's life adds only ~2.5%,
#: so a round's paired ratio of 12 blocks varied by 7.4% (the median pair of a 5-round
#: grid), where 4 blocks leave ~13%; batch blocks vary a third as much.
GRID_ROUND_CAP_S = {ONLINE.name: 3 * ROUND_CAP_S}


@dataclass(frozen=True)
class Grid:
    """The default space measured in rounds side by side: values per configuration label."""

    mode: str
    direction: str
    samples: dict[str, Samples]
    roles: dict[str, list[str]]
    #: server mode: configurations that missed the bound even at the lowest rate (out of
    #: the grid from then on: they hold no rate at the bound)
    missed: list[str] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        return min(len(s.values) for s in self.samples.values())

    def ratio(self, label: str, reference: str) -> PairedRatio:
        """How many times faster `label` is than `reference` in the grid's rounds (one that
        missed the bound is infinitely slower: no interval)."""
        if label in self.missed or reference in self.missed:
            return PairedRatio(0.0 if label in self.missed else math.inf, None, 0)
        return paired_ratio(self.direction, self.samples[label].values,
                            self.samples[reference].values)

    @property
    def optimum(self) -> str:
        sign = -1 if self.direction == "minimize" else 1
        return max(self.samples, key=lambda label: sign * sum(
            math.log(v) for v in self.samples[label].values) / len(self.samples[label].values))

    def tied_with_optimum(self) -> list[str]:
        optimum = self.optimum
        return [label for label in self.samples
                if label != optimum and not self.ratio(optimum, label).significant]


@dataclass
class Run:
    """One tuner run from scratch and what the grid says of it."""

    mode: str
    recommended: str
    vs_optimum: float
    vs_tutorial: float
    #: the run's race: its finalists, the rounds it ran and why it stopped
    race: str = ""
    #: the run's wall time, from its first check to its report written
    minutes: float = math.nan
    claims: list[str] = field(default_factory=list)
    contradicted: list[str] = field(default_factory=list)


def grid_configurations(space: SearchSpace, mode: Mode, reduced: bool) -> list[Params]:
    """The configurations a grid measures: the mode's default space; server mode's
    without batching (its batching knobs make 400 on two cores), and `reduced` (--quick)
    with one instance too."""
    configs = space.configurations()
    if not mode.searches_batching:
        return list(configs)
    return [params for params in configs if not params.get("enable_batching")
            and (not reduced or params.get("instances", 1) == 1)]


def measure_grid(ctx: BenchContext, kind: str, mode: str, extra: Iterable[Params] = (),
                 p99_ms: float = DEFAULT_P99_MS, log_root: Path | None = None) -> Grid:
    """The grid of `mode` (`grid_configurations`, the baselines and `extra`), every
    configuration measured in rounds side by side (server mode at `p99_ms`, LoadGen's
    logs under `log_root`)."""
    searches = get_mode(mode)
    space = build_space(ctx.host, batching=searches.searches_batching,
                        instances=searches.searches_instances)
    found = baselines(space, ctx.host, mode, image_default_env())
    configs = {describe_params(params): dict(params) for params in [
        *grid_configurations(space, searches, ctx.sizes.reduced_server_grid),
        *(baseline.params for baseline in found), *extra]}
    roles: dict[str, list[str]] = {label: [] for label in configs}
    for baseline in found:
        roles[describe_params(baseline.params)].append(baseline.name)
    workload = ctx.workload(mode)
    if searches.bounded:
        assert log_root is not None, "a server-mode grid keeps LoadGen's logs"
        workload = replace(workload, server_load=ServerLoad(
            RunSettings(bound_ms=p99_ms), PeakPolicy(), log_root))
    log(f"measuring a grid of {len(configs)} configurations side by side, "
        f"{mode}, {kind}, in at least {ctx.sizes.grid_min_rounds} rounds, then rounds for "
        f"{ctx.sizes.grid_budget_s:.0f} s")
    missed: list[str] = []
    samples = side_by_side_rounds(ctx, kind, configs, workload, missed)
    return Grid(mode=mode, direction=workload.direction, samples=samples, roles=roles,
                missed=missed)


def side_by_side_rounds(ctx: BenchContext, kind: str, configs: dict[str, Params],
                        workload: Workload, missed: list[str]) -> dict[str, Samples]:
    """Rounds of every configuration at once, as the tuner races (autotune.measure.side_by_side
    in the mode's blocks; online with more blocks a round, `GRID_ROUND_CAP_S`), in a
    rotated order: at least `grid_min_rounds`, then while one more round as long as the
    slowest so far ends within `grid_budget_s`. A configuration that misses the bound
    even at the lowest rate (server mode) goes to `missed` and out of the rounds."""
    labels = list(configs)
    samples = {label: Samples() for label in labels}
    blocks = racing_blocks(workload, cap_s=GRID_ROUND_CAP_S.get(workload.mode.name, ROUND_CAP_S))
    with SideBySide(lambda: ctx.launcher(kind), blocks, start_timeout_s=120.0,
                    request_timeout_s=DEFAULT_REQUEST_TIMEOUT_S) as measure_round:
        for index in budgeted_rounds(MAX_GRID_ROUNDS, ctx.sizes.grid_budget_s,
                                     ctx.sizes.grid_min_rounds):
            order = rotated(labels, index)
            measure_round([configs[label] for label in order], partial(_keep, order, missed,
                                                                       samples))
            labels = [label for label in labels if label not in missed]
            log(f"  round {index + 1}: " + ", ".join(
                f"{label} {workload.mode.format(samples[label].values[-1])}" for label in labels))
    return {label: samples[label] for label in labels}


def _keep(order: list[str], missed: list[str], samples: dict[str, Samples], at: int,
          outcome: float | MeasurementError) -> None:
    """The round's value of the configuration `order[at]`; one that missed the bound even
    at the lowest rate is `missed`; any other failure ends the benchmark."""
    if isinstance(outcome, BoundMissedError):
        log(f"  {order[at]}: {outcome}")
        missed.append(order[at])
    elif isinstance(outcome, MeasurementError):
        raise outcome
    else:
        samples[order[at]].values.append(outcome)


def tuner_report(ctx: BenchContext, kind: str, mode: str, run: int, workdir: Path,
                 p99_ms: float = DEFAULT_P99_MS) -> dict:
    """The report of one tuner run from scratch (fresh storage), with the default search
    (server mode: `server_trials` trials, at `p99_ms`)."""
    options = TuningOptions(mode=mode, server=kind, image=ctx.image,
                            iterations=ctx.sizes.iterations, p99_ms=p99_ms,
                            trials=ctx.sizes.server_trials if get_mode(mode).bounded else None,
                            confirm_budget=ctx.sizes.confirm_budget_s,
                            storage=f"sqlite:///{workdir / f'run{run}.db'}",
                            study_name=f"bench-{kind}-{mode}-{run}",
                            report_dir=workdir / "reports", allow_concurrent=True, quiet=True)
    log(f"tuner run {run + 1}: {mode} on the {kind} launcher")
    return tuned_report(ctx, options)


def judge(grid: Grid, report: dict, minutes: float) -> Run:
    """The run's recommendation and claims, checked against the grid's measurements; it
    took `minutes`."""
    recommended = describe_params(report["best"]["params"])
    tutorial = next(label for label, roles in grid.roles.items() if "tutorial" in roles)
    racing = report["racing"]
    result = Run(mode=grid.mode, recommended=recommended,
                 vs_optimum=grid.ratio(recommended, grid.optimum).ratio,
                 vs_tutorial=grid.ratio(recommended, tutorial).ratio, minutes=minutes,
                 race=(f"{len(racing['finalists'])} finalists, {racing['rounds']} rounds, "
                       f"{racing['stopped']}") if racing else "not raced")
    for name, claim in report["speedup"].items():
        if not claim["significant"]:
            continue
        baseline = describe_params(report["baselines"][name]["params"])
        seen = grid.ratio(recommended, baseline)
        low, high = claim["ci95"]
        text = f"{claim['ratio']:.2f}x vs {name} [{low:.2f}, {high:.2f}]; grid {_interval(seen)}"
        result.claims.append(text)
        if contradicts(claim, seen):
            result.contradicted.append(text)
    return result


def contradicts(claim: dict, seen: PairedRatio) -> bool:
    """Whether the grid points the other way, or its interval misses the claim's."""
    faster = claim["ratio"] > 1
    if (seen.ratio <= 1) if faster else (seen.ratio >= 1):
        return True
    low, high = claim["ci95"]
    return seen.ci is not None and (seen.ci[1] < low or seen.ci[0] > high)


def _interval(seen: PairedRatio) -> str:
    if seen.ci is None:
        return f"{seen.ratio:.2f}x ({seen.pairs} rounds: no interval)"
    return f"{seen.ratio:.2f}x [{seen.ci[0]:.2f}, {seen.ci[1]:.2f}]"


def measure_answers(ctx: BenchContext, kind: str, mode: str,
                    p99_ms: float = DEFAULT_P99_MS) -> list[Run]:
    """`answer_runs` tuner runs of `mode`, then its grid (with every run's recommendation
    and baseline), each run judged against it; prints both."""
    with tempfile.TemporaryDirectory(prefix="autotune-bench-") as workdir:
        reports, minutes = [], []
        for run in range(ctx.sizes.answer_runs):
            began = time.monotonic()
            reports.append(tuner_report(ctx, kind, mode, run, Path(workdir), p99_ms))
            minutes.append((time.monotonic() - began) / 60)
        judged = [report["best"]["params"] for report in reports] + [
            baseline["params"] for report in reports
            for baseline in report["baselines"].values() if baseline]
        grid = measure_grid(ctx, kind, mode, judged, p99_ms, Path(workdir) / "grid-loadgen")
    print_grid(kind, grid)
    runs = [judge(grid, report, took) for report, took in zip(reports, minutes, strict=True)]
    budget = TuningOptions(mode=mode, confirm_budget=ctx.sizes.confirm_budget_s).racing_budget
    print_table(f"The tuner's answer, {ctx.sizes.answer_runs} runs from scratch, {kind}, {mode} "
                f"(racing budget {budget:.0f} s; ratios from the grid's "
                "rounds)",
                ["run", "minutes", "recommended", "tuned/optimum", "tuned/tutorial", "race",
                 "significant claims (grid's ratio)", "contradicted"],
                [(index + 1, f"{r.minutes:.1f}", r.recommended, ratio(r.vs_optimum),
                  ratio(r.vs_tutorial), r.race, "; ".join(r.claims) or "none",
                  len(r.contradicted))
                 for index, r in enumerate(runs)])
    return runs


def print_grid(kind: str, grid: Grid) -> None:
    optimum = grid.optimum
    print_table(f"Grid of the {grid.mode} space, {kind}, {grid.rounds} rounds side by "
                "side (geometric mean and 95% CI; ratio: the optimum's speed over it, paired by "
                "round)",
                ["configuration", "objective", "CV", "optimum vs it", "role"],
                [(label, format_interval(grid.mode, s), f"{s.cv:.1%}",
                  "-" if label == optimum else _interval(grid.ratio(optimum, label)),
                  ", ".join((["optimum"] if label == optimum else []) + grid.roles[label]))
                 for label, s in grid.samples.items()])
    tied = grid.tied_with_optimum()
    print(f"\nOptimum: {optimum}; the grid cannot tell it apart from: {', '.join(tied) or 'none'}.")
    if grid.missed:
        print(f"Missed the bound even at the lowest rate: {', '.join(grid.missed)}.")

