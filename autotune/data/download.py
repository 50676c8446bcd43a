"""`--download`: fetch a MovieLens zip from GroupLens, verify it, unpack it.

    <base-url>/<dataset>.zip  ->  <data-dir>/<dataset>/...   (e.g. ml-1m/ratings.dat)

The base URL is https://files.grouplens.org/datasets/movielens unless the caller or
`$AUTOTUNE_MOVIELENS_URL` says otherwise (tests serve a zip from 127.0.0.1).

Verification uses what can really be checked: every member's CRC (zipfile's
testzip), the expected ratings file present inside `<dataset>/`, members that stay
inside the target folder, and a plausible row count (at least the documented number
of ratings). GroupLens publishes no checksums of its own, so none are invented here.
Failures are one-line `DownloadError`s; nothing half-unpacked is left behind, and
the unpacked files join `<data-dir>/<dataset>/` beside any cached eval set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from autotune.data.movielens import ratings_format
from autotune.errors import AutotuneError

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
URL_VARIABLE = "AUTOTUNE_MOVIELENS_URL"
TIMEOUT_SECONDS = 30.0
CHUNK_BYTES = 1 << 16
#: called with the bytes received so far and the total (None when the server sends none)
ProgressCallback = Callable[[int, "int | None"], None]


class DownloadError(AutotuneError):
    """The dataset could not be fetched or did not verify."""


def movielens_url(dataset: str, base_url: str | None = None) -> str:
    """The zip's URL: `base_url`, else $AUTOTUNE_MOVIELENS_URL, else GroupLens."""
    base = base_url or os.environ.get(URL_VARIABLE) or GROUPLENS_URL
    return f"{base.rstrip('/')}/{dataset}.zip"


def _fetch(url: str, target: Path, on_progress: ProgressCallback | None = None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, \
                target.open("wb") as stream:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            while chunk := response.read(CHUNK_BYTES):
                stream.write(chunk)
                received += len(chunk)
                if on_progress is not None:
                    on_progress(received, total)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"could not download {url}: {reason} "
                            f"(no network? use --dataset synthetic to work offline)") from None


def _verify(archive: zipfile.ZipFile, dataset: str, url: str) -> None:
    fmt = ratings_format(dataset)
    broken = archive.testzip()
    if broken is not None:
        raise DownloadError(f"{url}: CRC check failed for {broken}; the download is corrupt")
    for name in archive.namelist():
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or path.parts[0] != dataset:
            raise DownloadError(f"{url}: unexpected member {name!r} outside {dataset}/")
    expected = f"{dataset}/{fmt.filename}"
    if expected not in archive.namelist():
        raise DownloadError(f"{url}: {expected} is missing from the archive")
    with archive.open(expected) as ratings:
        rows = sum(1 for line in ratings if line.strip()) - (fmt.header is not None)
    if rows < fmt.min_rows:
        raise DownloadError(f"{url}: {expected} has {rows} ratings, expected at least "
                            f"{fmt.min_rows}; the download is incomplete")


def download_movielens(dataset: str, data_dir: Path, base_url: str | None = None,
                       on_progress: ProgressCallback | None = None) -> Path:
    """Fetch, verify and unpack `dataset` into `<data_dir>/<dataset>/`; that folder.

    `on_progress` hears of every chunk received (the caller draws a download bar).
    """
    url = movielens_url(dataset, base_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=f".{dataset}-download-") as scratch:
        zip_path = Path(scratch) / f"{dataset}.zip"
        _fetch(url, zip_path, on_progress)
        try:
            with zipfile.ZipFile(zip_path) as archive:
                _verify(archive, dataset, url)
                archive.extractall(scratch)
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise DownloadError(f"{url}: not a valid zip file ({error})") from None
        target = data_dir / dataset
        target.mkdir(exist_ok=True)
        for unpacked in (Path(scratch) / dataset).iterdir():
            destination = target / unpacked.name
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(unpacked, destination)
    return target
