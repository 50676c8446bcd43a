"""The output-agreement gate: any model's outputs through the server, against a reference.

Thread settings should never change what a model answers, but a misconfigured or
numerically off server would still be fast; the NCF model is gated on HR/NDCG
(autotune.measure.accuracy), any other model on its own outputs. The reference is what
the records say the model answered (their `PredictResponse`s) where they carry it, else
the served version's outputs computed once in this process, with TensorFlow's default
threads, before the first trial (`build_agreement_gate`). Each trial sends the same
seeded sample of the requests' rows through its server, in requests of the mode's size,
and compares every output the reference has: numbers with `np.allclose`'s test,
`|got - want| <= atol + rtol * |want|` (NaN agreeing with NaN), anything else (strings,
shapes, a missing output) exactly. The largest excess over that bound is the Optuna
constraint (<= 0 is met), so a trial that disagrees is infeasible like one below an
accuracy floor; its largest absolute and relative deviations are trial attrs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from optuna.trial import FrozenTrial

from autotune.measure.records import Outputs, Records
from autotune.measure.rows import RequestRows, Sender, sample_indexes
from autotune.record.schema import StudyAttr, TrialAttr
from autotune.serving.model import ServedModel

#: rows each trial sends through its server and compares
AGREEMENT_ROWS = 500
RECORDED, IN_PROCESS = "recorded responses", "in-process"


@dataclass(frozen=True)
class AgreementResult:
    """How far one server's outputs are from the reference (a record/schema `Constraint`)."""

    max_abs_err: float
    max_rel_err: float
    #: the largest `|got - want| - (atol + rtol * |want|)`: <= 0 when all are close
    excess: float
    rtol: float
    atol: float
    #: the output with the largest excess
    worst: str = ""
    #: what no tolerance covers (a missing output, another shape, values that differ)
    mismatch: str = ""

    @property
    def ok(self) -> bool:
        return not self.mismatch and self.excess <= 0

    def attrs(self) -> dict[str, float | bool]:
        """The trial's `max_abs_err`, `max_rel_err` and `agreement_ok`."""
        return {TrialAttr.MAX_ABS_ERR: self.max_abs_err, TrialAttr.MAX_REL_ERR: self.max_rel_err,
                TrialAttr.AGREEMENT_OK: self.ok}

    def constraints(self) -> dict[str, float]:
        """Optuna's constraint: the largest excess over the tolerance (1 for a mismatch)."""
        return {"agreement": 1.0 if self.mismatch else self.excess}

    def shortfall(self) -> str:
        """Why the trial is infeasible, or "" when the outputs agree."""
        if self.ok:
            return ""
        return ("outputs disagree with the reference: " + (self.mismatch or (
            f"output {self.worst!r} max abs err {self.max_abs_err:.3g}, max rel err "
            f"{self.max_rel_err:.3g}, beyond rtol {self.rtol:g} and atol {self.atol:g}")))


def compare(got: Outputs, want: Outputs, rtol: float, atol: float) -> AgreementResult:
    """Every output of `want` against the same output of `got`; see the module docstring."""
    abs_err = rel_err = 0.0
    excess, worst, mismatch = -np.inf, "", ""
    for name, expected in want.items():
        actual = got.get(name)
        if actual is None or actual.shape != expected.shape:
            mismatch = mismatch or (f"output {name!r} has shape {list(actual.shape)}, the "
                                    f"reference {list(expected.shape)}" if actual is not None
                                    else f"the server answered no output {name!r}")
            continue
        if expected.dtype.kind not in "biuf" or actual.dtype.kind not in "biuf":
            differ = int(np.sum(actual != expected))
            mismatch = mismatch or (f"output {name!r} differs in {differ} of {expected.size} "
                                    "values" if differ else "")
            continue
        a, b = actual.astype(np.float64), expected.astype(np.float64)
        diff = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
        if np.isnan(diff).any():
            mismatch = mismatch or f"output {name!r} has NaN where the reference has none"
            continue
        nonzero = b != 0
        abs_err = max(abs_err, float(diff.max(initial=0.0)))
        rel_err = max(rel_err, float((diff[nonzero] / np.abs(b[nonzero])).max(initial=0.0)))
        over = float((diff - (atol + rtol * np.abs(b))).max(initial=-np.inf))
        if over > excess:
            excess, worst = over, name
    return AgreementResult(abs_err, rel_err, float(excess) if np.isfinite(excess) else 0.0,
                           rtol, atol, worst, mismatch)


@dataclass(frozen=True)
class AgreementGate:
    """Sends `rows` (a seeded sample of the requests' rows) through a server and compares
    its outputs with `reference` (theirs, row by row)."""

    rows: RequestRows
    reference: Outputs
    rtol: float
    atol: float
    #: rows per request: 1 (online, server) or the batch mode's batch
    rows_per_request: int = 1
    #: where the reference came from: `RECORDED`, `IN_PROCESS`, or both
    source: str = RECORDED

    def check(self, client: Sender, max_request: int | None = None) -> AgreementResult:
        """Compare the server's outputs; `max_request` caps the rows per request (a
        batching server refuses requests larger than its `max_batch_size`)."""
        size = min(self.rows_per_request, max_request or self.rows_per_request)
        return compare(client.predict(self.rows, batch_size=size), self.reference,
                       self.rtol, self.atol)

    def study_attrs(self) -> dict[str, object]:
        """What the study records of this gate: its tolerances and its reference (and no
        HR/NDCG floors, which it does not check)."""
        return {StudyAttr.MIN_HR: None, StudyAttr.MIN_NDCG: None, StudyAttr.RTOL: self.rtol,
                StudyAttr.ATOL: self.atol, StudyAttr.REFERENCE: self.source}

    def unmet(self, trials: Sequence[FrozenTrial]) -> str:
        """How many of `trials` did not agree with the reference and how close the closest
        came, for the run's error when none is feasible ("" when all agreed)."""
        disagreed = sum(t.user_attrs.get(TrialAttr.AGREEMENT_OK) is False for t in trials)
        if not disagreed:
            return ""
        closest = min((t for t in trials if TrialAttr.MAX_ABS_ERR in t.user_attrs),
                      key=lambda t: t.user_attrs[TrialAttr.MAX_ABS_ERR], default=None)
        seen = ("" if closest is None else
                f"; the closest, trial {closest.number}: max abs err "
                f"{closest.user_attrs[TrialAttr.MAX_ABS_ERR]:.3g}, max rel err "
                f"{closest.user_attrs[TrialAttr.MAX_REL_ERR]:.3g}")
        return (f"{disagreed} with outputs not within rtol {self.rtol:g} and atol "
                f"{self.atol:g} of the reference ({self.source}){seen}")


def build_agreement_gate(records: Records, model_dir: Path, rtol: float, atol: float,
                         rows_per_request: int, seed: int,
                         sample: int = AGREEMENT_ROWS) -> AgreementGate:
    """The gate of `records`: its seeded sample of rows and their reference outputs (the
    records' responses, else the served version's in-process outputs)."""
    references = _references(records, model_dir)
    rows = records.rows()
    names = set.intersection(*(set(reference) for reference in references))
    names &= set(rows.outputs) or names
    picked = sample_indexes(len(rows), sample, seed)
    reference = {name: np.concatenate([ref[name] for ref in references])[picked]
                 for name in sorted(names)}
    sources = {RECORDED if response is not None else IN_PROCESS
               for response in records.responses}
    return AgreementGate(rows.take(picked), reference, rtol, atol, rows_per_request,
                         " and ".join(sorted(sources, reverse=True)))


def _references(records: Records, model_dir: Path) -> list[Outputs]:
    """Each record's reference outputs: its response, else the served version's outputs
    for its inputs, computed here (the model is loaded only when a record needs it)."""
    if all(response is not None for response in records.responses):
        return list(records.responses)  # type: ignore[arg-type]
    signature = ServedModel("reference", Path(model_dir)).signatures[records.signature]
    return [response if response is not None else signature(request.arrays)
            for request, response in zip(records.requests, records.responses, strict=True)]
