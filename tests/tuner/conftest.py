"""Fixtures of the tuner tests: quick tuning options and a running server on `small_assets`.

Every server here is real (the embedded server through the local launcher); what is
made small is the work per trial (short latency windows, small batches, a user sample
for the gate, a 10-second racing), so the whole tuner suite stays within minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from autotune.launch import ModelLocation, ServerSettings, make_launcher
from autotune.options import TuningOptions

from .quick import quick_options


@pytest.fixture
def tuning_options(tmp_path: Path) -> Callable[..., TuningOptions]:
    """Options for a short study with the local launcher, storage and reports in tmp_path."""
    def make(mode: str = "online", **overrides: object) -> TuningOptions:
        return quick_options(tmp_path, mode, **overrides)
    return make


@pytest.fixture(scope="module")
def server_address(small_assets) -> Iterator[str]:
    """The gRPC address of a local server serving the small model (1/1/1 threads)."""
    with make_launcher("local", ModelLocation(Path(small_assets.model_dir))) as launcher:
        address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(120)
        yield address
