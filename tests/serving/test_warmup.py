"""TF Serving's model warmup in the embedded server: the version's recorded requests run
before it is AVAILABLE (and the log says how long that took), and warmup records it
cannot run fail the start, as they fail TF Serving's load."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotune.errors import ServerStartError
from autotune.launch import ModelLocation, ServerSettings
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from autotune.serving.batching_config import BatchingParameters
from autotune.serving.server import SETTINGS_MARKER
from autotune.serving.warmup import WARMUP_FILE
from own_model import LARGEST, RECORDS, export_own_model
from serving.fixtures import START_DEADLINE_S


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_own_model(tmp_path_factory.mktemp("warmup") / "ctr")


def _start(base_path: Path, settings: ServerSettings | None = None) -> str:
    """Start an embedded server on the model (1/1/1 threads unless `settings`), wait until
    AVAILABLE; its log."""
    with LocalLauncher(ModelLocation(base_path, "ctr"), program=EMBEDDED_SERVER) as launcher:
        launcher.start(settings or ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        return launcher.logs(200)


def test_warmup_records_run_before_the_version_is_available(own_model: Path) -> None:
    log = _start(own_model)
    warmed = [line for line in log.splitlines()
              if f"warmed up model ctr version 1 with {RECORDS} warmup requests in " in line]
    assert len(warmed) == 1, log
    listening = next(index for index, line in enumerate(log.splitlines())
                     if line.startswith(SETTINGS_MARKER))
    assert log.splitlines().index(warmed[0]) < listening  # before it listens: not AVAILABLE yet


def test_a_model_without_warmup_records_says_so(tmp_path: Path) -> None:
    base = export_own_model(tmp_path / "ctr", warmup=False)
    assert f"no warmup requests at {base / '1' / WARMUP_FILE}" in _start(base)


def test_a_warmup_file_that_is_not_a_tfrecord_fails_the_start(tmp_path: Path) -> None:
    base = export_own_model(tmp_path / "ctr", warmup=False)
    (base / "1" / WARMUP_FILE).parent.mkdir(parents=True)
    (base / "1" / WARMUP_FILE).write_text("not records\n")
    with pytest.raises(ServerStartError, match="warmup failed: .* is not a TFRecord file of "
                                               "PredictionLog records: record 0"):
        _start(base)


def test_warmup_goes_through_the_batching_layer_as_tf_servings_does(own_model: Path) -> None:
    """A warmup record larger than a batching server's max_batch_size fails the start with
    TF Serving's own refusal, as TF Serving's load fails."""
    small = BatchingParameters(max_batch_size=LARGEST - 1, batch_timeout_micros=100,
                               num_batch_threads=1)
    with pytest.raises(ServerStartError, match=f"Task size {LARGEST} is larger than maximum "
                                               f"input batch size {LARGEST - 1}"):
        _start(own_model, ServerSettings(1, 1, 1, batching=small))
