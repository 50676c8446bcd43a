"""Run the benchmarks and print their tables and one summary line.

    python bench/run.py            # all benchmarks, local and Docker launchers
    python bench/run.py --quick    # a reduced run of all of them, local launcher
    python bench/run.py --search-only --launchers local --modes online   # the full extended grid
    python bench/run.py --server-only --quick   # only the server-mode figures

Tables go to stdout as Markdown (for BENCHMARKS.md), progress to stderr. The last line:

    summary: tuned/optimum=R1 tuned/tutorial=R2 trial_s=S cv_batch=C1 cv_online=C2
             server_overhead_ms=O batch_efficiency=E loadgen_rps=L slo_qps_gain=G

R1 and R2 are speed ratios (> 1: tuned faster), the lower of the two modes on the local
launcher; S the median batch trial with the accuracy gate; C1 and C2 the coefficients
of variation across restarts; O the embedded server's online p50 minus in-process;
E the embedded server's batch throughput over in-process; L the LoadGen adapter's
requests/s at p99 <= --p99-ms against a trivial server, G the server-mode tuned
configuration's requests/s at that bound over the tutorial online settings' (bench/server.py).
The data and model are prepared first if missing (not counted in any number).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from harness import BenchContext, log, print_table, ratio  # noqa: E402
from overhead import client_costs, measure_overhead, print_overhead  # noqa: E402
from quality import measure_quality, print_quality  # noqa: E402
from repeatability import measure_restarts, print_cost, print_repeatability  # noqa: E402
from search import measure_search  # noqa: E402
from server import server_benchmarks  # noqa: E402

from autotune.modes import BATCH, ONLINE  # noqa: E402

#: the modes every benchmark covers
MODES = (ONLINE.name, BATCH.name)


def main() -> int:
    parser = argparse.ArgumentParser(description="autotune benchmarks")
    parser.add_argument("--quick", action="store_true", help="a reduced run (local launcher only)")
    parser.add_argument("--launchers", default=None,
                        help="comma-separated: local,docker "
                             "(default: local with --quick, else both)")
    parser.add_argument("--search-only", action="store_true",
                        help="only the search-efficiency benchmark (its grid is the longest part)")
    parser.add_argument("--modes", default=None,
                        help="comma-separated modes of the search benchmark (default: online "
                             "with --quick, else online,batch)")
    parser.add_argument("--server-only", action="store_true",
                        help="only the server-mode benchmarks (LoadGen capacity, gain at "
                             "the bound)")
    parser.add_argument("--p99-ms", type=float, default=10.0,
                        help="the p99 bound of the server-mode benchmarks (default 10)")
    parser.add_argument("--server-trials", type=int, default=None,
                        help="budget of the server-mode study (default: 8 with --quick, "
                             "else the tuner's default)")
    args = parser.parse_args()
    launchers = (args.launchers or ("local" if args.quick else "local,docker")).split(",")
    began = time.monotonic()
    ctx = BenchContext.create(quick=args.quick, launchers=launchers)
    print(f"# autotune benchmarks{' (--quick)' if args.quick else ''}\n")
    print(f"- command: `python bench/run.py {' '.join(sys.argv[1:])}`".rstrip())
    print(f"- date: {datetime.date.today().isoformat()}")
    print(f"- machine: {ctx.machine()}, Python {platform.python_version()}")
    print(f"- model: {ctx.assets.model_dir} (dataset {ctx.assets.dataset})")

    server_trials = args.server_trials or ctx.sizes.server_trials
    if args.server_only:
        keys = server_benchmarks(ctx, args.p99_ms, server_trials, ctx.sizes.repeats)
        print(f"\nsummary: {keys}")
        return 0

    search_modes = args.modes.split(",") if args.modes else ctx.sizes.extended_modes
    if args.search_only:
        for mode in search_modes:
            measure_search(ctx, ctx.launchers[0], mode)
        log(f"benchmarks done in {(time.monotonic() - began) / 60:.1f} min")
        return 0

    restart_runs = [measure_restarts(ctx, kind, mode) for kind in ctx.launchers for mode in MODES]
    print_repeatability(restart_runs)
    print_cost(restart_runs)

    overhead = measure_overhead(ctx, {r.mode: r.params for r in restart_runs})
    costs = client_costs(ctx, restart_runs[0].params)
    print_overhead(overhead, costs)

    quality = [measure_quality(ctx, kind, mode) for kind in ctx.launchers for mode in MODES]
    print_quality(quality)

    for mode in search_modes:
        measure_search(ctx, ctx.launchers[0], mode)

    server_keys = server_benchmarks(ctx, args.p99_ms, server_trials, ctx.sizes.repeats)

    local_quality = [q for q in quality if q.launcher == "local"]
    local_runs = {r.mode: r for r in restart_runs if r.launcher == "local"}
    by_mode = {o.mode: o for o in overhead}
    minutes = (time.monotonic() - began) / 60
    print_table("Run", ["launchers", "minutes"], [(",".join(ctx.launchers), f"{minutes:.1f}")])
    print("\nsummary: "
          f"tuned/optimum={ratio(min(q.tuned_vs_optimum for q in local_quality))} "
          f"tuned/tutorial={ratio(min(q.tuned_vs_tutorial for q in local_quality))} "
          f"trial_s={local_runs[BATCH.name].trial_s:.1f} "
          f"cv_batch={local_runs[BATCH.name].samples.cv:.4f} "
          f"cv_online={local_runs[ONLINE.name].samples.cv:.4f} "
          f"server_overhead_ms={by_mode[ONLINE.name].server_overhead_ms():.3f} "
          f"batch_efficiency={by_mode[BATCH.name].efficiency():.3f} {server_keys}")
    log(f"benchmarks done in {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
