"""Right-sizing (`--target-qps`): the rate a configuration must hold, and the smallest CPU
limit that does.

A server-mode study with `--target-qps Q` searches the CPU limit (`cpus`) with the other
knobs. A trial whose peak rate under the p99 bound is below Q is infeasible (an Optuna
constraint, like the accuracy floors), so TPE learns where the target is held. The answer
is not the fastest trial but the smallest CPU limit held by a feasible trial, and at that
limit the fastest; the report gives each limit's best peak beside it
(`limit_table`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from optuna.trial import FrozenTrial

from autotune.record.schema import is_feasible

#: the constraint name (a trial's `constraints` key)
CONSTRAINT = "target_qps"
#: the param of the searched CPU limit (a `limit` knob, autotune.launch.settings)
CPUS_PARAM = "cpus"


@dataclass(frozen=True)
class TargetCheck:
    """A trial's peak rate under the bound against `--target-qps`."""

    peak_qps: float
    target_qps: float

    def attrs(self) -> dict[str, Any]:
        """Nothing beyond the objective (`qps_at_slo`)."""
        return {}

    def constraints(self) -> dict[str, float]:
        """The rate missing to the target (<= 0 is feasible)."""
        return {CONSTRAINT: self.target_qps - self.peak_qps}

    def shortfall(self) -> str:
        """Why the trial is infeasible, or "" when it holds the target."""
        if self.peak_qps >= self.target_qps:
            return ""
        return (f"peak {self.peak_qps:,.0f} requests/s under the bound < --target-qps "
                f"{self.target_qps:g}")


def right_sized_trial(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The feasible COMPLETE trial of the smallest CPU limit, the fastest at that limit
    (None: no trial held the target)."""
    feasible = [t for t in trials if t.value is not None and CPUS_PARAM in t.params
                and is_feasible(t)]
    if not feasible:
        return None
    return min(feasible, key=lambda t: (float(t.params[CPUS_PARAM]), -t.value))


def limit_table(trials: Iterable[FrozenTrial], target_qps: float) -> list[dict[str, Any]]:
    """Each CPU limit tried with its best peak rate under the bound (and its trial), and
    whether that holds the target; smallest limit first."""
    best: dict[float, FrozenTrial] = {}
    for trial in trials:
        if trial.value is None or CPUS_PARAM not in trial.params:
            continue
        cpus = float(trial.params[CPUS_PARAM])
        if cpus not in best or trial.value > best[cpus].value:
            best[cpus] = trial
    return [{"cpus": cpus, "peak_qps": trial.value, "trial": trial.number,
             "holds": trial.value >= target_qps} for cpus, trial in sorted(best.items())]
