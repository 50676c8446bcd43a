"""Bad flags, paths and cache files stop a run before its first trial: one line, exit 2,
within seconds; or, for a damaged cache file, `autotune prepare` rebuilds it."""

from __future__ import annotations

import json
import subprocess
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import optuna
import pytest

from autotune.assets.prepare import prepare_assets
from autotune.data.synthetic import SyntheticShape
from autotune.errors import UsageError
from autotune.model.export import numeric_versions
from autotune.tuning.run import run_tuning
from trials import online_study

from .cli import REFUSAL_S, autotune, refused

TINY = SyntheticShape(users=60, items=200, ratings=3_000)


def _tuner(tmp_path: Path, *flags: str, storage: str | None = None,
           modes_obeyed: bool = False) -> subprocess.CompletedProcess:
    """`autotune --mode online` with its own empty home: a refusal must leave it unmade."""
    run = autotune("--mode", "online", "--server", "local",
                   "--storage", storage or f"sqlite:///{tmp_path}/studies.db", *flags,
                   home=tmp_path / "home", modes_obeyed=modes_obeyed)
    assert not (tmp_path / "home").exists(), "data or model prepared before the refusal"
    return run


def test_a_report_dir_that_is_a_file_is_refused_before_any_work(tmp_path):
    a_file = tmp_path / "reports"
    a_file.write_text("not a folder\n")
    started = time.monotonic()
    refused(_tuner(tmp_path, "--report-dir", str(a_file)), "--report-dir", "is a file")
    assert time.monotonic() - started < REFUSAL_S
    assert not (tmp_path / "studies.db").exists()  # refused before the storage was opened
    assert a_file.read_text() == "not a folder\n"


def test_server_mode_over_rest_is_refused_before_any_work(tmp_path):
    """LoadGen drives the server over gRPC only: said at once, not after the first trial."""
    refused(_tuner(tmp_path, "--mode", "server", "--protocol", "rest"),
             "--mode server", "gRPC only", "--protocol grpc")


def test_a_report_dir_that_cannot_be_created_is_refused_before_any_work(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    refused(_tuner(tmp_path, "--report-dir", str(blocked / "reports")),
             "--report-dir", "not writable")


@pytest.mark.parametrize("url", ["notaurl", "postgresql://tuner:s3cret@127.0.0.1:1/studies"])
def test_a_bad_storage_url_is_refused_before_any_work(tmp_path, url):
    run = _tuner(tmp_path, "--report-dir", str(tmp_path / "r"), storage=url)
    refused(run, "notaurl" if url == "notaurl" else "127.0.0.1")
    assert "s3cret" not in run.stdout + run.stderr


def _prepare(tmp_path: Path):
    return prepare_assets(data_dir=tmp_path / "data", model_dir=tmp_path / "model", epochs=1,
                          quiet=True, synthetic_shape=TINY)


def test_a_damaged_eval_set_in_the_cache_is_rebuilt_by_prepare(tmp_path):
    first = _prepare(tmp_path)
    size = first.eval_path.stat().st_size
    with first.eval_path.open("r+b") as stream:
        stream.truncate(size // 2)
    again = _prepare(tmp_path)
    assert again.eval_path.stat().st_size == size
    with np.load(again.eval_path) as arrays:
        assert arrays["items"].shape[1] == 1000
    assert again.model_card["version"] == first.model_card["version"]  # the model was fine


def test_a_damaged_eval_set_given_to_the_tuner_says_to_rerun_prepare(tmp_path, tuning_options):
    assets = _prepare(tmp_path)
    assets.eval_path.write_bytes(assets.eval_path.read_bytes()[:1000])
    with pytest.raises(UsageError, match="rerun `autotune prepare`") as raised:
        run_tuning(tuning_options("online", trials=1), assets=assets)
    assert str(assets.eval_path) in str(raised.value)


def test_a_damaged_model_in_the_cache_is_rebuilt_by_prepare(tmp_path):
    first = _prepare(tmp_path)
    (first.version_dir / "saved_model.pb").write_bytes(b"\0" * 64)
    again = _prepare(tmp_path)
    assert again.model_card["version"] == first.model_card["version"] + 1
    assert numeric_versions(tmp_path / "model") == [again.model_card["version"]]


@pytest.mark.parametrize("url, secrets", [
    ("postgresql://127.0.0.1:1/studies?user=tuner&password=sekret", ("sekret",)),
    ("postgresql://tuner:se@cret@127.0.0.1:1/studies", ("se@cret", "cret")),
])
def test_a_password_in_the_query_or_holding_an_at_sign_is_never_printed(tmp_path, url, secrets):
    """Issue 27, 6: `?password=` was printed as it is; `u:se@cret@host` printed `cret`."""
    run = autotune("report", "--storage", url, "--report-dir", str(tmp_path / "r"))
    line = refused(run)
    for secret in secrets:
        assert secret not in run.stdout + run.stderr, line


def test_masking_a_short_password_garbles_no_other_word(tmp_path):
    """Issue 27, 6: the password `se` was masked inside other words too (`u***r`)."""
    run = autotune("report", "--storage", "postgresql://user:se@127.0.0.1:1/studies",
                   "--report-dir", str(tmp_path / "r"))
    refused(run, "postgresql://user:***@127.0.0.1:1/studies", "refused")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """An empty folder of mode 0555 (read-only for a command run with `modes_obeyed`)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_a_data_dir_that_is_a_file_is_refused_before_any_work(tmp_path):
    """Issue 27, 8: a traceback after 7 s of preparing data."""
    a_file = tmp_path / "data"
    a_file.write_text("not a folder\n")
    refused(_tuner(tmp_path, "--data-dir", str(a_file), "--report-dir", str(tmp_path / "r")),
            "--data-dir", "is a file")
    assert not (tmp_path / "studies.db").exists()  # refused before the storage was opened


def test_a_read_only_data_dir_is_refused_before_the_eval_set_is_built(tmp_path,
                                                                      read_only_folder):
    """Issue 27, 8: the eval set was built for seconds, then writing it was a traceback."""
    run = _tuner(tmp_path, "--data-dir", str(read_only_folder),
                 "--report-dir", str(tmp_path / "r"), modes_obeyed=True)
    refused(run, "--data-dir", "not writable")
    assert not any(read_only_folder.iterdir())


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_a_report_dir_autotune_report_cannot_write_is_one_line(tmp_path, read_only_folder,
                                                               kind):
    """Issue 27, 8: `autotune report --report-dir` naming a file or a read-only folder
    wrote its files into it regardless: a traceback."""
    storage = f"sqlite:///{tmp_path}/studies.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        online_study(storage, "s")
    target = read_only_folder
    if kind == "file":
        target = tmp_path / "reports"
        target.write_text("not a folder\n")
    run = autotune("report", "--storage", storage, "--report-dir", str(target),
                   modes_obeyed=True)
    refused(run, "--report-dir", "is a file" if kind == "file" else "not writable")
    assert target.is_file() or not any(target.iterdir())


def _truncate(path: Path) -> None:
    with path.open("r+b") as stream:
        stream.truncate(path.stat().st_size // 2)


def test_truncated_model_variables_in_the_cache_are_rebuilt_by_prepare(tmp_path):
    """Issue 27, 8: loading them raised IndexError, a traceback; the cache never mended."""
    first = _prepare(tmp_path)
    (variables,) = (first.version_dir / "variables").glob("variables.data-*")
    _truncate(variables)
    again = _prepare(tmp_path)
    assert again.model_card["version"] == first.model_card["version"] + 1
    assert numeric_versions(tmp_path / "model") == [again.model_card["version"]]


def test_truncated_model_variables_given_to_the_tuner_are_one_line(tmp_path, tuning_options):
    assets = _prepare(tmp_path)
    (variables,) = (assets.version_dir / "variables").glob("variables.data-*")
    _truncate(variables)
    with pytest.raises(UsageError, match="cannot be served") as raised:
        run_tuning(tuning_options("online", trials=1), assets=assets)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("damaged", ["model/model_card.json", "data/synthetic/eval.json"])
def test_a_manifest_or_card_that_is_not_an_object_is_rebuilt_by_prepare(tmp_path, damaged):
    """Issue 27, 8: `["x"]` in either file was an AttributeError, a traceback."""
    _prepare(tmp_path)
    (tmp_path / damaged).write_text('["x"]')
    again = _prepare(tmp_path)
    assert again.model_card["dataset"] == "synthetic"
    assert isinstance(json.loads((tmp_path / damaged).read_text()), dict)


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999"])
def test_a_seed_out_of_range_is_refused_before_any_work(tmp_path, seed):
    """Issue 27, 8: numpy's or TensorFlow's traceback after the data was prepared."""
    refused(_tuner(tmp_path, "--seed", seed, "--report-dir", str(tmp_path / "r")),
            "--seed", "from 0 to")
    refused(autotune("prepare", "--seed", seed, home=tmp_path / "home"), "--seed")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("batch_size", ["2000000", "99999999999"])
def test_a_batch_the_server_would_refuse_is_refused_before_any_work(tmp_path, batch_size):
    """Issue 27, 8 and 9: 2,000,000 failed three trials as "server stopped answering" and
    exited 1 after 23 s; 99,999,999,999 tried to allocate 745 GiB (a traceback)."""
    refused(_tuner(tmp_path, "--mode", "batch", "--batch-size", batch_size,
                   "--report-dir", str(tmp_path / "r")),
            "--batch-size", "at most 1000000")
    assert not (tmp_path / "studies.db").exists()
