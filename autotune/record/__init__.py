"""The stored record of a study: the attrs every reader relies on, and the storage itself.

    schema    every study and trial attr autotune keeps (`StudyAttr`, `TrialAttr`), the
              `Constraint` protocol and the helpers that write and read them (feasible,
              the same configuration, better, ranked)
    memory    the memory constraint (`--max-memory-mb`), a `Constraint`
    storage   any Optuna storage URL opened in one place (SQLite folder, PostgreSQL)
"""

from autotune.record.memory import MemoryCheck, measured_memory, over_limit_summary
from autotune.record.schema import (
    Constraint,
    StudyAttr,
    TrialAttr,
    best_feasible_trial,
    complete_trials,
    found_values,
    is_feasible,
    params_key,
    ranked,
    record_constraints,
    record_failure,
)
from autotune.record.storage import mask_password, open_storage

__all__ = ["Constraint", "MemoryCheck", "StudyAttr", "TrialAttr", "best_feasible_trial",
           "complete_trials", "found_values", "is_feasible", "mask_password", "measured_memory",
           "open_storage", "over_limit_summary", "params_key", "ranked", "record_constraints",
           "record_failure"]
