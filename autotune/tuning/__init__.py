"""One `autotune --mode` run: check, set up, search, race, report.

    run         `run_tuning`: the run's five steps, as docs/DESIGN.md's data flow draws them
    preflight   flags and the report folder checked before anything slow
    study       the study created or resumed (its stored setup must match), its trials
                planned (baselines, warm-start transfers, the whole grid when it fits)
    warm_start  --warm-start: sibling host classes' best configurations, mapped onto this
                host's space
    rig         the host within the limits, the launchers, the mode's workload (shared
                with `autotune check`)
    trials      `TrialObjective` (one configuration: restart, measure, gate, record) and
                the loop that runs trials while the budget lasts
    recovery    a dead tuner's trial failed and re-queued; the report on Ctrl-C
"""

from autotune.tuning.preflight import check_options, check_run
from autotune.tuning.run import run_tuning
from autotune.tuning.study import open_study, plan_trials
from autotune.tuning.trials import StudyAbortedError, TrialObjective, run_trials
from autotune.tuning.warm_start import Transfer, transfers, warm_start_sources

__all__ = ["StudyAbortedError", "Transfer", "TrialObjective", "check_options", "check_run",
           "open_study", "plan_trials", "run_trials", "run_tuning", "transfers",
           "warm_start_sources"]
