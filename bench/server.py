"""Server mode's two figures: the LoadGen adapter's capacity, and the tuned gain at the bound.

- Capacity (`loadgen_rps`): the highest rate at which LoadGen, through autotune's SUT,
  sustains p99 <= the bound against a trivial Predict server (the native one,
  bench/trivial_server.cc, else the Python one, bench/trivial_server.py; its own process
  on this host), found by the tuner's own peak search. Then one run at that rate and
  one at each of a few fixed rates (SWEEP_QPS), each with the CPU each side spent per
  query (load generator processes vs server process): what the adapter completes
  whatever the p99, and where the time goes.
- Gain (`slo_qps_gain`): run `autotune --mode server` with its default budget (or
  `server_trials`), then measure its best configuration and the tutorial's online
  settings side by side in interleaved rounds, a fresh server each time; the gain is
  the ratio of their mean requests/s at the bound.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import psutil
from harness import BenchContext, Samples, interleaved, log, print_table
from native_build import NativeUnavailable, native_server_argv
from tensorflow_serving.apis import predict_pb2

from autotune.image import image_default_env
from autotune.loadgen import PredictSUT, RunResult
from autotune.measure import Workload
from autotune.modes import SERVER
from autotune.options import PeakPolicy, RunSettings, TuningOptions
from autotune.paths import MODEL_NAME
from autotune.peak import ServerLoad, find_peak
from autotune.report import build_report
from autotune.space import baselines, build_space, describe_params
from autotune.study import run_tuning

TRIVIAL_SERVER = Path(__file__).with_name("trivial_server.py")
#: where the capacity search starts (the adapter is expected to pass thousands)
CAPACITY_START_QPS = 500.0
#: fixed target rates run after the search: what the adapter completes whatever the p99
SWEEP_QPS = (1000.0, 2000.0, 3000.0, 4000.0)


@dataclass(frozen=True)
class MeasuredRun:
    """One LoadGen run and the CPU each side spent per query during it."""

    run: RunResult
    client_cpu_us: float
    server_cpu_us: float


@dataclass(frozen=True)
class Capacity:
    qps: float
    #: one more run at the peak rate, then one at each SWEEP_QPS
    runs: list[MeasuredRun]
    server: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    port = _free_port()
    kind, argv = _trivial_server_argv(port)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        process.stdout.readline()  # "listening" once it serves
        yield kind, f"127.0.0.1:{port}", psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def measure_capacity(bound_ms: float, settings: RunSettings, workdir: Path) -> Capacity:
    """The adapter's peak rate under `bound_ms` against the trivial server, and CPU per query."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    settings = dataclasses.replace(settings, bound_ms=bound_ms)
    with (trivial_server() as (kind, address, server),
          PredictSUT(address, [request.SerializeToString()]) as sut):
        peak = find_peak(lambda rate: sut.run(rate, settings, workdir / f"capacity-{rate:.0f}"),
                         PeakPolicy(start_qps=CAPACITY_START_QPS), bound_ms)
        log(f"  adapter capacity: {peak.qps_at_slo:,.0f} requests/s at p99 <= {bound_ms:g} ms "
            f"against the {kind} trivial server; now the CPU per query at fixed rates")
        # the load generator is LoadGen's process and the client processes
        client = [psutil.Process(), *map(psutil.Process, sut.pids)]
        runs = [_measured_run(sut, rate, settings, workdir / f"fixed-{rate:.0f}", client, server)
                for rate in (peak.qps_at_slo, *SWEEP_QPS)]
    return Capacity(qps=peak.qps_at_slo, runs=runs, server=kind)


def _measured_run(sut: PredictSUT, rate: float, settings: RunSettings, log_dir: Path,
                  client: list[psutil.Process], server: psutil.Process) -> MeasuredRun:
    before = _cpu_s(client), _cpu_s([server])
    run = sut.run(rate, settings, log_dir)
    return MeasuredRun(run, client_cpu_us=(_cpu_s(client) - before[0]) / run.queries * 1e6,
                       server_cpu_us=(_cpu_s([server]) - before[1]) / run.queries * 1e6)


def _cpu_s(processes: list[psutil.Process]) -> float:
    return sum(times.user + times.system for times in (p.cpu_times() for p in processes))


def print_capacity(capacity: Capacity, bound_ms: float) -> None:
    print_table(f"LoadGen adapter capacity against the {capacity.server} trivial server: "
                f"{capacity.qps:,.0f} requests/s at p99 <= {bound_ms:g} ms; one run per rate",
                ["target/s", "completed/s", "p50 ms", "p99 ms", "meets bound", "errors",
                 "load generator CPU us/query", "server CPU us/query"],
                [(f"{m.run.target_qps:,.0f}", f"{m.run.completed_qps:,.0f}",
                  f"{m.run.p50_ms:.2f}", f"{m.run.p99_ms:.2f}",
                  "yes" if m.run.meets_bound else "no", str(m.run.errors),
                  f"{m.client_cpu_us:.0f}", f"{m.server_cpu_us:.0f}")
                 for m in capacity.runs])


@dataclass(frozen=True)
class SloGain:
    launcher: str
    tuned: str
    tutorial: str
    samples: dict[str, Samples]

    @property
    def gain(self) -> float:
        return self.samples["tuned"].mean / self.samples["tutorial"].mean


def tuned_server_params(ctx: BenchContext, kind: str, bound_ms: float, trials: int | None,
                        workdir: Path) -> dict[str, object]:
    """The best configuration `autotune --mode server` reports."""
    options = TuningOptions(mode=SERVER, server=kind, image=ctx.image, p99_ms=bound_ms,
                            trials=trials, storage=f"sqlite:///{workdir / 'bench.db'}",
                            study_name=f"bench-{kind}-server", report_dir=workdir / "reports",
                            allow_concurrent=True, quiet=True)
    log(f"tuning server mode on the {kind} launcher ({trials or 'default'} trials)")
    with contextlib.redirect_stdout(sys.stderr):
        run_tuning(options, assets=ctx.assets)
    study = optuna.load_study(study_name=options.study_name, storage=options.storage)
    return dict(build_report(study, workdir / "reports")["best"]["params"])


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
        low, high = samples.ci95
        return f"{samples.mean:,.0f} [{low:,.0f}, {high:,.0f}]"

    print_table(f"Requests/s at p99 <= {bound_ms:g} ms, {result.launcher} launcher "
                f"(mean and 95% CI over {len(result.samples['tuned'].values)} interleaved rounds)",
                ["configuration", "params", "requests/s", "gain"],
                [("tuned", result.tuned, interval(result.samples["tuned"]), f"{result.gain:.3f}"),
                 ("tutorial", result.tutorial, interval(result.samples["tutorial"]), "1.000")])


def server_benchmarks(ctx: BenchContext, bound_ms: float, trials: int | None, rounds: int,
                      settings: RunSettings = RunSettings()) -> str:
    """Both server-mode benchmarks; the `loadgen_rps=.. slo_qps_gain=..` summary keys."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autotune-bench-capacity-") as workdir:
        capacity = measure_capacity(bound_ms, settings, Path(workdir))
    print_capacity(capacity, bound_ms)
    gain = measure_slo_gain(ctx, ctx.launchers[0], bound_ms, trials, rounds)
    print_slo_gain(gain, bound_ms)
    log(f"server-mode benchmarks done in {(time.monotonic() - began) / 60:.1f} min")
    return f"loadgen_rps={capacity.qps:.0f} slo_qps_gain={gain.gain:.3f}"
