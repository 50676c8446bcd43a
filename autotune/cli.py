"""Argument parsing for the `autotune` command; every subcommand hands off to a module.

    autotune --mode online|batch|server [options]   the tuner (autotune.tuning)
    autotune prepare [options]               eval set and NCF SavedModel (autotune.assets.prepare)
    autotune serve [server flags]            the embedded model server (autotune.serving)
    autotune image build [--offline]         the serving image (autotune.launch.image)
    autotune report [options]                report of a stored study (autotune.report.commands)
    autotune check --env-file FILE [options] a study's recommendation vs the deployed settings
                                             (autotune.check)
    autotune dashboard [options]             optuna-dashboard (autotune.report.dashboard)

Heavy modules are imported inside the handlers, so `autotune --help` stays instant.
An `AutotuneError` becomes its one-line message and exit code; see autotune.errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from autotune.errors import AutotuneError
from autotune.launch import LAUNCHER_KINDS
from autotune.modes import MODES, ONLINE
from autotune.options import (
    CHECK_BUDGET_S,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BUDGET,
    LATENCY_STATISTICS,
    MAX_SEED,
    SPACES,
    CheckOptions,
    default,
    from_flags,
)
from autotune.paths import DEFAULT_IMAGE, DEFAULT_REPORT_DIR, DEFAULT_STORAGE
from autotune.protocols import PROTOCOLS

DATASETS = ("synthetic", "ml-1m", "ml-100k", "ml-20m", "ml-latest")
SUBCOMMANDS = ("prepare", "serve", "image", "report", "check", "dashboard")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose refusal of a flag is one line and exit 2, as every other
    refusal of the tool's (not the usage text first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"autotune: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_SEED}, "
                                         f"got {text}")
    return value


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and model")
    group.add_argument("--dataset", choices=DATASETS, default=default("dataset"),
                       help="MovieLens size, or the offline synthetic ml-1m look-alike (default)")
    group.add_argument("--data-dir", type=Path, default=None,
                       help="folder with <dataset>/<ratings file> (default $AUTOTUNE_HOME/data)")
    group.add_argument("--model-dir", type=Path, default=None,
                       help="model base path with numeric versions (default under $AUTOTUNE_HOME)")
    group.add_argument("--epochs", type=_positive_int, default=None,
                       help="training epochs (default: the dataset's tuned value)")
    group.add_argument("--seed", type=_seed, default=default("seed"),
                       help="seed for data, sampling and training")
    group.add_argument("--download", action="store_true",
                       help="fetch the MovieLens files from GroupLens if they are missing")


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=DEFAULT_STORAGE,
                        help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    parser.add_argument("--study-name", default=None,
                        help="study name (default: built from mode and host)")


def _by_mode(field: str) -> str:
    """`; server mode 14`: the modes whose `Mode` `field` differs from online's, for a
    flag's help."""
    return "".join(f"; {mode.name} mode {getattr(mode, field):g}" for mode in MODES.values()
                   if getattr(mode, field) != getattr(ONLINE, field))


def _tuning_parser() -> argparse.ArgumentParser:
    """`autotune --mode ...`: one group of flags per concern, in the order of a run."""
    parser = _Parser(
        prog="autotune",
        description="Find the fastest TensorFlow Serving thread settings for this host. "
                    f"Subcommands: {', '.join(SUBCOMMANDS)} (autotune SUBCOMMAND --help).",
    )
    parser.add_argument("--mode", choices=tuple(MODES), required=True,
                        help="; ".join(f"{mode.name}: {mode.summary}" for mode in MODES.values()))
    for add_options in (_add_server_options, _add_deployment_options, _add_search_options,
                        _add_measurement_options, _add_constraint_options, _add_requests_options,
                        _add_data_options,
                        _add_study_options, _add_fleet_options):
        add_options(parser)
    return parser


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """Which server runs the trials, over which protocol, and its timeouts."""
    run = parser.add_argument_group("server")
    run.add_argument("--server", choices=LAUNCHER_KINDS, default=default("server"),
                     help="auto: docker when an engine and the image are there, else local")
    run.add_argument("--protocol", choices=PROTOCOLS, default=default("protocol"),
                     help="measure over TF Serving's gRPC API (port 8500) or its REST API "
                          "(8501); server mode: gRPC only (default %(default)s)")
    run.add_argument("--image", default=default("image"),
                     help="serving image for --server docker (default %(default)s)")
    run.add_argument("--start-timeout", type=float, default=default("start_timeout"),
                     help="seconds a server may take to report the model AVAILABLE")
    run.add_argument("--request-timeout", type=float, default=default("request_timeout"),
                     help="seconds a request may take before its trial fails as hung "
                          "(default %(default)s)")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _add_deployment_options(parser: argparse.ArgumentParser) -> None:
    """The limits the servers will be deployed under, and right-sizing them."""
    deploy = parser.add_argument_group(
        "deployment limits (tune for the pod or container the server will run in)")
    deploy.add_argument("--cpus", type=_positive_float, default=default("cpus"), metavar="N",
                        help="every trial server runs under a CFS quota of N CPUs, as with "
                             "`docker run --cpus` or a pod's CPU limit (default: none; a "
                             "quota on the tuner's own cgroup is read and bounds the space)")
    deploy.add_argument("--cpuset-cpus", default=default("cpuset_cpus"), metavar="LIST",
                        help="every trial server runs on these CPUs only, e.g. 0-3")
    deploy.add_argument("--memory", type=_positive_float, default=default("memory"),
                        metavar="MB", help="every trial server's memory limit in MB")
    deploy.add_argument("--target-qps", type=_positive_float, default=default("target_qps"),
                        metavar="Q", help="server mode: search the CPU limit too and "
                        "recommend the smallest whose peak under --p99-ms is at least Q "
                        "requests/s")


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    """The budget and the space of the search."""
    search = parser.add_argument_group("search")
    search.add_argument("--trials", type=_positive_int, default=default("trials"),
                        help="new trials to run (default: the whole grid when small, "
                             f"else {DEFAULT_BUDGET}{_by_mode('default_trials')})")
    search.add_argument("--timeout", type=float, default=default("timeout"),
                        help="stop starting trials after S seconds")
    search.add_argument("--space", choices=SPACES, default=default("space"),
                        help="extended adds KMP_BLOCKTIME, KMP_AFFINITY and CPU pinning")
    search.add_argument("--max-threads", type=_positive_int, default=default("max_threads"),
                        help="upper bound of every thread setting (default: physical cores)")
    search.add_argument("--warm-start", default=default("warm_start"), metavar="auto|none|STUDY",
                        help="first try, after the baselines, the best configurations of other "
                             "host classes' studies of this mode and model in the storage "
                             "(auto), of one study, or none (default %(default)s)")


def _add_measurement_options(parser: argparse.ArgumentParser) -> None:
    """How a trial and the racing measure."""
    measure = parser.add_argument_group("measurement")
    measure.add_argument("--objective", choices=LATENCY_STATISTICS, default=default("objective"),
                         help="online latency statistic to minimise (default %(default)s)")
    measure.add_argument("--batch-size", type=_positive_int, default=default("batch_size"),
                         help=f"samples per request in batch mode (default {DEFAULT_BATCH_SIZE:,}; "
                              "from recorded requests: the largest record's)")
    measure.add_argument("--iterations", type=_positive_int, default=default("iterations"),
                         help="most requests measured per batch trial (default %(default)s)")
    measure.add_argument("--precision", type=float, default=default("precision"),
                         help="measure a trial until the 95%% interval of its objective is "
                              "within this share of it, or a cap is hit (default %(default)s)")
    measure.add_argument("--max-foreign-cpu", type=float, default=default("max_foreign_cpu"),
                         metavar="F", help="a trial or racing round measured while other "
                         "processes (or steal) took more than this share of the CPU waits for "
                         "the host to calm and is measured once more (default: never; the "
                         "load is recorded and reported either way)")
    measure.add_argument("--quiet-wait", type=float, default=default("quiet_wait"),
                         metavar="S", help="seconds a busy measurement waits for the host to "
                         "calm (default %(default)s)")
    measure.add_argument("--p99-ms", type=float, default=default("p99_ms"),
                         help="server mode: the p99 latency bound in ms (default %(default)s)")
    measure.add_argument("--confirm-top", type=_positive_int, default=default("confirm_top"),
                         help="best configurations raced with the baselines after the search "
                              f"(default {ONLINE.racing_top}{_by_mode('racing_top')})")
    measure.add_argument("--confirm-budget", type=float, default=default("confirm_budget"),
                         help="seconds the racing of the finalists may take, 0 to skip "
                              f"(default {ONLINE.racing_budget_s:g}{_by_mode('racing_budget_s')})")
    measure.add_argument("--confirm-precision", type=float, default=default("confirm_precision"),
                         help="stop racing when the survivors are tied within this share "
                              "(default %(default)s)")


def _add_constraint_options(parser: argparse.ArgumentParser) -> None:
    """What makes a trial infeasible: the accuracy floors and the memory limit."""
    gate = parser.add_argument_group("constraints (accuracy gate, memory)")
    gate.add_argument("--min-hr", type=float, default=default("min_hr"),
                      help="HR@10 floor (default %(default)s)")
    gate.add_argument("--min-ndcg", type=float, default=default("min_ndcg"),
                      help="NDCG@10 floor (default %(default)s)")
    gate.add_argument("--accuracy-users", type=_positive_int, default=default("accuracy_users"),
                      help="score a seeded sample of N users (default all; the NCF model)")
    gate.add_argument("--max-memory-mb", type=float, default=default("max_memory_mb"),
                      help="resident memory limit of a trial's servers, all instances together "
                           "(default: none)")


def _add_requests_options(parser: argparse.ArgumentParser) -> None:
    """Any model: the recorded requests measured, and the output-agreement gate."""
    own = parser.add_argument_group("your own model (recorded requests, output agreement)")
    own.add_argument("--requests", type=Path, default=default("requests"), metavar="FILE",
                     help="a TFRecord file of tensorflow.serving.PredictionLog requests to "
                          "measure (default: the served version's assets.extra/"
                          "tf_serving_warmup_requests; the NCF model: its eval set)")
    own.add_argument("--rtol", type=float, default=default("rtol"),
                     help="a trial's outputs must be np.allclose to the reference with this "
                          "rtol (default %(default)s)")
    own.add_argument("--atol", type=float, default=default("atol"),
                     help="... and this atol (default %(default)s)")


def _add_study_options(parser: argparse.ArgumentParser) -> None:
    """Where the study and the report live."""
    study = parser.add_argument_group("study and report")
    _add_storage_options(study)
    study.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR,
                       help=f"where the report files go (default {DEFAULT_REPORT_DIR})")
    study.add_argument("--allow-concurrent", action="store_true",
                       help="run even if another tuner holds this host's lock")
    study.add_argument("--quiet", action="store_true", help="no progress display")


def _add_fleet_options(parser: argparse.ArgumentParser) -> None:
    """Several hosts of one class on one storage."""
    fleet = parser.add_argument_group("fleet (several hosts on one storage; see README)")
    fleet.add_argument("--host-class", default=default("host_class"), metavar="NAME",
                       help="group this host by NAME instead of by its hardware")
    fleet.add_argument("--heartbeat-interval", type=_positive_int,
                       default=default("heartbeat_interval"), metavar="S",
                       help="seconds between a running trial's heartbeats (default %(default)s)")
    fleet.add_argument("--grace-period", type=_positive_int, default=default("grace_period"),
                       metavar="S", help="a trial silent this long is failed and its "
                                         "configuration measured again (default %(default)s)")


def _subcommand_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autotune")
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare",
                                  help="build the eval set, train and export the NCF model")
    _add_data_options(prepare)
    prepare.add_argument("--quiet", action="store_true", help="no progress display")

    commands.add_parser("serve", help="run the embedded TF-Serving-compatible server",
                        add_help=False)

    image = commands.add_parser("image", help="the serving image")
    image_commands = image.add_subparsers(dest="image_command", required=True)
    build = image_commands.add_parser("build", help=f"build {DEFAULT_IMAGE}")
    build.add_argument("--offline", action="store_true",
                       help="make the base image with debootstrap instead of pulling it")
    build.add_argument("--tag", default=DEFAULT_IMAGE, help="image tag (default %(default)s)")

    report = commands.add_parser("report", help="print the report of a stored study")
    _add_storage_options(report)
    report.add_argument("--fleet", action="store_true",
                        help="one row per host class in the storage instead")
    report.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR)

    _add_check_parser(commands)
    dashboard = commands.add_parser("dashboard", help="open optuna-dashboard on the storage")
    dashboard.add_argument("--storage", default=DEFAULT_STORAGE,
                           help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    dashboard.add_argument("--port", type=int, default=8080,
                           help="port on 127.0.0.1 (default 8080; 0 picks a free one)")
    dashboard.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                           help="also answer requests addressed to NAME (a tunnel's or a "
                                "proxy's); 127.0.0.1 and localhost always, any other refused")
    return parser


def _add_check_parser(commands: argparse._SubParsersAction) -> None:
    """`autotune check`: what is measured and how is the stored study's."""
    check = commands.add_parser("check", help="re-measure a study's recommendation against "
                                "the settings deployed now (exit 0: still the fastest or "
                                "tied; 1: another is significantly faster)")
    _add_storage_options(check)
    check.add_argument("--env-file", type=Path, required=True, metavar="FILE",
                       help="the deployed settings: a .env file as a tuning run writes it")
    check.add_argument("--confirm-budget", type=_positive_float, default=CHECK_BUDGET_S,
                       metavar="S", help="seconds of racing (default %(default)s)")
    check.add_argument("--junit-xml", type=Path, metavar="FILE",
                       help="also write the verdict as a JUnit XML test case")
    check.add_argument("--server", choices=LAUNCHER_KINDS, help="default: the study's")
    check.add_argument("--image", help="serving image (default: the study's)")
    for flag in ("--model-dir", "--data-dir"):
        check.add_argument(flag, type=Path, help="default: the study's")
    check.add_argument("--quiet", action="store_true", help="no progress display")


def _run_check(args: argparse.Namespace) -> int:
    from autotune.check import run_check

    return run_check(from_flags(CheckOptions, args))


def _run_tuning(args: argparse.Namespace) -> int:
    from autotune.options import TuningOptions
    from autotune.tuning.run import run_tuning

    return run_tuning(TuningOptions.from_namespace(args))


def _run_prepare(args: argparse.Namespace) -> int:
    from autotune.assets.prepare import prepare_assets, print_prepared

    assets = prepare_assets(dataset=args.dataset, data_dir=args.data_dir, model_dir=args.model_dir,
                            epochs=args.epochs, seed=args.seed, download=args.download,
                            quiet=args.quiet)
    print_prepared(assets)
    return 0


def _run_image(args: argparse.Namespace) -> int:
    from autotune.launch.image import build_image

    build_image(tag=args.tag, offline=args.offline)
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from autotune.report.commands import print_stored_report

    if args.fleet:
        from autotune.report.fleet_summary import print_fleet_report

        return print_fleet_report(args.storage)

    return print_stored_report(storage=args.storage, study_name=args.study_name,
                               report_dir=args.report_dir)


def _run_dashboard(args: argparse.Namespace) -> int:
    from autotune.report.dashboard import serve_dashboard

    return serve_dashboard(storage=args.storage, port=args.port,
                           allowed_hosts=args.allow_host)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "prepare": _run_prepare,
    "image": _run_image,
    "report": _run_report,
    "check": _run_check,
    "dashboard": _run_dashboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the chosen job and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ start-up banners would drown the tool's own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if argv and argv[0] == "serve":
            from autotune.serving.server import main as serve_main

            return serve_main(argv[1:])
        if argv and argv[0] in SUBCOMMANDS:
            args = _subcommand_parser().parse_args(argv)
            return HANDLERS[args.command](args)
        return _run_tuning(_tuning_parser().parse_args(argv))
    except AutotuneError as error:
        print(f"autotune: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("autotune: interrupted", file=sys.stderr)
        return 130
