"""Server mode's two figures: the LoadGen adapter's capacity, and the tuned gain at the bound.

- Capacity (`loadgen_rps`): the highest rate at which LoadGen, through autotune's SUT,
  sustains p99 <= the bound against a trivial Predict server (the native one,
  bench/trivial_server.cc, else the Python one, bench/trivial_server.py; its own process
  on this host). Each of a few fixed rates (CAPACITY_QPS) is run CAPACITY_RUNS times in
  interleaved rounds, and a rate counts as sustained when most of its runs meet the
  bound: single short runs on a shared VM pass and fail by chance (a scheduling hiccup
  decides a 2 s run's p99), which a bisecting search that stops at its first miss
  cannot tell from the adapter's limit. Each run also records the CPU each process
  spent per query (LoadGen's process, the client processes, the server): what the
  adapter completes whatever the p99, and where the time goes. Measured with each kind
  of client process the adapter has (native and Python) one after the other;
  `loadgen_rps` is the one the tuner uses here (native where it builds).
- Gain (`slo_qps_gain`): run `autotune --mode server` with its default budget (or
  `server_trials`), then measure its best configuration and the tutorial's online
  settings side by side in interleaved rounds (five, `BenchSizes.gain_rounds`: two
  give no interval and so no verdict), a fresh server each time; the gain is the paired
  ratio of their requests/s at the bound, with its 95% interval.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from harness import BenchContext, Samples, interleaved, log, print_table, tuned_report
from native_build import native_server_argv
from tensorflow_serving.apis import predict_pb2

from autotune.launch._ports import free_port
from autotune.launch.image import image_default_env
from autotune.measure.loadgen import PYTHON, PredictSUT, RunResult, client_program
from autotune.measure.native import NativeUnavailable
from autotune.measure.peak import ServerLoad
from autotune.measure.workload import Workload
from autotune.modes import SERVER
from autotune.options import PeakPolicy, RunSettings, TuningOptions
from autotune.paths import MODEL_NAME
from autotune.search.space import baselines, build_space, describe_params
from autotune.stats import PairedRatio, paired_ratio

TRIVIAL_SERVER = Path(__file__).with_name("trivial_server.py")
#: the target rates the capacity is judged at...
CAPACITY_QPS = (1000.0, 2000.0, 3000.0, 4000.0, 5000.0)
#: ...each run this many times, in interleaved rounds (most must meet the bound)...
CAPACITY_RUNS = 3
#: ...each run this long, so that LoadGen's early stopping judges the p99 over tens of
#: thousands of queries (over the tuner's 1,024+ it asks for a tighter tail than 1%)
CAPACITY_RUN_S = 10.0


@dataclass(frozen=True)
class MeasuredRun:
    """One LoadGen run and the CPU each process spent per query during it."""

    run: RunResult
    loadgen_cpu_us: float
    clients_cpu_us: float
    server_cpu_us: float


@dataclass(frozen=True)
class Capacity:
    #: every run at each target rate
    runs: dict[float, list[MeasuredRun]]
    server: str
    #: the client processes' program (`ClientProgram.describe()`)
    client: str

    @staticmethod
    def sustained(runs: list[MeasuredRun]) -> bool:
        """Most of a rate's runs met the bound."""
        return 2 * sum(measured.run.meets_bound for measured in runs) > len(runs)

    @property
    def qps(self) -> float:
        """The highest rate sustained (0: none)."""
        return max((rate for rate, runs in self.runs.items() if self.sustained(runs)),
                   default=0.0)


def _trivial_server_argv(port: int) -> tuple[str, list[str]]:
    """Which trivial server runs (native if it can be built here) and its command."""
    try:
        return "native (C++)", native_server_argv(port)
    except NativeUnavailable as reason:
        log(f"  native trivial server unavailable ({reason}); using the Python one, "
            "which caps the capacity measured")
        return "Python", [sys.executable, str(TRIVIAL_SERVER), str(port)]


@contextlib.contextmanager
def trivial_server() -> "contextlib.Generator[tuple[str, str, psutil.Process], None, None]":
    """The trivial server as a child process; which one, its address and process."""
    port = free_port()
    kind, argv = _trivial_server_argv(port)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        process.stdout.readline()  # "listening" once it serves
        yield kind, f"127.0.0.1:{port}", psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def measure_capacity(bound_ms: float, settings: RunSettings, workdir: Path,
                     client: str | None = None) -> Capacity:
    """Runs at each CAPACITY_QPS against the trivial server, in interleaved rounds, with
    the CPU per query; `client` is the kind of client process (None: the tuner's choice)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    settings = dataclasses.replace(settings, bound_ms=bound_ms, min_duration_s=CAPACITY_RUN_S,
                                   max_duration_s=2 * CAPACITY_RUN_S)
    runs: dict[float, list[MeasuredRun]] = {rate: [] for rate in CAPACITY_QPS}
    with (trivial_server() as (kind, address, server),
          PredictSUT(address, [request.SerializeToString()], client=client) as sut):
        processes = [psutil.Process(), [psutil.Process(pid) for pid in sut.pids], server]
        for round_number in range(CAPACITY_RUNS):
            for rate in CAPACITY_QPS:
                log_dir = workdir / f"round-{round_number}-{rate:.0f}"
                runs[rate].append(_measured_run(sut, rate, settings, log_dir, *processes))
        capacity = Capacity(runs=runs, server=kind, client=sut.client.describe())
    log(f"  adapter capacity with the {capacity.client} client: {capacity.qps:,.0f} "
        f"requests/s at p99 <= {bound_ms:g} ms against the {kind} trivial server")
    return capacity


def _measured_run(sut: PredictSUT, rate: float, settings: RunSettings, log_dir: Path,
                  loadgen: psutil.Process, clients: list[psutil.Process],
                  server: psutil.Process) -> MeasuredRun:
    groups = [[loadgen], clients, [server]]
    before = [_cpu_s(group) for group in groups]
    run = sut.run(rate, settings, log_dir)
    loadgen_us, clients_us, server_us = ((_cpu_s(group) - start) / run.queries * 1e6
                                         for group, start in zip(groups, before, strict=True))
    return MeasuredRun(run, loadgen_cpu_us=loadgen_us, clients_cpu_us=clients_us,
                       server_cpu_us=server_us)


def _cpu_s(processes: list[psutil.Process]) -> float:
    return sum(times.user + times.system for times in (p.cpu_times() for p in processes))


def print_capacity(capacity: Capacity, bound_ms: float) -> None:
    def median(values: list[float], digits: int) -> str:
        return f"{statistics.median(values):,.{digits}f}"

    print_table(f"LoadGen adapter capacity with the {capacity.client} client processes against "
                f"the {capacity.server} trivial server: {capacity.qps:,.0f} requests/s at "
                f"p99 <= {bound_ms:g} ms (most of {CAPACITY_RUNS} interleaved runs meet it; "
                "medians over the runs)",
                ["target/s", "runs meeting the bound", "p99 ms of each run", "completed/s",
                 "p50 ms", "LoadGen process CPU us/query", "client processes CPU us/query",
                 "server CPU us/query"],
                [(f"{rate:,.0f}", f"{sum(m.run.meets_bound for m in runs)} of {len(runs)}",
                  ", ".join(f"{m.run.p99_ms:.1f}" for m in runs),
                  median([m.run.completed_qps for m in runs], 0),
                  median([m.run.p50_ms for m in runs], 2),
                  median([m.loadgen_cpu_us for m in runs], 0),
                  median([m.clients_cpu_us for m in runs], 0),
                  median([m.server_cpu_us for m in runs], 0))
                 for rate, runs in capacity.runs.items()])


@dataclass(frozen=True)
class SloGain:
    launcher: str
    tuned: str
    tutorial: str
    samples: dict[str, Samples]

    @property
    def paired(self) -> PairedRatio:
        """The tuned configuration's requests/s over the tutorial's, paired by round."""
        return paired_ratio("maximize", self.samples["tuned"].values,
                            self.samples["tutorial"].values)

    @property
    def gain(self) -> float:
        return self.paired.ratio


def tuned_server_params(ctx: BenchContext, kind: str, bound_ms: float, trials: int | None,
                        workdir: Path) -> dict[str, object]:
    """The best configuration `autotune --mode server` reports."""
    options = TuningOptions(mode=SERVER, server=kind, image=ctx.image, p99_ms=bound_ms,
                            trials=trials, storage=f"sqlite:///{workdir / 'bench.db'}",
                            study_name=f"bench-{kind}-server", report_dir=workdir / "reports",
                            allow_concurrent=True, quiet=True)
    log(f"tuning server mode on the {kind} launcher ({trials or 'default'} trials)")
    return dict(tuned_report(ctx, options)["best"]["params"])


def measure_slo_gain(ctx: BenchContext, kind: str, bound_ms: float, trials: int | None,
                     rounds: int) -> SloGain:
    """Tuned vs the tutorial's online settings at the bound, in interleaved rounds."""
    with tempfile.TemporaryDirectory(prefix="autotune-bench-server-") as workdir:
        tuned = tuned_server_params(ctx, kind, bound_ms, trials, Path(workdir))
        space = build_space(ctx.host, batching=SERVER.searches_batching,
                            instances=SERVER.searches_instances)
        tutorial = baselines(space, ctx.host, SERVER, image_default_env())[0].params
        load = ServerLoad(RunSettings(bound_ms=bound_ms), PeakPolicy(), Path(workdir) / "rounds")
        workload = Workload.build(SERVER, "mean", ctx.batch_size, 1, ctx.eval_set, seed=0,
                                  server_load=load)
        with ctx.launcher(kind) as launcher:
            configs = {"tuned": tuned, "tutorial": tutorial}
            samples = interleaved(launcher, configs, workload, rounds)
    return SloGain(launcher=kind, tuned=describe_params(tuned), tutorial=describe_params(tutorial),
                   samples=samples)


def print_slo_gain(result: SloGain, bound_ms: float) -> None:
    def interval(samples: Samples) -> str:
        if samples.ci95 is None:
            return f"{samples.mean:,.0f} (no interval)"
        low, high = samples.ci95
        return f"{samples.mean:,.0f} [{low:,.0f}, {high:,.0f}]"

    paired = result.paired
    gain = (f"{paired.ratio:.3f} [{paired.ci[0]:.3f}, {paired.ci[1]:.3f}], "
            f"{'significant' if paired.significant else 'not significant'} at 95%"
            if paired.ci else f"{paired.ratio:.3f} (fewer than 3 rounds: no interval)")
    print_table(f"Requests/s at p99 <= {bound_ms:g} ms, {result.launcher} launcher "
                f"(geometric mean and 95% CI over {len(result.samples['tuned'].values)} "
                "interleaved rounds; gain: paired by round)",
                ["configuration", "params", "requests/s", "gain over the tutorial"],
                [("tuned", result.tuned, interval(result.samples["tuned"]), gain),
                 ("tutorial", result.tutorial, interval(result.samples["tutorial"]), "1")])


def server_benchmarks(ctx: BenchContext, bound_ms: float, trials: int | None, rounds: int,
                      settings: RunSettings = RunSettings()) -> str:
    """Both server-mode benchmarks; the `loadgen_rps=.. slo_qps_gain=..` summary keys."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autotune-bench-capacity-") as workdir:
        capacity = measure_capacity(bound_ms, settings, Path(workdir))
        print_capacity(capacity, bound_ms)
        if client_program().kind != PYTHON:  # the fallback's capacity, for comparison
            print_capacity(measure_capacity(bound_ms, settings, Path(workdir) / PYTHON, PYTHON),
                           bound_ms)
    gain = measure_slo_gain(ctx, ctx.launchers[0], bound_ms, trials, rounds)
    print_slo_gain(gain, bound_ms)
    log(f"server-mode benchmarks done in {(time.monotonic() - began) / 60:.1f} min")
    return (f"loadgen_rps={capacity.qps:.0f} slo_qps_gain={gain.gain:.3f} "
            f"slo_qps_gain_significant={str(gain.paired.significant).lower()}")
