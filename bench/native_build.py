"""The native trivial server (bench/trivial_server.cc), compiled on demand and cached.

The capacity benchmark measures the LoadGen adapter, so the server it loads must cost
little: the Python trivial server spends about as much CPU a call as the adapter does,
and on a 2-core host the two together cap the rate. The native one answers every Predict
with prepared bytes through gRPC's generic C++ API, built like autotune's own native
programs (autotune.measure.native: g++ against the system's gRPC, once per source version);
without that toolchain `native_server_argv` raises `NativeUnavailable` saying why and
the caller falls back to the Python server.
"""

from __future__ import annotations

from pathlib import Path

from trivial_server import fixed_response

from autotune.measure.native import build
from autotune.paths import autotune_home

SOURCE = Path(__file__).with_name("trivial_server.cc")


def native_server_argv(port: int) -> list[str]:
    """The command that runs the native trivial server on `port` (built if needed)."""
    response = fixed_response().SerializeToString()
    response_file = autotune_home() / "native" / "predict_response.bin"
    response_file.parent.mkdir(parents=True, exist_ok=True)
    if not response_file.exists() or response_file.read_bytes() != response:
        response_file.write_bytes(response)
    return [str(build(SOURCE)), str(port), str(response_file)]
