"""Flags and environment resolve like tensorflow_model_server in TF Serving's image."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotune.serving.options import OptionsError, parse_options


def test_defaults_come_from_the_image_environment() -> None:
    options = parse_options([], {"MODEL_NAME": "ncf", "MODEL_BASE_PATH": "/models",
                                 "TENSORFLOW_INTRA_OP_PARALLELISM": "4",
                                 "TENSORFLOW_INTER_OP_PARALLELISM": "2"})
    assert (options.port, options.model_name, options.model_base_path) == (
        8500, "ncf", Path("/models/ncf"))
    assert (options.intra_op_parallelism, options.inter_op_parallelism) == (4, 2)
    assert options.max_batch_size == 1_000_000
    assert (options.rest_api_port, options.tensor_content) == (0, False), "as TF Serving's binary"


def test_flags_win_over_environment_and_unknown_tf_serving_flags_are_kept_aside() -> None:
    options = parse_options(["--port=9000", "--model_name=ncf", "--model_base_path=/m/ncf",
                             "--tensorflow_intra_op_parallelism=3", "--rest_api_port=8501",
                             "--rest_api_timeout_in_ms=100", "--enable_model_warmup",
                             "--max_batch_size=1000", "--rest_api_num_threads=3"],
                            {"TENSORFLOW_INTRA_OP_PARALLELISM": "8"})
    assert (options.port, options.intra_op_parallelism,
            options.inter_op_parallelism) == (9000, 3, 0)
    assert (options.rest_api_port, options.rest_api_num_threads) == (8501, 3)
    assert options.max_batch_size == 1000
    assert options.ignored_flags == ("--rest_api_timeout_in_ms=100", "--enable_model_warmup")
    assert options.batching is None  # batching is off unless --enable_batching


@pytest.mark.parametrize("argv, packed", [
    ([], False), (["--enable_serialization_as_tensor_content"], True),
    (["--enable_serialization_as_tensor_content=true"], True),
    (["--enable_serialization_as_tensor_content=false"], False),
])
def test_tensor_content_flag_reads_like_tf_servings(argv: list[str], packed: bool) -> None:
    assert parse_options(argv, {}).tensor_content is packed


def test_the_last_of_a_repeated_flag_wins_as_the_entrypoint_relies_on() -> None:
    assert parse_options(["--port=8500", "--port=8611"], {}).port == 8611


@pytest.mark.parametrize("argv, environ, message", [
    ([], {"TENSORFLOW_INTER_OP_PARALLELISM": "two"},
     "$TENSORFLOW_INTER_OP_PARALLELISM must be a whole number"),
    (["--tensorflow_intra_op_parallelism=-1"], {},
     "--tensorflow_intra_op_parallelism must be >= 0"),
    (["--port=70000"], {}, "--port must be 1..65535"),
    ([], {"AUTOTUNE_SERVING_PARENT_PID": "tuner"},
     "$AUTOTUNE_SERVING_PARENT_PID must be a process id"),
    (["--max_batch_size=0"], {}, "--max_batch_size, --grpc_max_threads and --rest_api_num_threads"),
    (["--port=8500", "--rest_api_port=8500"], {},
     "--rest_api_port must be 0 .* differ from --port"),
])
def test_unusable_values_are_refused_with_the_reason(argv: list[str], environ: dict[str, str],
                                                     message: str) -> None:
    with pytest.raises(OptionsError, match=message.replace("$", r"\$")):
        parse_options(argv, environ)
