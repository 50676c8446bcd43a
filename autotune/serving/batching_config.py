"""TF Serving's batching parameters file (`--batching_parameters_file`): read and write it.

The file is a text-format `BatchingParameters` message of TF Serving's
`session_bundle_config.proto`, its scalar fields wrapped the way TF Serving writes them:

    max_batch_size { value: 32 }
    batch_timeout_micros { value: 1000 }
    num_batch_threads { value: 2 }
    max_enqueued_batches { value: 100 }
    allowed_batch_sizes: 8
    allowed_batch_sizes: 32

`tensorflow-serving-api` does not ship that proto, so the message is declared here
with the same field names, numbers and types (`google.protobuf.Int64Value` wrappers)
and parsed by protobuf's own `text_format`: a file TF Serving accepts parses here, and
a file written here is one TF Serving reads. Values TF Serving would refuse (a batch
size below 1, allowed sizes not increasing or not ending at `max_batch_size`) are
refused too; every error names the file and the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

#: SharedBatchScheduler / BatchingSession defaults, used for fields the file leaves out
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0
DEFAULT_MAX_ENQUEUED_BATCHES = 10


class BatchingConfigError(ValueError):
    """A batching parameters file that cannot be read or is not valid; says where."""


def _message_class() -> type:
    """The `BatchingParameters` message class, in a private descriptor pool."""
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="autotune/serving/batching_parameters.proto", package="autotune.serving",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    message = file_proto.message_type.add(name="BatchingParameters")
    wrapped = descriptor_pb2.FieldDescriptorProto
    for name, number, type_name in (("max_batch_size", 1, ".google.protobuf.Int64Value"),
                                    ("batch_timeout_micros", 2, ".google.protobuf.Int64Value"),
                                    ("max_enqueued_batches", 3, ".google.protobuf.Int64Value"),
                                    ("num_batch_threads", 4, ".google.protobuf.Int64Value"),
                                    ("thread_pool_name", 5, ".google.protobuf.StringValue")):
        message.field.add(name=name, number=number, type=wrapped.TYPE_MESSAGE,
                          type_name=type_name, label=wrapped.LABEL_OPTIONAL)
    message.field.add(name="allowed_batch_sizes", number=6, type=wrapped.TYPE_INT64,
                      label=wrapped.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=wrapped.TYPE_BOOL,
                      label=wrapped.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(descriptor_pb2.FileDescriptorProto.FromString(
        wrappers_pb2.DESCRIPTOR.serialized_pb).SerializeToString())
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("autotune.serving.BatchingParameters"))


BatchingParametersProto = _message_class()


@dataclass(frozen=True)
class BatchingParameters:
    """The batching knobs, defaults filled in; `num_batch_threads` 0 means one per CPU."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = DEFAULT_BATCH_TIMEOUT_MICROS
    num_batch_threads: int = 0
    max_enqueued_batches: int = DEFAULT_MAX_ENQUEUED_BATCHES
    allowed_batch_sizes: tuple[int, ...] = ()

    @property
    def batch_threads(self) -> int:
        """Batch threads to run: as given, else one per CPU (TF Serving's default)."""
        return self.num_batch_threads or os.cpu_count() or 1

    def problems(self) -> list[tuple[str, str]]:
        """(field, what is wrong) for every value TF Serving would refuse."""
        found = [(name, f"must be >= {low}, got {value}") for name, value, low in (
            ("max_batch_size", self.max_batch_size, 1),
            ("batch_timeout_micros", self.batch_timeout_micros, 0),
            ("num_batch_threads", self.num_batch_threads, 0),
            ("max_enqueued_batches", self.max_enqueued_batches, 1)) if value < low]
        sizes = self.allowed_batch_sizes
        if sizes and (any(a >= b for a, b in zip(sizes, sizes[1:], strict=False)) or sizes[0] < 1):
            found.append(("allowed_batch_sizes", f"must be increasing and >= 1, got {list(sizes)}"))
        elif sizes and sizes[-1] != self.max_batch_size:
            found.append(("allowed_batch_sizes", f"the last entry ({sizes[-1]}) must equal "
                                                 f"max_batch_size ({self.max_batch_size})"))
        return found

    def describe(self) -> str:
        """One word for the settings line: `max_batch_size=32,batch_timeout_micros=0,...`."""
        sizes = ":".join(map(str, self.allowed_batch_sizes)) or "any"
        return (f"max_batch_size={self.max_batch_size},"
                f"batch_timeout_micros={self.batch_timeout_micros},"
                f"num_batch_threads={self.batch_threads},"
                f"max_enqueued_batches={self.max_enqueued_batches},allowed_batch_sizes={sizes}")

    def to_text(self) -> str:
        """The file's text, as TF Serving writes it (every field explicit)."""
        lines = [f"{name} {{ value: {getattr(self, name)} }}" for name in (
            "max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
            if name != "num_batch_threads" or self.num_batch_threads]
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        return "\n".join(lines) + "\n"


def parse_batching_parameters(text: str, source: str = "batching parameters") -> BatchingParameters:
    """Parse the file's text; `BatchingConfigError` naming `source` and the line."""
    proto = BatchingParametersProto()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as error:
        line = error.GetLine()
        where = f"{source} line {line}" if line else source
        detail = str(error).split(" : ", 1)[-1]
        raise BatchingConfigError(f"{where}: {detail}") from None
    wrapped = {name: getattr(proto, name).value for name in (
        "max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
        if proto.HasField(name)}
    parameters = BatchingParameters(**wrapped, allowed_batch_sizes=tuple(proto.allowed_batch_sizes))
    problems = parameters.problems()
    if problems:
        name, problem = problems[0]
        raise BatchingConfigError(f"{source} line {_line_of(text, name)}: {name} {problem}")
    return parameters


def read_batching_parameters(path: Path) -> BatchingParameters:
    """Read and parse a batching parameters file; `BatchingConfigError` if unreadable."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise BatchingConfigError(f"cannot read the batching parameters file {path}: "
                                  f"{getattr(error, 'strerror', None) or error}") from None
    return parse_batching_parameters(text, str(path))


def _line_of(text: str, field: str) -> int:
    """The line (1-based) where `field` last appears, where its value was set."""
    lines = [number for number, line in enumerate(text.splitlines(), 1)
             if line.strip().startswith(field)]
    return lines[-1] if lines else 1
