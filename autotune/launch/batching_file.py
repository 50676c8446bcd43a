"""The batching parameters file a launcher hands to the server, as TF Serving takes it.

A configuration with batching on is passed the way TF Serving's own images are driven:
the file (TF Serving's text proto, `autotune.serving.batching_config`) is written on the
host, and the server gets `--enable_batching=true --batching_parameters_file=<path>`;
the Docker launcher mounts the file's folder read-only at `CONTAINER_FOLDER`.
"""

from __future__ import annotations

from pathlib import Path

from autotune.serving.batching_config import BatchingParameters

FILE_NAME = "batching_parameters.txt"
#: where the Docker launcher (and the report's `docker run` line) mounts the file
CONTAINER_FOLDER = "/config"
CONTAINER_PATH = f"{CONTAINER_FOLDER}/{FILE_NAME}"


def batching_args(path: str) -> list[str]:
    """TF Serving's flags that turn batching on with the file at `path` (as the server sees it)."""
    return ["--enable_batching=true", f"--batching_parameters_file={path}"]


def write_batching_file(parameters: BatchingParameters, folder: Path) -> Path:
    """Write `folder/batching_parameters.txt`; its path."""
    path = Path(folder) / FILE_NAME
    path.write_text(parameters.to_text())
    return path
