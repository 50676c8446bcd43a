"""Runs a quick study as its own process, as `autotune --mode` would, for interrupt tests.

    python tuner_driver.py STORAGE EVAL_PATH MODEL_DIR [--server local|docker]
                           [--image IMAGE] [--measure-seconds S] [--trials N]

The data and model are given (the test's `small_assets`) instead of being prepared, and
the exit codes and one-line errors are the CLI's: 130 after Ctrl-C. By default a trial
measures for up to 60 s with windows that never agree, so a test can interrupt it
mid-measurement.
"""

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

from autotune.errors import AutotuneError
from autotune.options import LatencyPolicy, TuningOptions
from autotune.tuning.run import run_tuning

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("storage")
    parser.add_argument("eval_path", type=Path)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--server", default="local")
    parser.add_argument("--image", default="autotune/serving:mkl")
    parser.add_argument("--measure-seconds", type=float, default=60.0)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    options = TuningOptions(mode="online", server=args.server, image=args.image,
                            storage=args.storage, trials=args.trials,
                            accuracy_users=100, confirm_budget=0, quiet=True, precision=0.0,
                            report_dir=Path(args.storage.removeprefix("sqlite:///")).parent
                            / "reports",
                            latency_policy=LatencyPolicy(max_seconds=args.measure_seconds))
    try:
        assets = SimpleNamespace(eval_path=args.eval_path, model_dir=args.model_dir)
        sys.exit(run_tuning(options, assets))
    except AutotuneError as error:  # as autotune.cli.main says it
        print(f"autotune: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
