"""Checks of the assets a run serves and scores: the model loads, the eval set reads.

A bad model folder or eval set must stop the run at once with one line and exit 2, not
after a trial failed on it nor with a traceback. Each check does the real thing: load the
model as the embedded server loads it, read the eval set whole. `autotune prepare`
runs them on what it built or found; the tuner on assets prepared elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from autotune.errors import UsageError


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
