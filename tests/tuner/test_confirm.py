"""The confirmation round's choice of configurations and its confidence interval."""

import optuna
import pytest

from autotune.confirm import mean_and_ci95, pick_candidates

from .trials import add_trial


def test_top_feasible_configurations_then_every_baseline_once():
    study = optuna.create_study(direction="minimize")
    add_trial(study, 1, 5.0, baseline="tutorial")
    add_trial(study, 2, 4.0, baseline="image-defaults")
    add_trial(study, 3, 1.0, hr=0.0)  # infeasible: never a candidate for best
    add_trial(study, 4, 2.0)
    add_trial(study, 2, 3.0)  # the image defaults again, measured better by the search
    candidates = pick_candidates(study, top=2)
    assert [(c.params["x"], c.baselines) for c in candidates] == [
        (4, []), (2, ["image-defaults"]), (1, ["tutorial"])]
    assert all(candidate.feasible for candidate in candidates)


def test_confidence_interval_uses_student_t():
    mean, (low, high) = mean_and_ci95([1.0, 2.0, 3.0])
    half = 4.303 / 3 ** 0.5
    assert mean == 2.0 and (low, high) == pytest.approx((2.0 - half, 2.0 + half))
    assert mean_and_ci95([4.0]) == (4.0, (4.0, 4.0))
