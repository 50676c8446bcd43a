"""The server's flags and environment, read the way `tensorflow_model_server` and TF
Serving's image read them.

Model: `--model_name` (else `$MODEL_NAME`), `--model_base_path` (else
`$MODEL_BASE_PATH/<model_name>`). Threads: `--tensorflow_intra_op_parallelism` /
`--tensorflow_inter_op_parallelism`, else `$TENSORFLOW_INTRA_OP_PARALLELISM` /
`$TENSORFLOW_INTER_OP_PARALLELISM`, else 0 (TensorFlow picks); flags win over env.
`OMP_NUM_THREADS` and `KMP_*` are the OpenMP runtime's own business and only reported.
Batching: `--enable_batching` with `--batching_parameters_file` (TF Serving's text-proto
file, see `batching_config`; without a file, TF Serving's defaults).
REST: `--rest_api_port` (0, the default, serves none; the image passes 8501 as TF
Serving's does) with `--rest_api_num_threads` request threads. Responses: typed value
fields, or `tensor_content` with `--enable_serialization_as_tensor_content`, as TF
Serving. Other TF Serving flags (`--rest_api_timeout_in_ms`, ...) are accepted and
ignored, so a command line written for TF Serving runs here unchanged.

Listening: `--bind_address` (else `$AUTOTUNE_SERVING_BIND_ADDRESS`, else `0.0.0.0`), for
gRPC and REST alike. Run by hand (`docker run -p 8500:8500 ...`) the server listens on
every interface, as TF Serving does; the launchers set the variable to `127.0.0.1`, so a
trial server is reachable from this host only. An environment variable rather than a
flag, so the launchers can set it for any server: TF Serving's own binary ignores it (and
refuses unknown flags).

`$AUTOTUNE_SERVING_PARENT_PID` (set by the local launcher) makes the server stop when
that process is gone, so a killed tuner leaves no server behind.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from autotune.serving.batching_config import (
    BatchingConfigError,
    BatchingParameters,
    read_batching_parameters,
)

DEFAULT_PORT = 8500
#: TF Serving's default REST request threads: four per schedulable CPU
DEFAULT_REST_THREADS = 4 * len(os.sched_getaffinity(0))
DEFAULT_MAX_BATCH_SIZE = 1_000_000
#: OpenMP knobs reported in the settings line (left to the runtime, never applied here)
RUNTIME_ENV = ("OMP_NUM_THREADS", "KMP_BLOCKTIME", "KMP_AFFINITY", "KMP_SETTINGS")
PARENT_PID_ENV = "AUTOTUNE_SERVING_PARENT_PID"
BIND_ADDRESS_ENV = "AUTOTUNE_SERVING_BIND_ADDRESS"
#: TF Serving's: every interface (what a server run by hand in the image needs)
DEFAULT_BIND_ADDRESS = "0.0.0.0"
LOOPBACK = "127.0.0.1"


class OptionsError(ValueError):
    """A flag or environment value the server cannot run with."""


@dataclass(frozen=True)
class ServingOptions:
    """Everything the server process needs to know, resolved from flags and env."""

    port: int
    rest_api_port: int
    model_name: str
    model_base_path: Path
    intra_op_parallelism: int
    inter_op_parallelism: int
    max_batch_size: int
    grpc_max_threads: int
    rest_api_num_threads: int = DEFAULT_REST_THREADS
    #: responses packed in `tensor_content` instead of the typed value fields
    tensor_content: bool = False
    ignored_flags: tuple[str, ...] = ()
    parent_pid: int | None = None
    #: None: no batching (`--enable_batching` not given)
    batching: BatchingParameters | None = None
    bind_address: str = DEFAULT_BIND_ADDRESS

    @property
    def listen_target(self) -> str:
        """`host:port` for gRPC's `add_insecure_port` (an IPv6 host in brackets)."""
        host = f"[{self.bind_address}]" if ":" in self.bind_address else self.bind_address
        return f"{host}:{self.port}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotune serve", allow_abbrev=False,
        description="TF-Serving-compatible model server: gRPC (Predict, GetModelMetadata, "
                    "GetModelStatus) and REST (/v1/models/<name>[/metadata|:predict]). Other "
                    "tensorflow_model_server flags are accepted and ignored.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="gRPC port (default 8500)")
    parser.add_argument("--rest_api_port", type=int, default=0,
                        help="REST port (default 0: no REST; TF Serving's image uses 8501)")
    parser.add_argument("--rest_api_num_threads", type=int, default=DEFAULT_REST_THREADS,
                        help=f"REST requests served at once (default {DEFAULT_REST_THREADS}: "
                             "4 per CPU, as TF Serving)")
    parser.add_argument("--enable_serialization_as_tensor_content", type=_boolean, nargs="?",
                        const=True, default=False,
                        help="write gRPC responses packed in tensor_content instead of the "
                             "typed value fields (float_val, ...), as TF Serving's flag")
    parser.add_argument("--model_name", default=None, help="model name (default $MODEL_NAME)")
    parser.add_argument("--model_base_path", default=None,
                        help="folder of numeric versions (default $MODEL_BASE_PATH/<model_name>)")
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=None,
                        help="intra-op threads "
                             "(default $TENSORFLOW_INTRA_OP_PARALLELISM, else 0: auto)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=None,
                        help="inter-op threads "
                             "(default $TENSORFLOW_INTER_OP_PARALLELISM, else 0: auto)")
    parser.add_argument("--bind_address", default=None,
                        help=f"address to listen on (default ${BIND_ADDRESS_ENV}, else "
                             f"{DEFAULT_BIND_ADDRESS}: every interface)")
    parser.add_argument("--max_batch_size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help="largest batch a request may carry "
                             f"(default {DEFAULT_MAX_BATCH_SIZE:,})")
    parser.add_argument("--grpc_max_threads", type=int, default=16,
                        help="requests served at once (default 16)")
    parser.add_argument("--enable_batching", nargs="?", const="true", default="false",
                        choices=("true", "false"), help="batch concurrent Predict calls")
    parser.add_argument("--batching_parameters_file", default=None,
                        help="TF Serving's BatchingParameters text proto (with --enable_batching)")
    return parser


def _batching(args: argparse.Namespace) -> BatchingParameters | None:
    if args.enable_batching != "true":
        return None
    if not args.batching_parameters_file:
        return BatchingParameters()
    try:
        return read_batching_parameters(Path(args.batching_parameters_file))
    except BatchingConfigError as error:
        raise OptionsError(str(error)) from None


def _boolean(text: str) -> bool:
    """A boolean flag value the way TF Serving's flag parser takes it."""
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value in ("true", "1")


def _thread_count(flag: int | None, env_name: str, environ: Mapping[str, str]) -> int:
    if flag is not None:
        value, source = flag, f"--{env_name.lower()}"
    else:
        text = environ.get(env_name, "").strip() or "0"
        source = f"${env_name}"
        try:
            value = int(text)
        except ValueError:
            raise OptionsError(f"{source} must be a whole number, got {text!r}") from None
    if value < 0:
        raise OptionsError(f"{source} must be >= 0 (0 lets TensorFlow choose), got {value}")
    return value


def _parent_pid(environ: Mapping[str, str]) -> int | None:
    text = environ.get(PARENT_PID_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise OptionsError(f"${PARENT_PID_ENV} must be a process id, got {text!r}")
    return int(text)


def parse_options(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ServingOptions:
    """Resolve flags over environment; `OptionsError` for values the server cannot use.

    `--help` and malformed flag values end the process the argparse way (exit 2).
    """
    environ = os.environ if environ is None else environ
    args, unknown = _parser().parse_known_args(list(argv))
    model_name = args.model_name or environ.get("MODEL_NAME") or "model"
    base_path = args.model_base_path or os.path.join(environ.get("MODEL_BASE_PATH", "/models"),
                                                      model_name)
    if not 0 < args.port < 65536:
        raise OptionsError(f"--port must be 1..65535, got {args.port}")
    if not 0 <= args.rest_api_port < 65536 or args.rest_api_port == args.port:
        raise OptionsError(f"--rest_api_port must be 0 (no REST) or 1..65535 and differ from "
                           f"--port, got {args.rest_api_port}")
    if args.max_batch_size < 1 or args.grpc_max_threads < 1 or args.rest_api_num_threads < 1:
        raise OptionsError("--max_batch_size, --grpc_max_threads and --rest_api_num_threads "
                           "must be >= 1")
    return ServingOptions(
        port=args.port,
        rest_api_port=args.rest_api_port,
        model_name=model_name,
        model_base_path=Path(base_path),
        intra_op_parallelism=_thread_count(args.tensorflow_intra_op_parallelism,
                                           "TENSORFLOW_INTRA_OP_PARALLELISM", environ),
        inter_op_parallelism=_thread_count(args.tensorflow_inter_op_parallelism,
                                           "TENSORFLOW_INTER_OP_PARALLELISM", environ),
        max_batch_size=args.max_batch_size,
        grpc_max_threads=args.grpc_max_threads,
        rest_api_num_threads=args.rest_api_num_threads,
        tensor_content=args.enable_serialization_as_tensor_content,
        ignored_flags=tuple(unknown),
        parent_pid=_parent_pid(environ),
        batching=_batching(args),
        bind_address=(args.bind_address or environ.get(BIND_ADDRESS_ENV, "").strip()
                      or DEFAULT_BIND_ADDRESS),
    )
