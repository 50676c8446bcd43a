"""When no trial is feasible, the run says why: only the constraints that were missed
(issue 27, the smaller list: `--max-memory-mb 1` said "below the floors")."""

from __future__ import annotations

import pytest

from autotune.errors import NoFeasibleTrialError
from autotune.tuning.run import run_tuning


def test_a_memory_limit_no_trial_meets_is_named_alone(small_assets, tuning_options):
    options = tuning_options("online", trials=1, confirm_budget=0, max_memory_mb=1)
    with pytest.raises(NoFeasibleTrialError) as raised:
        run_tuning(options, assets=small_assets)
    message = str(raised.value)
    assert "1 infeasible: 1 above --max-memory-mb 1" in message, message
    assert "below the floors" not in message
