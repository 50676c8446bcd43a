"""The pruner's rule on studies written as the tuner records them: a trial is pruned once
its windows show it slower than the last finalist's place by more than the precision."""

from __future__ import annotations

import optuna

from autotune.modes import BATCH, ONLINE, SERVER, Mode
from autotune.record.schema import TrialAttr
from autotune.search.pruning import HopelessPruner
from trials import add_trial

PRECISION = 0.02


def _study(mode: Mode, values: list[float], infeasible: tuple[int, ...] = ()) -> optuna.Study:
    """A study of `mode` with one measured configuration per value (`x` = its index)."""
    study = optuna.create_study(direction=mode.direction)
    for x, value in enumerate(values):
        add_trial(study, x, value, hr=0.1 if x in infeasible else 0.5)
    return study


def _running(study: optuna.Study, windows: list[float], baseline: bool = False,
             measured_from: int = 0) -> bool:
    """Whether the pruner gives up on a new trial whose windows measured `windows` (a
    second measurement from step `measured_from`, where it is not 0)."""
    study.enqueue_trial({"x": 9}, user_attrs={TrialAttr.BASELINE: "tutorial"} if baseline
                        else None)
    trial = study.ask()
    trial.suggest_int("x", 0, 10)
    if measured_from:
        trial.set_user_attr(TrialAttr.MEASURED_FROM_STEP, measured_from)
    for step, value in enumerate(windows):
        trial.report(value, step)
    return study.pruner.prune(study, study.get_trials(deepcopy=False)[-1])


def test_online_a_trial_clearly_slower_than_the_best_is_pruned():
    study = _study(ONLINE, [1.0, 1.2])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=1)
    assert _running(study, [1.30, 1.31, 1.29])
    # within the precision of the best, or too few windows for an interval: measured on
    study = _study(ONLINE, [1.0, 1.2])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=1)
    assert not _running(study, [1.01, 1.02, 1.00])
    study = _study(ONLINE, [1.0])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=1)
    assert not _running(study, [1.30, 1.31])


def test_a_trial_measured_again_is_judged_by_its_second_measurement_alone():
    # the busy first look was slow, the calm second one is as fast as the best
    study = _study(ONLINE, [1.0])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=1)
    assert not _running(study, [1.60, 1.61, 1.59, 1.00, 1.01, 0.99], measured_from=3)
    # and the other way round: its second look shows it hopeless
    study = _study(ONLINE, [1.0])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=1)
    assert _running(study, [1.00, 1.01, 0.99, 1.60, 1.61, 1.59], measured_from=3)


def test_a_wide_interval_keeps_a_trial_that_may_still_be_fast():
    study = _study(ONLINE, [1.0])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=1)
    assert not _running(study, [0.8, 1.6, 1.2])


def test_the_place_to_beat_is_the_last_finalist_s_not_the_best_s():
    # three finalists: the third best is 1.5, so 1.3 may still be raced
    study = _study(ONLINE, [1.0, 1.1, 1.5, 2.0])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=3)
    assert not _running(study, [1.30, 1.31, 1.29])
    study = _study(ONLINE, [1.0, 1.1, 1.5, 2.0])
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=3)
    assert _running(study, [1.80, 1.81, 1.79])
    # fewer feasible configurations than finalists: nothing to compare with yet
    study = _study(ONLINE, [1.0, 1.1, 1.2], infeasible=(2,))
    study.pruner = HopelessPruner(ONLINE, PRECISION, top=3)
    assert not _running(study, [9.0, 9.1, 9.2])


def test_batch_throughput_below_the_best_is_pruned_but_never_a_baseline():
    study = _study(BATCH, [1000.0])
    study.pruner = HopelessPruner(BATCH, PRECISION, top=1)
    assert _running(study, [600.0, 610.0, 590.0])
    study = _study(BATCH, [1000.0])
    study.pruner = HopelessPruner(BATCH, PRECISION, top=1)
    assert not _running(study, [600.0, 610.0, 590.0], baseline=True)


def test_server_mode_stops_at_a_rate_a_better_trial_already_beat():
    study = _study(SERVER, [800.0])
    study.pruner = HopelessPruner(SERVER, PRECISION, top=1)
    assert _running(study, [400.0])  # missed the bound at 400/s: its peak is below it
    study = _study(SERVER, [800.0])
    study.pruner = HopelessPruner(SERVER, PRECISION, top=1)
    assert not _running(study, [1600.0])  # may still beat 800/s
