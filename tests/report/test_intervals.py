"""No report of a stored study states a negative interval, or one drawn from one value.

Every mode (online, batch, server) with a race of 1, 2, 3 and 6 rounds, rendered as
JSON, Markdown and HTML: each interval stated is positive and wider than a point, and a
value with fewer than three rounds says "one measurement" or "two rounds" instead.
"""

from __future__ import annotations

import re

import optuna
import pytest

from autotune.measure.accuracy import AccuracyResult
from autotune.modes import MODES
from autotune.record.schema import StudyAttr, TrialAttr, record_constraints
from autotune.report import build_report
from autotune.report.html import render_html
from autotune.report.markdown import render_markdown

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
THREADS = ("omp_num_threads", "intra_op_parallelism", "inter_op_parallelism")
#: three configurations: the tutorial's, and two searched ones
CONFIGS = ((1, 1, 1), (2, 1, 1), (1, 2, 1))
#: per-round factors of a noisy host (one round of a rate spread this much gave -318/s)
NOISE = (1.0, 0.55, 1.6, 0.9, 1.25, 0.7)
#: a stated interval: "95% CI a to b" (values) or "95% CI a-bx" (ratios)
INTERVAL = re.compile(r"95% CI (-?[\d,.]+)(?: \S+)? (?:to|-) ?(-?[\d,.]+)|"
                      r"95% CI (-?[\d.]+)-(-?[\d.]+)x")


def _stored_study(mode: str, rounds: int) -> optuna.Study:
    """A study as `mode` stores it: three trials (the first the tutorial's) and a race of
    `rounds` rounds in which every finalist was measured each round, on a noisy host."""
    mode_ = MODES[mode]
    study = optuna.create_study(direction=mode_.direction)
    study.set_user_attr(StudyAttr.MODE, mode)
    study.set_user_attr(StudyAttr.MODEL_DIR, "/m/ncf")
    study.set_user_attr(StudyAttr.IMAGE, "autotune/serving:mkl")
    study.set_metric_names([mode_.metric])
    if mode_.bounded:
        study.set_user_attr(StudyAttr.P99_MS, 25.0)
    base = {"online": 2.0, "batch": 90_000.0, "server": 900.0}[mode]
    for number, threads in enumerate(CONFIGS):
        study.enqueue_trial(dict(zip(THREADS, threads, strict=True)),
                            user_attrs={TrialAttr.BASELINE: "tutorial"} if number == 0 else {})
        trial = study.ask()
        for name in THREADS:
            trial.suggest_int(name, 1, 4)
        record_constraints(trial, AccuracyResult(hr=0.5, ndcg=0.3, min_hr=0.22, min_ndcg=0.11))
        study.tell(trial, base * (1 + number / 10))
    finalists = [{"trial": trial.number, "params": trial.params, "feasible": True,
                  "baselines": ["tutorial"] if trial.number == 0 else [],
                  "values": [trial.value * NOISE[r] * (1 + 0.1 * ((r + trial.number) % 3))
                             for r in range(rounds)],
                  "failures": [], "dropped_round": None, "dropped_reason": None}
                 for trial in study.trials]
    study.set_user_attr(StudyAttr.RACING, {
        "direction": mode_.direction, "precision": 0.02, "budget_s": 60.0, "alpha": 0.05,
        "rounds": rounds, "seconds": 55.0, "stopped": "budget", "finalists": finalists})
    return study


def _json_intervals(node: object) -> list[list[float]]:
    """Every `ci95` anywhere in the report JSON."""
    if isinstance(node, dict):
        return [*([node["ci95"]] if node.get("ci95") else []),
                *(found for value in node.values() for found in _json_intervals(value))]
    if isinstance(node, list):
        return [found for value in node for found in _json_intervals(value)]
    return []


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.parametrize("rounds", [1, 2, 3, 6])
@pytest.mark.parametrize("mode", list(MODES))
def test_no_interval_is_negative_or_a_single_value(mode, rounds):
    study = _stored_study(mode, rounds)
    report = build_report(study)
    intervals = _json_intervals(report)
    assert (len(intervals) > 0) == (rounds >= 3)
    assert all(0 < low < high for low, high in intervals), intervals
    for text in (render_markdown(report), render_html(study, report)):
        stated = [[pair for pair in match.groups() if pair] for match in INTERVAL.finditer(text)]
        assert (len(stated) > 0) == (rounds >= 3)
        assert all(0 < _number(low) < _number(high) for low, high in stated), stated
    markdown = render_markdown(report)
    if rounds < 3:
        assert ("(one measurement)" if rounds == 1 else "(two rounds)") in markdown
        # nothing is "tied" with the fastest that was not compared with it
        assert [t["trial"] for t in report["tied"]] == [report["best"]["trial"]]
        assert len(report["not_raced"]) == len(CONFIGS) - 1
