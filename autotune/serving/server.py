"""The server process: read options, set TensorFlow's thread pools, load the model,
replay its warmup records (TF Serving's `assets.extra/tf_serving_warmup_requests`), serve
gRPC (and REST when `--rest_api_port` is set) until SIGTERM or SIGINT, then shut down
gracefully.

Once it listens, it writes one parseable line with its effective settings
(`autotune-serving: settings intra_op=.. inter_op=.. omp_num_threads=.. ...`), which
launchers and tests read; values are shell-quoted, so `shlex.split` parses the line.

TensorFlow and grpc are imported only once the options parse, so `--help` and a bad
flag answer at once.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from concurrent import futures
from typing import TYPE_CHECKING, Sequence

from autotune.serving.options import RUNTIME_ENV, OptionsError, ServingOptions, parse_options

if TYPE_CHECKING:
    import grpc

    from autotune.serving.batching import Runner
    from autotune.serving.model import ServedModel
    from autotune.serving.rest import RestServer

LOG_PREFIX = "autotune-serving:"
#: how the settings line starts in the log
SETTINGS_MARKER = f"{LOG_PREFIX} settings "
SHUTDOWN_GRACE_S = 5.0
#: how often the main thread looks for a stop signal or a dead parent
STOP_POLL_INTERVAL_S = 0.1
#: room for the largest batch (the check on --max_batch_size gives the clear message)
MAX_MESSAGE_BYTES = 1 << 30


def log(message: str) -> None:
    """One line on stderr, where TensorFlow's own log lines go too."""
    print(f"{LOG_PREFIX} {message}", file=sys.stderr, flush=True)


def settings_line(options: ServingOptions, intra_op: int, inter_op: int, version: int) -> str:
    """The effective settings: TensorFlow's thread pools as set, the OpenMP env as given."""
    fields = {
        "intra_op": intra_op,
        "inter_op": inter_op,
        **{name.lower(): os.environ.get(name, "unset") for name in RUNTIME_ENV},
        "model": options.model_name,
        "version": version,
        "port": options.port,
        "bind_address": options.bind_address,
        "rest_api_port": options.rest_api_port,
        "pid": os.getpid(),
        "batching": options.batching.describe() if options.batching else "off",
    }
    return "settings " + " ".join(f"{key}={shlex.quote(str(value))}"
                                  for key, value in fields.items())


def _handle_stop_signals() -> list[str]:
    """Install SIGTERM/SIGINT handlers; the returned list receives the signals' names.

    The handlers only append to a list: a handler that took a lock (`Event.set()`) could
    deadlock when the signal lands while the main thread holds that very lock.
    """
    received: list[str] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: received.append(signal.Signals(number).name))
    return received


def _wait_for_stop(received_signals: list[str], parent_pid: int | None) -> str:
    """Block until a stop signal arrives or `parent_pid` is no longer the parent (it
    died and this process was re-parented); return why."""
    while not received_signals:
        if parent_pid is not None and os.getppid() != parent_pid:
            return f"parent process {parent_pid} is gone"
        time.sleep(STOP_POLL_INTERVAL_S)
    return received_signals[0]


class _CannotStart(Exception):
    """Why the server cannot start (logged as `error: ...`, exit 1)."""


def _serve(options: ServingOptions) -> int:
    import tensorflow as tf

    from autotune.serving.batching import BatchScheduler, unbatched

    # Must happen before TensorFlow creates its runtime, i.e. before the model loads.
    tf.config.threading.set_intra_op_parallelism_threads(options.intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(options.inter_op_parallelism)
    try:
        model = _load_model(options)
        run = BatchScheduler(options.batching).run if options.batching else unbatched
        _warm_up(model, run, options.max_batch_size)
        server = _grpc_server(options, model, run)
        rest = _rest_server(options, model, run)
    except _CannotStart as error:
        log(f"error: {error}")
        return 1
    received_signals = _handle_stop_signals()
    server.start()
    if rest:
        rest.start()
    log(settings_line(options, tf.config.threading.get_intra_op_parallelism_threads(),
                      tf.config.threading.get_inter_op_parallelism_threads(), model.version))
    log(f"stopping: {_wait_for_stop(received_signals, options.parent_pid)}")
    stopped = server.stop(SHUTDOWN_GRACE_S)
    if rest:
        rest.stop(SHUTDOWN_GRACE_S)
    stopped.wait()
    log("stopped")
    return 0


def _load_model(options: ServingOptions) -> "ServedModel":
    """The served version of `--model_base_path`, loaded (and how long that took, logged)."""
    from autotune.serving.model import ModelLoadError, ServedModel

    started = time.monotonic()
    try:
        model = ServedModel(options.model_name, options.model_base_path)
    except ModelLoadError as error:
        raise _CannotStart(error) from None
    log(f"loaded model {model.name} version {model.version} from {model.path} "
        f"in {time.monotonic() - started:.1f}s")
    return model


def _warm_up(model: "ServedModel", run: "Runner", max_batch_size: int) -> None:
    """Replay the version's warmup records before it listens, i.e. before it is AVAILABLE,
    as TF Serving does (autotune.serving.warmup), and log how long it took."""
    from autotune.serving.warmup import WARMUP_FILE, WarmupError, replay_warmup

    started = time.monotonic()
    try:
        replayed = replay_warmup(model, run, max_batch_size)
    except WarmupError as error:
        raise _CannotStart(f"warmup failed: {error}") from None
    if replayed:
        log(f"warmed up model {model.name} version {model.version} with {replayed} warmup "
            f"requests in {time.monotonic() - started:.1f}s")
    else:
        log(f"no warmup requests at {model.path / WARMUP_FILE}")


def _grpc_server(options: ServingOptions, model: "ServedModel", run: "Runner") -> "grpc.Server":
    """The gRPC server of `model`, bound to `--port` (not started)."""
    import grpc

    from autotune.serving.batching import grpc_threads
    from autotune.serving.service import add_servicers

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=grpc_threads(options.grpc_max_threads,
                                                            options.batching),
                                   thread_name_prefix="grpc-worker"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                 # a second server on the same port must fail, not share it silently
                 ("grpc.so_reuseport", 0)])
    add_servicers(server, model, options.max_batch_size, run, options.tensor_content)
    try:
        bound = server.add_insecure_port(options.listen_target)
    except RuntimeError:
        bound = 0
    if not bound:
        raise _CannotStart(f"cannot listen on {options.listen_target} "
                           "(port in use, or no such address?)")
    return server


def _rest_server(options: ServingOptions, model: "ServedModel",
                 run: "Runner") -> "RestServer | None":
    """The REST server of `model` on `--rest_api_port` (not started); None when it is 0."""
    if not options.rest_api_port:
        return None
    from autotune.serving.rest import RestApi, RestServer

    try:
        return RestServer(RestApi(model, options.max_batch_size, run), options.bind_address,
                          options.rest_api_port, options.rest_api_num_threads)
    except OSError as error:
        raise _CannotStart(f"cannot listen on REST port {options.bind_address}:"
                           f"{options.rest_api_port} ({error.strerror})") from None


def main(argv: Sequence[str]) -> int:
    """Run the server in the foreground; the exit code (0 after a graceful stop)."""
    try:
        options = parse_options(argv)
    except OptionsError as error:
        log(f"error: {error}")
        return 2
    if options.ignored_flags:
        log(f"ignoring flags this server does not use: {' '.join(options.ignored_flags)}")
    return _serve(options)
