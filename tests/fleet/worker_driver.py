"""One fleet worker as its own process: `autotune --mode ...` on the tests' small model.

    python worker_driver.py EVAL_PATH MODEL_DIR AUTOTUNE_TUNING_FLAGS...

The flags are parsed by the CLI's own parser; the data and model are the session's
`small_assets` instead of being prepared, and online measurements are short. Exit codes
are the CLI's (2 for a refusal, printed as one line).
"""

import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from autotune.cli import _tuning_parser
from autotune.errors import AutotuneError
from autotune.options import LatencyPolicy, TuningOptions
from autotune.tuning.run import run_tuning

if __name__ == "__main__":
    eval_path, model_dir, *flags = sys.argv[1:]
    options = replace(TuningOptions.from_namespace(_tuning_parser().parse_args(flags)),
                      latency_policy=LatencyPolicy(warmup_requests=20, window=50,
                                                   max_requests=1000, max_seconds=3.0))
    try:
        sys.exit(run_tuning(options, SimpleNamespace(eval_path=Path(eval_path),
                                                     model_dir=Path(model_dir))))
    except AutotuneError as error:
        print(f"autotune: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
