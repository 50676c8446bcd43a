"""Where autotune keeps its data, models and studies by default, the names it serves, the
check that a folder it will write to can be written, and the reading of its own JSON files.

Data and models live in the cache (`$AUTOTUNE_HOME`, default `~/.cache/autotune`);
studies and reports live under `studies/` of the working directory, where a user will
look for them.
"""

import json
import os
import tempfile
from pathlib import Path

from autotune.errors import UsageError

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


def check_folder(folder: Path, flag: str) -> None:
    """`UsageError` when `folder` (named by the command-line flag `flag`) is a file."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {folder} is a file, not a folder; name a folder")


def check_writable_folder(folder: Path, flag: str) -> None:
    """`folder` (named by the command-line flag `flag`) exists, created if need be, and
    takes a new file; else a `UsageError` saying why, before any work that would write
    there later (a report after every trial, an eval set after its build)."""
    folder = Path(folder)
    check_folder(folder, flag)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f"{flag} {folder} is not writable ({error.strerror}); "
                         "name a folder you can write to") from None


def read_json_object(path: Path) -> dict | None:
    """The JSON object autotune wrote at `path` (a manifest, a model card), or None when
    the file is missing, unreadable or holds anything else (`["x"]`): a damaged file
    makes what it describes stale, never a traceback."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
