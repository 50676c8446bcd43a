"""Checks of a run's flags, paths and inputs before its first trial (and before slow work).

A bad `--report-dir`, storage URL, model folder or eval set must stop the run at once
with one line and exit 2, not after every trial has run (the report was the last thing
written) nor with a traceback. Each check does the real thing on a small scale: write a
file into the report folder, load the model, read the eval set. The storage is opened
(autotune.storage) right before these, also before any slow work.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.errors import UsageError

if TYPE_CHECKING:
    from autotune.options import TuningOptions
    from autotune.prepare import PreparedAssets


def check_report_dir(report_dir: Path) -> None:
    """`report_dir` exists (created if need be) and takes a new file."""
    if report_dir.exists() and not report_dir.is_dir():
        raise UsageError(f"--report-dir {report_dir} is a file, not a folder; "
                         "name a folder for the report files")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=report_dir):
            pass
    except OSError as error:
        raise UsageError(f"--report-dir {report_dir} is not writable ({error.strerror}); "
                         "name a folder you can write to") from None


def model_problem(model_dir: Path) -> str | None:
    """Why the model at `model_dir` cannot be served (loaded as the embedded server
    loads it), or None when it can."""
    from autotune.serving.model import ModelLoadError, ServedModel

    try:
        ServedModel("model", model_dir)
    except ModelLoadError as error:
        return str(error)
    return None


def check_model(model_dir: Path) -> None:
    """`UsageError` with the reason unless the model at `model_dir` loads."""
    problem = model_problem(model_dir)
    if problem:
        raise UsageError(f"the model in {model_dir} cannot be served: {problem}")


def check_eval_set(eval_path: Path) -> None:
    """`UsageError` unless the eval set file reads whole."""
    from autotune.data.eval_set import load_problem

    problem = load_problem(eval_path)
    if problem:
        raise UsageError(f"the eval set {eval_path} is damaged or unreadable ({problem}); "
                         "rerun `autotune prepare` to rebuild it")


def check_run(options: "TuningOptions") -> None:
    """What a run needs before anything slow, beyond its storage (opened first, by
    autotune.storage): a writable report folder."""
    check_report_dir(Path(options.report_dir))


def check_assets(assets: "PreparedAssets") -> "PreparedAssets":
    """Assets prepared elsewhere: the model loads and the eval set reads; `assets` back."""
    check_model(Path(assets.model_dir))
    check_eval_set(Path(assets.eval_path))
    return assets
