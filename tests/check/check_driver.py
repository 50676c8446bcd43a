"""Runs a long `autotune check` as its own process, for the killed-check test.

    python check_driver.py STORAGE STUDY ENV_FILE EVAL_PATH MODEL_DIR

The data and model are given (the test's `small_assets`) instead of being prepared; the
race's budget outlasts any test, so the test kills it mid-race.
"""

import sys
from pathlib import Path
from types import SimpleNamespace

from autotune.check import run_check
from autotune.options import CheckOptions

if __name__ == "__main__":
    storage, study, env_file, eval_path, model_dir = sys.argv[1:]
    check = CheckOptions(env_file=Path(env_file), storage=storage, study_name=study,
                         confirm_budget=3600, quiet=True)
    sys.exit(run_check(check, SimpleNamespace(eval_path=Path(eval_path),
                                              model_dir=Path(model_dir))))
