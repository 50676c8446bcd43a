"""The accuracy gate: HR@10 and NDCG@10 through the running server, checked against floors.

Thread settings should never change what a model predicts, but a server that is
misconfigured, overloaded into errors or numerically off would still be fast; so every
trial scores the eval set through the very server it measured, and a trial below either
floor is infeasible. The floors become Optuna constraints (value <= 0 is feasible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from optuna.trial import FrozenTrial

from autotune.data.eval_rows import EvalRows
from autotune.measure.rows import Sender
from autotune.measure.signature import NCF_INPUTS, PairInputs, pair_rows
from autotune.model.metrics import HR_LABEL, NDCG_LABEL, TOP_K, hit_rate_and_ndcg
from autotune.record.schema import StudyAttr, TrialAttr


@dataclass(frozen=True)
class AccuracyResult:
    """HR@10 and NDCG@10 of one server, and how far each is from its floor."""

    hr: float
    ndcg: float
    min_hr: float
    min_ndcg: float

    @property
    def ok(self) -> bool:
        return self.hr >= self.min_hr and self.ndcg >= self.min_ndcg

    def attrs(self) -> dict[str, float | bool]:
        """The trial's `hr`, `ndcg` and `accuracy_ok`."""
        return {TrialAttr.HR: self.hr, TrialAttr.NDCG: self.ndcg, TrialAttr.ACCURACY_OK: self.ok}

    def constraints(self) -> dict[str, float]:
        """Optuna constraint values: the shortfall below each floor (<= 0 is feasible)."""
        return {"hr": self.min_hr - self.hr, "ndcg": self.min_ndcg - self.ndcg}

    def shortfall(self) -> str:
        """Why the trial is infeasible, or "" when it is not."""
        misses = [f"{name} {value:.4f} < floor {floor}"
                  for name, value, floor in ((HR_LABEL, self.hr, self.min_hr),
                                             (NDCG_LABEL, self.ndcg, self.min_ndcg))
                  if value < floor]
        return "; ".join(misses)


@dataclass(frozen=True)
class AccuracyGate:
    """Scores `eval_rows` (already sampled to the users to check) in large requests, to
    the model's user and item inputs and read from its score output (`inputs`)."""

    eval_rows: EvalRows
    min_hr: float
    min_ndcg: float
    pairs_per_request: int = 100_000
    inputs: PairInputs = NCF_INPUTS

    def check(self, client: Sender, max_request: int | None = None) -> AccuracyResult:
        """Score the eval rows; `max_request` caps the pairs per request (a batching
        server refuses requests larger than its `max_batch_size`, as TF Serving does)."""
        users, items = self.eval_rows.flat_pairs()
        rows = pair_rows(users, items, self.inputs)
        size = min(self.pairs_per_request, max_request or self.pairs_per_request)
        scores = client.predict(rows, batch_size=size)[self.inputs.score]
        hr, ndcg = hit_rate_and_ndcg(scores.reshape(self.eval_rows.items.shape), k=TOP_K)
        return AccuracyResult(hr=hr, ndcg=ndcg, min_hr=self.min_hr, min_ndcg=self.min_ndcg)

    def study_attrs(self) -> dict[str, object]:
        """What the study records of this gate: its floors."""
        return {StudyAttr.MIN_HR: self.min_hr, StudyAttr.MIN_NDCG: self.min_ndcg}

    def unmet(self, trials: Sequence[FrozenTrial]) -> str:
        """How many of `trials` fell below the floors, for the run's error when none is
        feasible ("" when none did: the error names only what was missed)."""
        below = sum(t.user_attrs.get(TrialAttr.ACCURACY_OK) is False for t in trials)
        return (f"{below} below the floors {HR_LABEL} >= {self.min_hr}, "
                f"{NDCG_LABEL} >= {self.min_ndcg}" if below else "")

