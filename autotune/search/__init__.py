"""The search space: the choices of every knob on this host, and the named baselines.

    space           `SearchSpace` (thread, OpenMP, pinning and instance choices; Optuna's
                    suggestions), `build_space`, the baselines, params <-> settings
    batching_space  the choices of TF Serving's batching knobs (server mode)
    pruning         `HopelessPruner`, which stops a trial shown too slow to be raced

The knobs themselves (names, env, flags) are rows of `autotune.launch.settings.KNOBS`;
this package says which values of them are worth measuring here.
"""

from autotune.search.batching_space import BatchingChoices
from autotune.search.pruning import HopelessPruner
from autotune.search.space import (
    PARAM_LABELS,
    THREAD_PARAMS,
    Baseline,
    SearchSpace,
    baselines,
    build_space,
    describe_params,
    settings_from_params,
)

__all__ = ["PARAM_LABELS", "THREAD_PARAMS", "Baseline", "BatchingChoices", "SearchSpace",
           "HopelessPruner", "baselines", "build_space", "describe_params", "settings_from_params"]
