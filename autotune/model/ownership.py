"""Which model folders autotune may write to, and which versions in them it may delete.

autotune writes models only into a folder it created: its cache (`$AUTOTUNE_HOME/models`)
or a `--model-dir` that did not exist (or was empty) when autotune first wrote to it. It
marks such a folder with `.autotune-model-dir.json`, which lists the versions it wrote;
an export deletes only those. Any other folder is the user's: served as it is (bring
your own SavedModel), never written to, nothing in it deleted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from autotune.errors import UsageError
from autotune.paths import autotune_home

MARKER_FILE = ".autotune-model-dir.json"


def numeric_versions(model_dir: Path) -> list[int]:
    """The version numbers present under a model base path, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(int(entry.name) for entry in model_dir.iterdir()
                  if entry.is_dir() and entry.name.isdigit())


def _in_cache(model_dir: Path) -> bool:
    return (autotune_home() / "models").resolve() in model_dir.resolve().parents


def is_foreign(model_dir: Path) -> bool:
    """Whether `model_dir` holds something autotune did not write (and so must not touch)."""
    if not model_dir.exists():
        return False
    if not model_dir.is_dir():
        return True
    return not ((model_dir / MARKER_FILE).is_file() or _in_cache(model_dir)
                or not any(model_dir.iterdir()))


def written_versions(model_dir: Path) -> list[int]:
    """The versions autotune exported into `model_dir`, ascending."""
    try:
        return sorted(json.loads((model_dir / MARKER_FILE).read_text())["versions"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _write_marker(model_dir: Path, versions: list[int]) -> None:
    temporary = model_dir / f".{MARKER_FILE}.tmp"
    temporary.write_text(json.dumps({"versions": sorted(set(versions))}) + "\n")
    os.replace(temporary, model_dir / MARKER_FILE)


def claim(model_dir: Path) -> None:
    """Make `model_dir` autotune's (creating it), or `UsageError` when it is the user's.

    A cache folder from before the marker existed is adopted with its versions, which
    only autotune could have written.
    """
    if is_foreign(model_dir):
        raise UsageError(f"{model_dir} holds files autotune did not write; it serves such a "
                         "model as it is and never writes there: pass a --model-dir that "
                         "does not exist yet to train a model")
    model_dir.mkdir(parents=True, exist_ok=True)
    if not (model_dir / MARKER_FILE).is_file():
        _write_marker(model_dir, numeric_versions(model_dir))


def record_version(model_dir: Path, version: int) -> None:
    """Add `version` to the versions autotune wrote into `model_dir`."""
    _write_marker(model_dir, [*written_versions(model_dir), version])


def forget_version(model_dir: Path, version: int) -> None:
    """Drop `version` (deleted) from the versions autotune wrote into `model_dir`."""
    _write_marker(model_dir, [v for v in written_versions(model_dir) if v != version])
