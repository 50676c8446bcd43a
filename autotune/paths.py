"""Where autotune keeps its data, models and studies by default, and the names it serves.

Data and models live in the cache (`$AUTOTUNE_HOME`, default `~/.cache/autotune`);
studies and reports live under `studies/` of the working directory, where a user will
look for them.
"""

import os
from pathlib import Path

MODEL_NAME = "ncf"
#: the project's serving image (`autotune image build`), tuned by `--server docker`
DEFAULT_IMAGE = "autotune/serving:mkl"
DEFAULT_STORAGE = "sqlite:///studies/autotune.db"
DEFAULT_REPORT_DIR = Path("studies/reports")


def autotune_home() -> Path:
    """The cache root: `$AUTOTUNE_HOME`, else `~/.cache/autotune`."""
    configured = os.environ.get("AUTOTUNE_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "autotune"


def default_data_dir() -> Path:
    """Raw MovieLens files (`<data-dir>/<dataset>/<file>`) and per-dataset eval sets."""
    return autotune_home() / "data"


def default_model_dir(dataset: str) -> Path:
    """The model base path for a dataset: numeric versions and `model_card.json` inside."""
    return autotune_home() / "models" / dataset / MODEL_NAME
