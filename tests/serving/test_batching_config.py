"""The batching parameters file: TF Serving's text format in, clear errors with the line out."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotune.serving.batching_config import (
    BatchingConfigError,
    BatchingParameters,
    parse_batching_parameters,
    read_batching_parameters,
)
from autotune.serving.options import OptionsError, parse_options

#: as TF Serving's docs write it (wrappers, a comment, allowed sizes repeated)
TF_SERVING_FILE = """\
# batching for the recommender
max_batch_size { value: 32 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
thread_pool_name { value: "batch_threads" }
allowed_batch_sizes: 8
allowed_batch_sizes: 16
allowed_batch_sizes: 32
pad_variable_length_inputs: false
"""


def test_tf_servings_format_parses_to_the_knobs() -> None:
    assert parse_batching_parameters(TF_SERVING_FILE) == BatchingParameters(
        max_batch_size=32, batch_timeout_micros=1000, num_batch_threads=2,
        max_enqueued_batches=100, allowed_batch_sizes=(8, 16, 32))


def test_missing_fields_take_tf_servings_defaults() -> None:
    parameters = parse_batching_parameters("max_batch_size { value: 8 }\n")
    assert (parameters.batch_timeout_micros, parameters.max_enqueued_batches,
            parameters.allowed_batch_sizes) == (0, 10, ())
    assert parameters.batch_threads >= 1


def test_written_file_reads_back_the_same() -> None:
    parameters = BatchingParameters(max_batch_size=16, batch_timeout_micros=500,
                                    num_batch_threads=1, allowed_batch_sizes=(4, 16))
    assert parse_batching_parameters(parameters.to_text()) == parameters
    assert "max_batch_size { value: 16 }" in parameters.to_text()


@pytest.mark.parametrize(("text", "line", "words"), [
    ("max_batch_size { value: 32 }\nbatch_timeout { value: 1 }\n", 2, "batch_timeout"),
    ("max_batch_size { value: 32 }\n\nnum_batch_threads: 2\n", 3, 'Expected "{"'),
    ("max_batch_size { value: 32 }\nbatch_timeout_micros { value: soon }\n", 2, "soon"),
    ("max_batch_size { value: 0 }\n", 1, "max_batch_size must be >= 1"),
    ("max_batch_size { value: 32 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 16\n", 3,
     "must equal max_batch_size"),
    ("max_batch_size { value: 8 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 4\n", 3,
     "increasing"),
])
def test_malformed_files_are_refused_with_their_line(text: str, line: int, words: str) -> None:
    with pytest.raises(BatchingConfigError, match=rf"^batching.txt line {line}: .*{words}"):
        parse_batching_parameters(text, "batching.txt")


def test_unreadable_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(BatchingConfigError, match="cannot read .*missing.txt"):
        read_batching_parameters(tmp_path / "missing.txt")


def test_server_flags_read_the_file_only_with_enable_batching(tmp_path: Path) -> None:
    path = tmp_path / "batching.txt"
    path.write_text(TF_SERVING_FILE)
    assert parse_options([f"--batching_parameters_file={path}"], {}).batching is None
    on = parse_options(["--enable_batching", f"--batching_parameters_file={path}"], {})
    assert on.batching is not None and on.batching.max_batch_size == 32
    assert parse_options(["--enable_batching=true"], {}).batching == BatchingParameters()
    path.write_text("max_batch_size { value: -1 }\n")
    with pytest.raises(OptionsError, match="line 1: max_batch_size"):
        parse_options(["--enable_batching=true", f"--batching_parameters_file={path}"], {})
