"""The report's data: one JSON-ready dict built from the study storage alone.

Everything is read from the study (trials, their attrs, the study attrs and the racing
record; the names in autotune.record.schema), so the report at the end of a run and
`autotune report` later are the same. The dict's keys are the contract in
docs/DESIGN.md ("The report JSON"); every renderer reads only this dict.

The best settings are the racing's recommendation when there was a race (autotune.racing.verdict:
the cheapest configuration tied with the fastest and bounded within the precision; mean
and 95% CI over its rounds), with the configurations tied with the fastest and each
baseline's speed-up as a paired ratio, its 95% interval and whether it is significant
(a baseline that is the recommended configuration is marked `is_recommended` instead).
Without a race the best feasible trial is reported (no CI) and no speed-up is claimed.
When the study searched `instances`, the report also states the best's CPU sets and
memory, one `docker run` per instance, and its speed-up over the best single-instance
configuration, raced with the finalists (autotune.racing.race.SINGLE_INSTANCE).
A right-sizing study (`--target-qps`) recommends the smallest CPU limit that held the
rate, unraced, with the table of limits (autotune.report.deployment); every study states
the limits its servers ran under and how much their quota throttled the best.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.launch.docker import container_env, docker_run_command
from autotune.launch.settings import DeployLimits
from autotune.modes import speedup
from autotune.paths import DEFAULT_REPORT_DIR, MODEL_NAME
from autotune.racing.record import SINGLE_INSTANCE, RaceRecord, stored_race
from autotune.racing.verdict import Verdict, decide
from autotune.record.schema import (
    STUDY_ATTRS_BEFORE_RECORDED,
    StudyAttr,
    TrialAttr,
    best_feasible_trial,
    best_single_instance_trial,
    instances_of,
    is_duplicate,
    is_feasible,
    ranked,
    searched_instances,
)
from autotune.record.target import right_sized_trial
from autotune.report.deployment import deployed_settings, right_sizing, throttling_warning
from autotune.report.gate import GATE_COLUMNS
from autotune.report.host_load import load_summary
from autotune.report.importance import param_importances
from autotune.report.server_files import batching_file
from autotune.report.warm_start import warm_start_summary
from autotune.search.space import settings_from_params
from autotune.stats import geometric_mean_and_ci95

#: trial attrs of a server-mode trial the report carries: the rates tried, LoadGen's logs
SERVER_TRIAL_ATTRS = (TrialAttr.RATES_TRIED, TrialAttr.LOADGEN_LOGS)
#: the recommendation when nothing was raced
UNRACED = "The best single measurement of the search (no racing): no speed-up is claimed."


def _is_recommended() -> dict[str, Any]:
    """The speed-up entry of a baseline whose configuration is the recommended one."""
    return {"ratio": 1.0, "ci95": None, "significant": False, "is_recommended": True}


def build_report(study: optuna.Study, report_dir: Path = DEFAULT_REPORT_DIR) -> dict[str, Any]:
    """The report of `study` as the JSON-ready dict docs/DESIGN.md fixes (files it names
    are under `report_dir`)."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    record = stored_race(study.user_attrs)
    verdict = decide(record) if record is not None else None
    target = study.user_attrs.get(StudyAttr.TARGET_QPS)
    best = _best(study, verdict, complete if target is not None else None)
    baselines = _baselines(study, complete, record)
    setup = _setup(study)
    setup["host"] = {**(setup["host"] or {}), "load": load_summary(complete, record)}
    report = {**setup, "best": best, "recommendation": None, "tied": [], "not_raced": [],
              "baselines": baselines, "speedup": {}, "racing": _racing(record),
              "trials": _counts(trials, complete), "importances": param_importances(study),
              "measurement": _measurement(study, complete), "throttling_warning": None}
    report["warm_start"] = warm_start_summary(study, complete, best and best["trial"])
    if target is not None:
        report["right_sizing"] = right_sizing(complete, target, best)
    if best is None:
        return report
    single = _best_single_instance(study, complete, record)
    if verdict is not None:
        report.update(_raced_claims(verdict, baselines, single))
    else:
        report.update(_unraced_claims(report["objective"]["direction"], best, baselines, single))
    if single is not None:
        report["single_instance"] = single
    deployed = deployed_settings(best["params"], DeployLimits.from_dict(report["limits"]))
    best.update(cpus=deployed.cpus, memory_mb=deployed.memory_mb)
    report["throttling_warning"] = throttling_warning(best)
    best["docker_run"] = docker_run_command(
        deployed, report["model_dir"] or "<model_dir>",
        report["image"] or "<image>", model_name=report["model_name"],
        batching_file=batching_file(report_dir, study.study_name), protocol=report["protocol"],
        cpusets=best["cpusets"], cpuset_mems=best["cpuset_mems"])
    return report


def _setup(study: optuna.Study) -> dict[str, Any]:
    """What the study was: its mode, objective, host, server, image, model and floors."""
    attrs = study.user_attrs
    setup = {
        "study": study.study_name,
        "mode": attrs.get(StudyAttr.MODE),
        "objective": {"metric": (study.metric_names or ["value"])[0],
                      "statistic": attrs.get(StudyAttr.OBJECTIVE),
                      "direction": study.direction.name.lower()},
        "host": attrs.get(StudyAttr.HOST),
        "server": attrs.get(StudyAttr.SERVER),
        "protocol": attrs.get(StudyAttr.PROTOCOL, STUDY_ATTRS_BEFORE_RECORDED[StudyAttr.PROTOCOL]),
        "image": attrs.get(StudyAttr.IMAGE),
        "model_dir": attrs.get(StudyAttr.MODEL_DIR),
        "model_name": _model_name(study),
        "requests": attrs.get(StudyAttr.REQUESTS),
        "exposure": attrs.get(StudyAttr.EXPOSURE),
        "limits": DeployLimits.from_dict(attrs.get(StudyAttr.LIMITS)).as_dict(),
        "floors": {"min_hr": attrs.get(StudyAttr.MIN_HR),
                   "min_ndcg": attrs.get(StudyAttr.MIN_NDCG),
                   "rtol": attrs.get(StudyAttr.RTOL), "atol": attrs.get(StudyAttr.ATOL),
                   "reference": attrs.get(StudyAttr.REFERENCE),
                   "max_memory_mb": attrs.get(StudyAttr.MAX_MEMORY_MB)},
    }
    if StudyAttr.P99_MS in attrs:
        setup["p99_ms"] = attrs[StudyAttr.P99_MS]
    return setup


def _counts(trials: list[FrozenTrial], complete: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state name, their total and how many complete ones were infeasible; the
    suggestions skipped as repeats of measured configurations are counted apart
    (`skipped`), not as failures or in the total."""
    measured = [t for t in trials if not is_duplicate(t)]
    counts = {state.name: sum(t.state == state for t in measured) for state in TrialState
              if any(t.state == state for t in measured)}
    skipped = len(trials) - len(measured)
    return {**counts, "total": len(measured),
            "infeasible": sum(not is_feasible(t) for t in complete),
            **({"skipped": skipped} if skipped else {})}


def _measurement(study: optuna.Study, complete: list[FrozenTrial]) -> dict[str, Any]:
    """The trials' precision target and the trials whose measurement stopped at a cap."""
    return {"precision": study.user_attrs.get(StudyAttr.PRECISION), "capped": [
        {"trial": t.number, "precision": t.user_attrs.get(TrialAttr.PRECISION)}
        for t in complete if t.user_attrs.get(TrialAttr.CONVERGED) is False]}


def _raced_claims(verdict: Verdict, baselines: dict[str, Any],
                  single: dict[str, Any] | None) -> dict[str, Any]:
    """What the race lets the report say: the recommendation, the configurations tied with
    the fastest and each baseline's paired speed-up (and the best single instance's)."""
    speedups = {name: verdict.speedups[name].as_dict() for name in baselines
                if name in verdict.speedups}
    speedups.update({name: _is_recommended() for name in verdict.recommended.baselines
                     if name in baselines})
    if single is not None:
        single["speedup_of_best"] = (
            _is_recommended() if SINGLE_INSTANCE in verdict.recommended.baselines
            else verdict.speedups[SINGLE_INSTANCE].as_dict()
            if SINGLE_INSTANCE in verdict.speedups else _no_claim())
    return {"recommendation": verdict.sentence, "speedup": speedups,
            "tied": [{"trial": f.trial, "params": f.params, **_raced(f.measured),
                      "fastest_vs_it": ratio.as_dict()} for f, ratio in verdict.tied],
            "not_raced": [{"trial": f.trial, "params": f.params, **_raced(f.measured)}
                          for f in verdict.not_raced]}


def _unraced_claims(direction: str, best: dict[str, Any], baselines: dict[str, Any],
                    single: dict[str, Any] | None) -> dict[str, Any]:
    """Without a race: the search values' ratios, never significant."""
    if single is not None:
        single["speedup_of_best"] = _unraced(direction, best["search_value"],
                                             single["search_value"])
    return {"recommendation": UNRACED,
            "speedup": {name: _unraced(direction, best["search_value"],
                                       baseline["search_value"])
                        for name, baseline in baselines.items()}}


def _unraced(direction: str, value: float | None, other: float | None) -> dict[str, Any]:
    """A speed-up from single search measurements (or none): no interval, never significant."""
    if value is None or other is None:
        return _no_claim()
    return {"ratio": speedup(direction, value, other), "ci95": None, "significant": False}


def _no_claim() -> dict[str, Any]:
    """The speed-up entry where nothing was measured to compare."""
    return {"ratio": None, "ci95": None, "significant": False}


def _raced(values: list[float]) -> dict[str, Any]:
    """`value` (the geometric mean), `ci95` (on the log scale, None below three rounds)
    and `rounds` of raced measurements, `source` racing."""
    if not values:
        return {"value": None, "ci95": None, "rounds": 0, "source": "racing"}
    mean, ci = geometric_mean_and_ci95(values)
    return {"value": mean, "ci95": list(ci) if ci else None, "rounds": len(values),
            "source": "racing"}


def _searched(trial: FrozenTrial) -> dict[str, Any]:
    """A search trial's single measurement: its value, no interval."""
    return {"value": trial.value, "ci95": None, "rounds": 1, "source": "search"}


def _best_single_instance(study: optuna.Study, complete: list[FrozenTrial],
                          record: RaceRecord | None) -> dict[str, Any] | None:
    """The best single-instance configuration, when the study searched `instances` at all:
    the one raced as `SINGLE_INSTANCE` (its raced mean), else the best feasible search trial."""
    if not searched_instances(complete):
        return None
    raced = next((f for f in (record.finalists if record else [])
                  if SINGLE_INSTANCE in f.baselines), None)
    if raced is not None:
        trial = study.trials[raced.trial]
        measured = _raced(raced.measured) if raced.measured else _searched(trial)
    else:
        trial = best_single_instance_trial(study)
        if trial is None:
            return None
        measured = _searched(trial)
    return {"trial": trial.number, "params": dict(trial.params), "search_value": trial.value,
            **measured}


def _best(study: optuna.Study, verdict: Verdict | None,
          right_sized: list[FrozenTrial] | None = None) -> dict[str, Any] | None:
    """The recommendation of the racing, else the best feasible search trial (no CI); when
    right-sizing (`right_sized`: the complete trials), the smallest CPU limit that held
    the target (autotune.record.target)."""
    search_best = (best_feasible_trial(study) if right_sized is None
                   else right_sized_trial(right_sized))
    if search_best is None:
        return None
    if verdict is not None and right_sized is None:
        trial = study.trials[verdict.recommended.trial]
        measured = _raced(verdict.recommended.measured)
    else:
        trial = search_best
        measured = _searched(trial)
    return {"trial": trial.number, "params": dict(trial.params),
            "env": _server_env(study, trial.params), **measured, "search_value": trial.value,
            # the gate's: HR/NDCG (NCF), or the deviations from the reference (null if not)
            **{key: trial.user_attrs.get(key) for key, _, _ in GATE_COLUMNS},
            "baseline": trial.user_attrs.get(TrialAttr.BASELINE),
            "instances": instances_of(trial.params),
            "cpusets": trial.user_attrs.get(TrialAttr.CPUSETS),
            "cpuset_mems": trial.user_attrs.get(TrialAttr.CPUSET_MEMS),
            "rss_mb": trial.user_attrs.get(TrialAttr.RSS_MB),
            "throttled_ratio": trial.user_attrs.get(TrialAttr.THROTTLED_RATIO),
            "throttled_s": trial.user_attrs.get(TrialAttr.THROTTLED_S), **_server_attrs(trial)}


def _baselines(study: optuna.Study, complete: list[FrozenTrial],
               record: RaceRecord | None) -> dict[str, dict[str, Any]]:
    """Each baseline's best search measurement (the one raced), and its raced mean."""
    raced = {name: f for f in (record.finalists if record else []) for name in f.baselines}
    baselines: dict[str, dict[str, Any]] = {}
    for trial in ranked(study, complete):
        name = trial.user_attrs.get(TrialAttr.BASELINE)
        if name and name not in baselines:
            finalist = raced.get(name)
            measured = (_raced(finalist.measured) if finalist is not None and finalist.measured
                        else _searched(trial))
            baselines[name] = {"trial": trial.number, "params": dict(trial.params),
                               "env": _server_env(study, trial.params),
                               "feasible": is_feasible(trial),
                               "search_value": trial.value, **measured,
                               "throttled_ratio": trial.user_attrs.get(TrialAttr.THROTTLED_RATIO),
                               **_server_attrs(trial)}
    return baselines


def _racing(record: RaceRecord | None) -> dict[str, Any] | None:
    """The racing record: rounds, why it stopped, who was dropped when and why, every value."""
    if record is None:
        return None
    dropped = [{"trial": f.trial, "params": f.params, "round": f.dropped_round,
                "reason": f.dropped_reason} for f in record.finalists if not f.alive]
    return {**record.to_dict(), "hosts": record.hosts, "dropped": dropped}


def _server_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """Server mode: the rates the trial tried and where its LoadGen logs are."""
    return {key: trial.user_attrs[key] for key in SERVER_TRIAL_ATTRS if key in trial.user_attrs}


def _model_name(study: optuna.Study) -> str:
    """The served model's name: its folder's for a model measured from records, else the
    NCF model's (studies before the attr were all NCF's)."""
    return study.user_attrs.get(StudyAttr.MODEL_NAME, MODEL_NAME)


def _server_env(study: optuna.Study, params: dict[str, Any]) -> dict[str, str]:
    return container_env(settings_from_params(params), _model_name(study))
