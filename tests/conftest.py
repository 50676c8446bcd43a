"""Shared fixtures: an isolated $AUTOTUNE_HOME for the session, and a small trained model.

`small_assets` is what integration tests serve: a synthetic dataset of 300 users and
500 items, trained for 5 epochs (5-10 s on 2 busy cores), whose model clears the tuner's default
accuracy floors (HR@10 0.22, NDCG@10 0.11) with margin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from autotune.data.synthetic import SyntheticShape

#: the tiny models and the Docker image gate (serving/fixtures.py), and the throwaway
#: PostgreSQL server (postgres.py), for every test folder
pytest_plugins = ["serving.fixtures", "postgres"]

SMALL_SHAPE = SyntheticShape(users=300, items=500, ratings=30_000)
SMALL_EPOCHS = 5


@pytest.fixture(scope="session", autouse=True)
def autotune_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$AUTOTUNE_HOME set to a fresh folder for the whole session: never ~/.cache/autotune."""
    home = tmp_path_factory.mktemp("autotune-home")
    previous = os.environ.get("AUTOTUNE_HOME")
    os.environ["AUTOTUNE_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("AUTOTUNE_HOME", None)
    else:
        os.environ["AUTOTUNE_HOME"] = previous


@pytest.fixture(scope="session")
def small_assets(tmp_path_factory: pytest.TempPathFactory):
    """A small prepared dataset and exported model (`autotune.prepare.PreparedAssets`)."""
    from autotune.prepare import prepare_assets

    root = tmp_path_factory.mktemp("small-assets")
    return prepare_assets(data_dir=root / "data", model_dir=root / "models" / "ncf",
                          epochs=SMALL_EPOCHS, seed=0, quiet=True, synthetic_shape=SMALL_SHAPE)
