"""One embedded server on the tiny model for the whole module, and a plain client."""

from __future__ import annotations

from typing import Iterator

import pytest

from autotune.launch import ModelLocation, ServerSettings
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from serving.fixtures import START_DEADLINE_S, PlainClient


def started(model: ModelLocation, settings: ServerSettings) -> LocalLauncher:
    """An embedded server on `model`, AVAILABLE."""
    launcher = LocalLauncher(model, program=EMBEDDED_SERVER)
    launcher.start(settings)
    launcher.wait_until_available(START_DEADLINE_S)
    return launcher


@pytest.fixture(scope="module")
def embedded(tiny_model: ModelLocation) -> Iterator[LocalLauncher]:
    launcher = started(tiny_model, ServerSettings(omp_num_threads=2, intra_op_parallelism=2,
                                                  inter_op_parallelism=1))
    yield launcher
    launcher.stop()


@pytest.fixture(scope="module")
def client(embedded: LocalLauncher) -> Iterator[PlainClient]:
    client = PlainClient(embedded.address)
    yield client
    client.close()
