"""Runs a quick study as its own process, as `autotune --mode` would, for interrupt tests.

    python tuner_driver.py STORAGE EVAL_PATH MODEL_DIR

The data and model are given (the test's `small_assets`) instead of being prepared, and
the exit codes are the CLI's: 130 after Ctrl-C.
"""

import sys
from pathlib import Path
from types import SimpleNamespace

from autotune.client import LatencyPolicy
from autotune.study import TuningOptions, run_tuning

if __name__ == "__main__":
    storage, eval_path, model_dir = sys.argv[1:4]
    options = TuningOptions(mode="online", server="local", storage=storage, trials=3,
                            accuracy_users=100, confirm_rounds=0, quiet=True,
                            report_dir=Path(storage.removeprefix("sqlite:///")).parent / "reports",
                            latency_policy=LatencyPolicy(max_seconds=60.0, tolerance=0.0))
    try:
        assets = SimpleNamespace(eval_path=Path(eval_path), model_dir=Path(model_dir))
        sys.exit(run_tuning(options, assets))
    except KeyboardInterrupt:
        sys.exit(130)
