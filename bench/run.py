"""Run the benchmarks and print their tables and one summary line.

    python bench/run.py            # all benchmarks, local and Docker launchers
    python bench/run.py --quick    # a reduced run of all of them, local launcher
    python bench/run.py --search-only --launchers local --modes online   # the full extended grid
    python bench/run.py --server-only --quick   # only the server-mode figures
    python bench/run.py --answer-only --quick --modes server   # only server mode's answer
    python bench/run.py --answer-only --quick   # only the trustworthiness of the answer
    python bench/run.py --protocols-only --launchers local,docker          # gRPC vs REST
    python bench/run.py --instances-only --quick   # several pinned instances vs one
    python bench/run.py --busy-only --quick        # a quiet run and one beside a burner
    python bench/run.py --deployed-only --quick    # tuned vs tutorial inside a 1-CPU quota

Tables go to stdout as Markdown (for BENCHMARKS.md), progress to stderr. The last line:

    summary: tuned/optimum=R1 tuned/tutorial=R2 trial_s=S cv_batch=C1 cv_online=C2
             server_overhead_ms=O batch_efficiency=E loadgen_rps=L slo_qps_gain=G
             slo_qps_gain_significant=B server_answer_worst=SW server_false_claims=SF
             answer_worst=W false_claims=F tune_min=T instances_gain=I

R1 and R2 are speed ratios (> 1: tuned faster) of the median tuner run, the lower of
the two modes, on the first launcher; S the median batch trial with the accuracy gate;
C1 and C2 the coefficients of variation across restarts; O the embedded server's online
p50 minus in-process; E the embedded server's batch throughput over in-process; L the
LoadGen adapter's requests/s at p99 <= --p99-ms against a trivial server, G the
server-mode tuned configuration's requests/s at that bound over the tutorial online
settings', paired by interleaved round, and B whether its 95% interval excludes 1
(bench/server.py); SW and SF the same as W and F for server mode at that bound (its
grid: bench/answer.grid_configurations); W the worst tuner run's ratio to the grid's
optimum over online and batch, F the significant speed-up claims the grid contradicts,
T the median tuner run's wall time in minutes, of the slower of online and batch
(bench/answer.py);
I the best multi-instance batch configuration's throughput over the best single
instance's, on the first launcher (bench/instances.py; n/a on one core).
The data and model are prepared first if missing (not counted in any number).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from answer import Run, measure_answers  # noqa: E402
from busy import measure_busy  # noqa: E402
from deployed import measure_deployed, print_deployed  # noqa: E402
from harness import BenchContext, log, print_table, ratio  # noqa: E402
from instances import measure_instances, print_instances  # noqa: E402
from overhead import client_costs, measure_overhead, print_overhead  # noqa: E402
from protocols import run_protocols  # noqa: E402
from repeatability import measure_restarts, print_cost, print_repeatability  # noqa: E402
from server import server_benchmarks  # noqa: E402

from autotune.modes import BATCH, ONLINE, SERVER  # noqa: E402
from autotune.options import default  # noqa: E402
from search import measure_search  # noqa: E402

#: the modes every benchmark covers
MODES = (ONLINE.name, BATCH.name)


def main() -> int:
    args = _parser().parse_args()
    launchers = (args.launchers or ("local" if args.quick else "local,docker")).split(",")
    began = time.monotonic()
    ctx = BenchContext.create(quick=args.quick, launchers=launchers, image=args.image)
    overrides = {"answer_runs": args.runs, "grid_budget_s": args.grid_budget,
                 "grid_min_rounds": args.grid_rounds, "confirm_budget_s": args.confirm_budget,
                 "server_trials": args.server_trials}
    ctx.sizes = replace(ctx.sizes, **{k: v for k, v in overrides.items() if v is not None})
    _print_header(ctx, args)
    section = next((name for name in SECTIONS if getattr(args, f"{name}_only")), None)
    summary = SECTIONS[section](ctx, args) if section else _everything(ctx, args, began)
    if summary:
        print(f"\nsummary: {summary}")
    log(f"benchmarks done in {(time.monotonic() - began) / 60:.1f} min")
    return 0


def _parser() -> argparse.ArgumentParser:
    """The benchmark's flags: the size, the launchers, one section only, and its knobs."""
    parser = argparse.ArgumentParser(description="autotune benchmarks")
    parser.add_argument("--quick", action="store_true", help="a reduced run (local launcher only)")
    parser.add_argument("--launchers", default=None,
                        help="comma-separated: local,docker "
                             "(default: local with --quick, else both)")
    parser.add_argument("--search-only", action="store_true",
                        help="only the search-efficiency benchmark (its grid is the longest part)")
    parser.add_argument("--modes", default=None,
                        help="comma-separated modes of the search benchmark and of the "
                             "protocol grid (default: online with --quick, else online,batch), "
                             "and of the protocols at the tutorial's settings and of "
                             "--answer-only (default: online,batch; server too there)")
    parser.add_argument("--server-only", action="store_true",
                        help="only the server-mode benchmarks (LoadGen capacity, gain at "
                             "the bound, the answer against a grid)")
    parser.add_argument("--p99-ms", type=float, default=10.0,
                        help="the p99 bound of the server-mode benchmarks (default 10)")
    parser.add_argument("--server-trials", type=int, default=None,
                        help="budget of the server-mode studies (default: 8 with --quick, "
                             "else the tuner's default)")
    parser.add_argument("--answer-only", action="store_true",
                        help="only the answer benchmark (grid rounds, then tuner runs)")
    parser.add_argument("--runs", type=int, default=None,
                        help="tuner runs per mode of the answer benchmark "
                             "(default 3 quick, 5 full)")
    parser.add_argument("--grid-budget", type=float, default=None,
                        help="seconds of grid rounds per mode (default 150 quick, 900 full)")
    parser.add_argument("--grid-rounds", type=int, default=None,
                        help="rounds of the answer grid before its budget counts "
                             "(default 5 quick, 10 full)")
    parser.add_argument("--confirm-budget", type=float, default=None,
                        help="racing budget of each tuner run (default: the tuner's for "
                             f"the mode, {ONLINE.racing_budget_s:g} s; server mode "
                             f"{SERVER.racing_budget_s:g} s)")
    parser.add_argument("--protocols-only", action="store_true",
                        help="only gRPC vs REST: the tutorial's settings over each protocol, "
                             "and the default grid over both")
    parser.add_argument("--image", default=default("image"),
                        help="serving image of the docker launcher (default %(default)s; a "
                             "work in progress measures its own tag)")
    parser.add_argument("--max-threads", type=int, default=None,
                        help="upper bound of the protocol grid's thread settings "
                             "(default: physical cores)")
    parser.add_argument("--busy-only", action="store_true",
                        help="only the busy-host benchmark: the online grid, then a default "
                             "run on the quiet host and one beside a one-CPU burner")
    parser.add_argument("--instances-only", action="store_true",
                        help="only the several-instances benchmark (its own batch grid)")
    parser.add_argument("--restarts-only", action="store_true",
                        help="only the tutorial's settings restarted (repeatability, a "
                             "trial's cost) and the embedded server against in-process")
    parser.add_argument("--deployed-only", action="store_true",
                        help="only tuned (--cpus 1) vs the tutorial sized to the node, both "
                             "inside a 1-CPU quota, side by side (needs root: a cgroup per "
                             "local server)")
    return parser


def _print_header(ctx: BenchContext, args: argparse.Namespace) -> None:
    """The command, the date, the machine, the model (and the image) of this run."""
    print(f"# autotune benchmarks{' (--quick)' if args.quick else ''}\n")
    print(f"- command: `python bench/run.py {' '.join(sys.argv[1:])}`".rstrip())
    print(f"- date: {datetime.date.today().isoformat()}")
    print(f"- machine: {ctx.machine()}, Python {platform.python_version()}")
    print(f"- model: {ctx.assets.model_dir} (dataset {ctx.assets.dataset})")
    if "docker" in ctx.launchers:
        print(f"- image: {ctx.image}")


def _search_modes(ctx: BenchContext, args: argparse.Namespace) -> list[str]:
    return args.modes.split(",") if args.modes else list(ctx.sizes.extended_modes)


def _server_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    keys = server_benchmarks(ctx, args.p99_ms, ctx.sizes.server_trials,
                             ctx.sizes.gain_rounds)
    return f"{keys} {answer_keys(measure_answers(ctx, ctx.launchers[0], SERVER.name, args.p99_ms))}"


def _protocols_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    run_protocols(ctx, args.modes.split(",") if args.modes else list(MODES),
                  _search_modes(ctx, args), args.max_threads)
    return ""


def _search_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    for mode in _search_modes(ctx, args):
        measure_search(ctx, ctx.launchers[0], mode)
    return ""


def _answer_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    answer_modes = args.modes.split(",") if args.modes else MODES
    return answer_keys([run for mode in answer_modes
                        for run in measure_answers(ctx, ctx.launchers[0], mode, args.p99_ms)])


def _busy_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    runs = measure_busy(ctx, ctx.launchers[0])
    quiet, busy = runs
    return (f"busy_foreign_cpu={busy.load['search']['foreign_cpu']['median']:.2f} "
            f"quiet_foreign_cpu={quiet.load['search']['foreign_cpu']['median']:.2f}")


def _instances_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    gains = [measure_instances(ctx, kind) for kind in ctx.launchers]
    print_instances(gains)
    return f"instances_gain={ratio(gains[0].gain)}"


def _restarts_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    """The tutorial's settings restarted in each mode and launcher (repeatability, a
    trial's cost), then the embedded server against in-process; the summary keys (of
    the local launcher's runs)."""
    restart_runs = [measure_restarts(ctx, kind, mode) for kind in ctx.launchers for mode in MODES]
    print_repeatability(restart_runs)
    print_cost(restart_runs)
    overhead = measure_overhead(ctx, {r.mode: r.params for r in restart_runs})
    print_overhead(overhead, client_costs(ctx, restart_runs[0].params))
    local_runs = {r.mode: r for r in restart_runs if r.launcher == "local"}
    by_mode = {o.mode: o for o in overhead}
    return (f"trial_s={local_runs[BATCH.name].trial_s:.1f} "
            f"cv_batch={local_runs[BATCH.name].samples.cv:.4f} "
            f"cv_online={local_runs[ONLINE.name].samples.cv:.4f} "
            f"server_overhead_ms={by_mode[ONLINE.name].server_overhead_ms():.3f} "
            f"batch_efficiency={by_mode[BATCH.name].efficiency():.3f}")


def _deployed_only(ctx: BenchContext, args: argparse.Namespace) -> str:
    kind = ctx.launchers[0]
    return print_deployed(kind, measure_deployed(ctx, kind))


#: `--NAME-only` runs one section: its function, which returns its summary keys (or "")
SECTIONS = {"server": _server_only, "protocols": _protocols_only, "search": _search_only,
            "answer": _answer_only, "instances": _instances_only, "busy": _busy_only,
            "deployed": _deployed_only, "restarts": _restarts_only}


def _everything(ctx: BenchContext, args: argparse.Namespace, began: float) -> str:
    """Every benchmark in turn, and the whole summary line's keys."""
    restart_keys = _restarts_only(ctx, args)
    answers = [run for mode in MODES for run in measure_answers(ctx, ctx.launchers[0], mode)]
    gains = [measure_instances(ctx, kind) for kind in ctx.launchers]
    print_instances(gains)
    search_modes = _search_modes(ctx, args)
    for mode in search_modes:
        measure_search(ctx, ctx.launchers[0], mode)
    run_protocols(ctx, list(MODES), search_modes, args.max_threads)
    server_keys = _server_only(ctx, args)
    minutes = (time.monotonic() - began) / 60
    print_table("Run", ["launchers", "minutes"], [(",".join(ctx.launchers), f"{minutes:.1f}")])
    return (f"tuned/optimum={ratio(_median_run(answers, 'vs_optimum'))} "
            f"tuned/tutorial={ratio(_median_run(answers, 'vs_tutorial'))} "
            f"{restart_keys} {server_keys} "
            f"{answer_keys(answers)} instances_gain={ratio(gains[0].gain)}")


def _median_run(runs: list[Run], attr: str) -> float:
    """The lower over the modes of the median run's ratio."""
    return min(statistics.median(getattr(run, attr) for run in runs if run.mode == mode)
               for mode in {run.mode for run in runs})


def answer_keys(runs: list[Run]) -> str:
    """`answer_worst=W false_claims=F tune_min=T` of the summary line over online and
    batch runs (T: the median run's minutes of the slower mode),
    `server_answer_worst=SW server_false_claims=SF` over server-mode runs (each where
    there are such runs)."""
    keys = []
    for prefix, judged in (("", [r for r in runs if r.mode != SERVER.name]),
                           ("server_", [r for r in runs if r.mode == SERVER.name])):
        if judged:
            keys.append(f"{prefix}answer_worst={ratio(min(run.vs_optimum for run in judged))} "
                        f"{prefix}false_claims={sum(len(run.contradicted) for run in judged)}")
    timed = [run for run in runs if run.mode != SERVER.name]
    if timed:
        slower = max(_median_minutes(timed, mode) for mode in {run.mode for run in timed})
        keys.append(f"tune_min={slower:.1f}")
    return " ".join(keys)


def _median_minutes(runs: list[Run], mode: str) -> float:
    """The median wall time, in minutes, of the runs of `mode`."""
    return statistics.median(run.minutes for run in runs if run.mode == mode)


if __name__ == "__main__":
    raise SystemExit(main())
