"""Small C++ programs autotune builds on first use: g++ against the system's gRPC, cached.

The LoadGen adapter's client process (`loadgen_client.cc` beside this module) costs about half a
Python gRPC client's CPU per call, which matters on a host whose few cores also run the
server under test (autotune.measure.loadgen). Nothing is shipped prebuilt: each source is
compiled once per content and compiler flags into `<autotune home>/native/`, with
Debian's `g++ pkg-config libgrpc++-dev` (installed by `.ci/run`). Where they are missing,
`build` raises `NativeUnavailable` saying what to install, and the caller falls back to
its Python twin.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from autotune.paths import autotune_home

#: the C++ source of the native LoadGen client process, beside this module
LOADGEN_CLIENT = Path(__file__).with_name("loadgen_client.cc")
COMPILE = ["g++", "-O2", "-std=c++17"]
INSTALL_HINT = "apt-get install g++ pkg-config libgrpc++-dev"


class NativeUnavailable(Exception):
    """A native program cannot be built here; the message says what is missing."""


def build(source: Path) -> Path:
    """The binary of `source`, compiled first if this content was never built here."""
    digest = hashlib.sha256(source.read_bytes() + " ".join(COMPILE).encode()).hexdigest()[:12]
    binary = autotune_home() / "native" / f"{source.stem}-{digest}"
    if not binary.exists():
        _compile(source, binary)
    return binary


def _compile(source: Path, binary: Path) -> None:
    for tool in ("g++", "pkg-config"):
        if shutil.which(tool) is None:
            raise NativeUnavailable(f"{tool} not found ({INSTALL_HINT})")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"],
                           capture_output=True, text=True)
    if flags.returncode != 0:
        raise NativeUnavailable(f"gRPC C++ not found by pkg-config ({INSTALL_HINT})")
    binary.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, so that two processes building at once do not clash
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.partial")
    built = subprocess.run([*COMPILE, "-o", str(partial), str(source), *flags.stdout.split()],
                           capture_output=True, text=True)
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        last = (built.stderr.strip().splitlines() or ["no message"])[-1]
        raise NativeUnavailable(f"g++ failed to build {source.name}: {last}")
    partial.replace(binary)
