"""Search efficiency: how many trials each sampler needs to come within 2% of the optimum.

Measuring a large space once per seed would cost hours, so the extended space's grid is
measured once (a restart per configuration) and every sampler then runs against that
table: a trial's value is the measurement of the configuration it proposes. This is
cheap, the same for every sampler, and repeatable over many seeds. Samplers are
compared alone (TPE as the tuner configures it, random, and grid order, i.e. every
configuration once, shuffled by the seed) and as the tuner runs them (its baselines
first, then TPE).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

import numpy as np
import optuna
from harness import BenchContext, interleaved, log, print_table

from autotune.launch.image import image_default_env
from autotune.modes import get_mode, speedup
from autotune.record.schema import params_key
from autotune.search.space import SearchSpace, baselines, build_space

WITHIN = 0.02
Key = tuple[tuple[str, object], ...]
SamplerFactory = Callable[[SearchSpace, int], optuna.samplers.BaseSampler]


def reduced(space: SearchSpace) -> SearchSpace:
    """The extended space with two values per OpenMP knob and no pinning, for `--quick`."""
    return SearchSpace(max_threads=space.max_threads,
                       kmp_blocktime=(space.kmp_blocktime[0], space.kmp_blocktime[-1]),
                       kmp_affinity=(space.kmp_affinity[0], space.kmp_affinity[-1]))


def measure_table(ctx: BenchContext, kind: str, mode: str, space: SearchSpace) -> dict[Key, float]:
    """Every configuration of `space` measured once, with a restart each."""
    configs = {str(index): params for index, params in enumerate(space.configurations())}
    log(f"measuring the {len(configs)} configurations of the extended space, {mode}, {kind}")
    with ctx.launcher(kind) as launcher:
        samples = interleaved(launcher, configs, ctx.workload(mode), repeats=1)
    return {params_key(configs[label]): s.values[0] for label, s in samples.items()}


def tpe_sampler(space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def random_sampler(space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def grid_order(space: SearchSpace, seed: int) -> list[dict[str, object]]:
    """Every configuration once, shuffled by `seed` (what Optuna's GridSampler does; its
    own class stops the study when the grid is exhausted, which ask-and-tell cannot take)."""
    configurations = list(space.configurations())
    np.random.default_rng(seed).shuffle(configurations)
    return configurations


def trials_to_reach(table: dict[Key, float], space: SearchSpace, direction: str,
                    sampler: optuna.samplers.BaseSampler, first: list[dict[str, object]],
                    target: float, budget: int) -> int:
    """Trials until the best so far is within 2% of `target` (`budget + 1` if never)."""
    study = optuna.create_study(direction=direction, sampler=sampler)
    for params in first:
        study.enqueue_trial(params)
    best: float | None = None
    for number in range(1, budget + 1):
        trial = study.ask()
        value = table[params_key(space.suggest(trial))]
        study.tell(trial, value)
        if best is None or speedup(direction, value, best) > 1:
            best = value
        if speedup(direction, best, target) >= 1 - WITHIN:
            return number
    return budget + 1


@dataclass(frozen=True)
class EfficiencyRow:
    order: str
    median: float
    p90: float
    worst: int
    share_of_grid: float


def replay(table: dict[Key, float], space: SearchSpace, mode: str, seeds: int,
           first: list[dict[str, object]]) -> list[EfficiencyRow]:
    direction = get_mode(mode).direction
    target = (min if direction == "minimize" else max)(table.values())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    orders: dict[str, tuple[SamplerFactory, Callable[[int], list[dict[str, object]]]]] = {
        "TPE": (tpe_sampler, lambda seed: []),
        "random": (random_sampler, lambda seed: []),
        "grid order": (random_sampler, lambda seed: grid_order(space, seed)),
        "tuner (baselines, then TPE)": (tpe_sampler, lambda seed: first),
    }
    rows = []
    for name, (factory, enqueued) in orders.items():
        counts = sorted(trials_to_reach(table, space, direction, factory(space, seed),
                                        enqueued(seed), target, budget=len(table))
                        for seed in range(seeds))
        median = statistics.median(counts)
        rows.append(EfficiencyRow(order=name, median=median,
                                  p90=counts[min(len(counts) - 1, int(0.9 * len(counts)))],
                                  worst=counts[-1], share_of_grid=median / len(table)))
        log(f"  replayed {name}: median {median} trials over {seeds} seeds")
    return rows


def measure_search(ctx: BenchContext, kind: str, mode: str) -> list[EfficiencyRow]:
    space = build_space(ctx.host, extended=True)
    if ctx.sizes.reduced_extended_space:
        space = reduced(space)
    table = measure_table(ctx, kind, mode, space)
    first = [b.params for b in baselines(space, ctx.host, mode, image_default_env())]
    rows = replay(table, space, mode, ctx.sizes.replay_seeds, first)
    print_table(f"Trials to come within {WITHIN:.0%} of the optimum, extended space "
                f"({len(table)} configurations), {kind}, {mode}, {ctx.sizes.replay_seeds} seeds",
                ["order", "median trials", "p90", "worst", "median share of grid"],
                [(r.order, r.median, r.p90, r.worst, f"{r.share_of_grid:.0%}") for r in rows])
    return rows
