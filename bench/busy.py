"""What a busy host does to the answer, and whether the report says so.

Online mode, on the first launcher: the default space's grid measured side by side on
the quiet host (the referee, as in bench/answer.py), then a default tuner run from
scratch on the quiet host and one beside another job: a detached process burning one
CPU for the whole run (the same burner the tests use, tests/burner.py). For each run:
its recommendation, the load its report states (`host.load`: other processes' CPU and
steal over the search and the racing, and whether it warned), and the quiet grid's
paired ratio of the recommendation to the grid's optimum.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from answer import measure_grid, print_grid, tuner_report
from harness import BenchContext, log, print_table, ratio

from autotune.modes import ONLINE
from autotune.search.space import describe_params

MODE = ONLINE.name


def _tests_burner() -> ModuleType:
    """tests/burner.py, the tests' detached burner (by its path: tests/ is no package)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "burner.py"
    spec = importlib.util.spec_from_file_location("burner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class BusyRun:
    """One tuner run: quiet or beside the burner, what it recommended and reported."""

    host: str
    recommended: str
    load: dict
    vs_optimum: float


def measure_busy(ctx: BenchContext, kind: str) -> list[BusyRun]:
    """The quiet grid, then a quiet run and a run beside a one-CPU burner; prints all."""
    grid = measure_grid(ctx, kind, MODE)
    print_grid(kind, grid)
    runs = []
    with tempfile.TemporaryDirectory(prefix="autotune-bench-busy-") as workdir:
        for index, busy in enumerate((False, True)):
            if busy:
                cpu = min(os.sched_getaffinity(0))
                log(f"a detached process burns CPU {cpu} for the whole run")
                with _tests_burner().cpu_burner(cpu, seconds=3600):
                    report = tuner_report(ctx, kind, MODE, index, Path(workdir))
            else:
                report = tuner_report(ctx, kind, MODE, index, Path(workdir))
            recommended = describe_params(report["best"]["params"])
            runs.append(BusyRun(host="beside a one-CPU burner" if busy else "quiet",
                                recommended=recommended, load=report["host"]["load"],
                                vs_optimum=grid.ratio(recommended, grid.optimum).ratio))
    print_busy(runs, kind)
    return runs


def _spread(load: dict, phase: str) -> str:
    spread = load.get(phase)
    if not spread:
        return "-"
    return (f"{spread['foreign_cpu']['median']:.0%} ({spread['foreign_cpu']['worst']:.0%}), "
            f"steal {spread['steal']['median']:.0%} ({spread['steal']['worst']:.0%})")


def print_busy(runs: list[BusyRun], kind: str) -> None:
    print_table(f"A quiet host and a busy one, {MODE}, {kind} (load: other processes' CPU, "
                "median (worst); ratio from the quiet grid's rounds)",
                ["host", "recommended", "load, search", "load, racing", "report warned",
                 "tuned/optimum"],
                [(r.host, r.recommended, _spread(r.load, "search"), _spread(r.load, "racing"),
                  "yes" if r.load.get("warning") else "no", ratio(r.vs_optimum))
                 for r in runs])
