"""`autotune check`: a stored study's recommendation re-measured on this host against the
settings deployed now and the baselines, for CI after a model or image upgrade.

    run       `run_check`: the inputs checked, the configurations raced side by side as
              the tuner's racing does, the verdict printed (and written as JUnit XML)
    deployed  the deployed settings, from the `.env` file a tuning run wrote
    verdict   still the fastest, statistically tied, or beaten (exit 0 or 1)
    junit     the verdict as a JUnit XML test case (junitparser)
"""

from autotune.check.deployed import deployed_params
from autotune.check.junit import write_junit
from autotune.check.run import check_finalists, run_check, study_options
from autotune.check.verdict import DEPLOYED, RECOMMENDATION, CheckVerdict, judge

__all__ = ["DEPLOYED", "RECOMMENDATION", "CheckVerdict", "check_finalists", "deployed_params",
           "judge", "run_check", "study_options", "write_junit"]
