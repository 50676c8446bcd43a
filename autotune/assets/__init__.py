"""What a run serves and scores: the eval set and the NCF SavedModel, built or checked.

    prepare   `autotune prepare`: the eval set and the model, built when missing or stale
              (a user's own model folder is served as it is)
    checks    the model loads as the embedded server loads it; the eval set reads whole
"""

from autotune.assets.checks import check_eval_set, check_model, model_problem
from autotune.assets.prepare import PreparedAssets, check_assets, prepare_assets, print_prepared

__all__ = ["PreparedAssets", "check_assets", "check_eval_set", "check_model", "model_problem",
           "prepare_assets", "print_prepared"]
