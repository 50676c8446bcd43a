"""The native trivial server (bench/trivial_server.cc), compiled on demand and cached.

The capacity benchmark measures the LoadGen adapter, so the server it loads must cost
little: the Python trivial server spends about as much CPU a call as the adapter does,
and on a 2-core host the two together cap the rate. The native one answers every Predict
with prepared bytes through gRPC's generic C++ API. It is built here with g++ against
the system's gRPC (Debian: `apt-get install g++ pkg-config libgrpc++-dev`), once per
source version, into the autotune cache; without that toolchain `native_server_argv`
says why and the caller falls back to the Python server.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from trivial_server import fixed_response

from autotune.paths import autotune_home

SOURCE = Path(__file__).with_name("trivial_server.cc")
COMPILE = ["g++", "-O2", "-std=c++17"]


class NativeUnavailable(Exception):
    """The native server cannot be built here; the message says what is missing."""


def native_server_argv(port: int) -> list[str]:
    """The command that runs the native trivial server on `port` (built if needed)."""
    binary, response = _built()
    return [str(binary), str(port), str(response)]


def _built() -> tuple[Path, Path]:
    """The cached binary and its response file, compiled first if the source changed."""
    response = fixed_response().SerializeToString()
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(COMPILE).encode()).hexdigest()[:12]
    folder = autotune_home() / "bench"
    binary = folder / f"trivial_server-{digest}"
    response_file = folder / "predict_response.bin"
    folder.mkdir(parents=True, exist_ok=True)
    if not response_file.exists() or response_file.read_bytes() != response:
        response_file.write_bytes(response)
    if not binary.exists():
        _compile(binary)
    return binary, response_file


def _compile(binary: Path) -> None:
    for tool in ("g++", "pkg-config"):
        if shutil.which(tool) is None:
            raise NativeUnavailable(f"{tool} not found "
                                    "(apt-get install g++ pkg-config libgrpc++-dev)")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"],
                           capture_output=True, text=True)
    if flags.returncode != 0:
        raise NativeUnavailable("gRPC C++ not found by pkg-config (apt-get install libgrpc++-dev)")
    partial = binary.with_suffix(".partial")
    built = subprocess.run([*COMPILE, "-o", str(partial), str(SOURCE), *flags.stdout.split()],
                           capture_output=True, text=True)
    if built.returncode != 0:
        last = (built.stderr.strip().splitlines() or ["no message"])[-1]
        raise NativeUnavailable(f"g++ failed to build {SOURCE.name}: {last}")
    partial.replace(binary)
