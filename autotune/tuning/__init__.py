"""One `autotune --mode` run: check, set up, search, race, report.

    run         `run_tuning`: the run's five steps, as docs/DESIGN.md's data flow draws them
    preflight   flags and the report folder checked before anything slow
    study       the study created or resumed (its stored setup must match), its trials
                planned (baselines, the whole grid when it fits the budget)
    trials      `TrialObjective` (one configuration: restart, measure, gate, record) and
                the loop that runs trials while the budget lasts
    recovery    a dead tuner's trial failed and re-queued; the report on Ctrl-C
"""

from autotune.tuning.preflight import check_options, check_run
from autotune.tuning.run import run_tuning
from autotune.tuning.study import open_study, plan_trials
from autotune.tuning.trials import StudyAbortedError, TrialObjective, run_trials

__all__ = ["StudyAbortedError", "TrialObjective", "check_options", "check_run", "open_study",
           "plan_trials", "run_trials", "run_tuning"]
