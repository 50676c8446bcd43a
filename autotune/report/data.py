"""The report's data: one JSON-ready dict built from the study storage alone.

Everything is read from the study (trials, their attrs, the study attrs and the
confirmation round; the names in autotune.schema), so the report at the end of a run
and `autotune report` later are the same. The dict's keys are the contract in
docs/DESIGN.md ("The report JSON"); every renderer reads only this dict.

The best settings come from the confirmation round when there was one (mean and 95%
CI over its rounds), else from the best feasible trial (no CI). Speed-ups compare like
with like: confirmed means when both sides were confirmed, else search values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.importance import param_importances
from autotune.launch.docker import container_env, docker_run_command
from autotune.modes import speedup
from autotune.paths import DEFAULT_REPORT_DIR, MODEL_NAME
from autotune.report.server_files import batching_file
from autotune.schema import (
    StudyAttr,
    TrialAttr,
    best_feasible_trial,
    better,
    is_feasible,
    params_key,
)
from autotune.space import settings_from_params

#: trial attrs of a server-mode trial the report carries: the rates tried, LoadGen's logs
SERVER_TRIAL_ATTRS = (TrialAttr.RATES_TRIED, TrialAttr.LOADGEN_LOGS)


def build_report(study: optuna.Study, report_dir: Path = DEFAULT_REPORT_DIR) -> dict[str, Any]:
    """The report of `study` as the JSON-ready dict docs/DESIGN.md fixes (files it names
    are under `report_dir`)."""
    attrs = study.user_attrs
    direction = study.direction.name.lower()
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    confirmation = attrs.get(StudyAttr.CONFIRMATION, {})
    confirmed = confirmation.get("configs", [])
    confirmed_by_params = {params_key(config["params"]): config for config in confirmed
                           if config["mean"] is not None}

    best = _best(study, confirmed_by_params)
    baselines = _baselines(study, complete, confirmed_by_params)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState
              if any(t.state == state for t in trials)}
    report: dict[str, Any] = {
        "study": study.study_name,
        "mode": attrs.get(StudyAttr.MODE),
        "objective": {"metric": (study.metric_names or ["value"])[0],
                      "statistic": attrs.get(StudyAttr.OBJECTIVE), "direction": direction},
        "host": attrs.get(StudyAttr.HOST),
        "server": attrs.get(StudyAttr.SERVER),
        "image": attrs.get(StudyAttr.IMAGE),
        "model_dir": attrs.get(StudyAttr.MODEL_DIR),
        "exposure": attrs.get(StudyAttr.EXPOSURE),
        "floors": {"min_hr": attrs.get(StudyAttr.MIN_HR),
                   "min_ndcg": attrs.get(StudyAttr.MIN_NDCG)},
        "best": best,
        "baselines": baselines,
        "speedup": {},
        "trials": {**counts, "total": len(trials),
                   "infeasible": sum(not is_feasible(t) for t in complete)},
        "confirmation_rounds": confirmation.get("rounds", 0),
        "importances": param_importances(study),
    }
    if StudyAttr.P99_MS in attrs:
        report["p99_ms"] = attrs[StudyAttr.P99_MS]
    if best is not None:
        for name, baseline in baselines.items():
            same_source = best["source"] == baseline["source"]
            value = baseline["value"] if same_source else baseline["search_value"]
            best_value = best["value"] if same_source else best["search_value"]
            report["speedup"][name] = speedup(direction, best_value, value)
        report["best"]["docker_run"] = docker_run_command(
            settings_from_params(best["params"]), attrs.get(StudyAttr.MODEL_DIR, "<model_dir>"),
            attrs.get(StudyAttr.IMAGE, "<image>"), batching_file=batching_file(
                report_dir, study.study_name))
    return report


def _best(study: optuna.Study,
          confirmed: dict[tuple, dict[str, Any]]) -> dict[str, Any] | None:
    search_best = best_feasible_trial(study)
    if search_best is None:
        return None
    candidates = [c for c in confirmed.values() if c["feasible"]]
    if candidates:
        winner = candidates[0]
        for candidate in candidates[1:]:
            if better(study, candidate["mean"], winner["mean"]):
                winner = candidate
        trial = study.trials[winner["trial"]]
        value, ci, source = winner["mean"], winner["ci95"], "confirmation"
    else:
        trial, value, ci, source = search_best, search_best.value, None, "search"
    return {"trial": trial.number, "params": dict(trial.params), "env": _server_env(trial.params),
            "value": value, "ci95": ci, "source": source, "search_value": trial.value,
            "hr": trial.user_attrs.get(TrialAttr.HR), "ndcg": trial.user_attrs.get(TrialAttr.NDCG),
            "baseline": trial.user_attrs.get(TrialAttr.BASELINE), **_server_attrs(trial)}


def _baselines(study: optuna.Study, complete: list[FrozenTrial],
               confirmed: dict[tuple, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each baseline's best search measurement, and its confirmed mean when there is one."""
    chosen: dict[str, FrozenTrial] = {}
    for trial in complete:
        name = trial.user_attrs.get(TrialAttr.BASELINE)
        if name and (name not in chosen or better(study, trial.value, chosen[name].value)):
            chosen[name] = trial
    baselines = {}
    for name, trial in chosen.items():
        config = confirmed.get(params_key(trial.params))
        baselines[name] = {
            "trial": trial.number, "params": dict(trial.params), "env": _server_env(trial.params),
            "feasible": is_feasible(trial), "search_value": trial.value,
            "value": config["mean"] if config else trial.value,
            "ci95": config["ci95"] if config else None,
            "source": "confirmation" if config else "search",
            **_server_attrs(trial),
        }
    return baselines


def _server_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """Server mode: the rates the trial tried and where its LoadGen logs are."""
    return {key: trial.user_attrs[key] for key in SERVER_TRIAL_ATTRS if key in trial.user_attrs}


def _server_env(params: dict[str, Any]) -> dict[str, str]:
    return container_env(settings_from_params(params), MODEL_NAME)
