"""The result of a study: the best feasible settings, how sure we are, and how to run them.

Everything here is read from the study storage (trials, their attrs, the study attrs
and the confirmation round), so the report at the end of a run and `autotune report`
later are the same. It is printed as rich tables and written as
`<report-dir>/<study>.json` (the contract in DESIGN.md), `.md` (also saved as the
study's optuna-dashboard note) and `.env` (for `docker run --env-file`); server mode
adds the batching parameters file and LoadGen's logs (autotune.server_report).

The best settings come from the confirmation round when there was one (mean and 95%
CI over its rounds), else from the best feasible trial (no CI). Speed-ups compare like
with like: confirmed means when both sides were confirmed, else search values.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from autotune.errors import NoFeasibleTrialError, UsageError
from autotune.importance import param_importances
from autotune.paths import DEFAULT_REPORT_DIR, MODEL_NAME
from autotune.server_report import (
    batching_file,
    docker_batching_words,
    keep_best_logs,
    loadgen_log_root,
    rate_table,
)
from autotune.space import PARAM_LABELS, settings_from_params

#: the study user attr where autotune.confirm stores the confirmation round
CONFIRMATION_ATTR = "confirmation"
TABLE_ROWS = 10
UNITS = {"latency_ms": "ms", "throughput_sps": "samples/s", "qps_at_slo": "requests/s"}


def format_number(metric: str, value: float) -> str:
    """`1.234` (ms) or `1,234,567` (samples/s, requests/s)."""
    return f"{value:.3f}" if metric == "latency_ms" else f"{value:,.0f}"


def format_objective(metric: str, value: float) -> str:
    """`1.234 ms` or `1,234,567 samples/s`."""
    return f"{format_number(metric, value)} {UNITS.get(metric, '')}".rstrip()


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether the trial met every accuracy floor (Optuna: all constraints <= 0)."""
    return all(value <= 0 for value in trial.constraints.values())


def _better(study: optuna.Study, a: float, b: float) -> bool:
    return a < b if study.direction == optuna.study.StudyDirection.MINIMIZE else a > b


def speedup(direction: str, best: float, baseline: float) -> float:
    """How many times better `best` is than `baseline` (> 1 = better)."""
    return baseline / best if direction == "minimize" else best / baseline


def server_env(params: dict[str, Any]) -> dict[str, str]:
    """The container environment for these params, model name included."""
    return {"MODEL_NAME": MODEL_NAME, **settings_from_params(params).env()}


def docker_run_command(params: dict[str, Any], model_dir: str, image: str,
                       batching_path: Path = Path("batching_parameters.txt")) -> str:
    """A ready `docker run` for the settings, in the tutorial's style; with batching on,
    the batching parameters file at `batching_path` is mounted and named by TF Serving's flags."""
    settings = settings_from_params(params)
    mount, server_args = docker_batching_words(batching_path, settings.batching)
    words = ["docker", "run", "-d", "-p", "8500:8500", "-v", f"{model_dir}:/models/{MODEL_NAME}",
             *mount]
    for name, value in server_env(params).items():
        words += ["-e", f"{name}={value}"]
    if settings.cpuset:
        words.append(f"--cpuset-cpus={settings.cpuset}")
    words += [image, *server_args]
    return shlex.join(words)


def build_report(study: optuna.Study, report_dir: Path = DEFAULT_REPORT_DIR) -> dict[str, Any]:
    """The report of `study` as the JSON-ready dict DESIGN.md fixes (files it names are
    under `report_dir`)."""
    attrs = study.user_attrs
    direction = study.direction.name.lower()
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    confirmed = attrs.get(CONFIRMATION_ATTR, {}).get("configs", [])
    confirmed_by_params = {params_key(config["params"]): config for config in confirmed
                           if config["mean"] is not None}

    best = _best(study, complete, confirmed_by_params)
    baselines = _baselines(study, complete, confirmed_by_params)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState
              if any(t.state == state for t in trials)}
    report: dict[str, Any] = {
        "study": study.study_name,
        "mode": attrs.get("mode"),
        "objective": {"metric": (study.metric_names or ["value"])[0],
                      "statistic": attrs.get("objective"), "direction": direction},
        "host": attrs.get("host"),
        "server": attrs.get("server"),
        "image": attrs.get("image"),
        "model_dir": attrs.get("model_dir"),
        "exposure": attrs.get("exposure"),
        "floors": {"min_hr": attrs.get("min_hr"), "min_ndcg": attrs.get("min_ndcg")},
        "best": best,
        "baselines": baselines,
        "speedup": {},
        "trials": {**counts, "total": len(trials),
                   "infeasible": sum(not is_feasible(t) for t in complete)},
        "confirmation_rounds": attrs.get(CONFIRMATION_ATTR, {}).get("rounds", 0),
        "importances": param_importances(study),
    }
    if "p99_ms" in attrs:
        report["p99_ms"] = attrs["p99_ms"]
    if best is not None:
        for name, baseline in baselines.items():
            same_source = best["source"] == baseline["source"]
            value = baseline["value"] if same_source else baseline["search_value"]
            best_value = best["value"] if same_source else best["search_value"]
            report["speedup"][name] = speedup(direction, best_value, value)
        report["best"]["docker_run"] = docker_run_command(
            best["params"], attrs.get("model_dir", "<model_dir>"), attrs.get("image", "<image>"),
            batching_file(report_dir, study.study_name))
    return report


def params_key(params: Mapping[str, Any]) -> tuple:
    """A hashable key of a configuration, the same whatever the params' order."""
    return tuple(sorted(params.items()))


def _best(study: optuna.Study, complete: list[FrozenTrial],
          confirmed: dict[tuple, dict[str, Any]]) -> dict[str, Any] | None:
    feasible = [t for t in complete if is_feasible(t)]
    if not feasible:
        return None
    search_best = study.best_trial
    candidates = [c for c in confirmed.values() if c["feasible"]]
    if candidates:
        winner = candidates[0]
        for candidate in candidates[1:]:
            if _better(study, candidate["mean"], winner["mean"]):
                winner = candidate
        trial = study.trials[winner["trial"]]
        value, ci, source = winner["mean"], winner["ci95"], "confirmation"
    else:
        trial, value, ci, source = search_best, search_best.value, None, "search"
    return {"trial": trial.number, "params": dict(trial.params), "env": server_env(trial.params),
            "value": value, "ci95": ci, "source": source, "search_value": trial.value,
            "hr": trial.user_attrs.get("hr"), "ndcg": trial.user_attrs.get("ndcg"),
            "baseline": trial.user_attrs.get("baseline"), **_server_attrs(trial)}


def _baselines(study: optuna.Study, complete: list[FrozenTrial],
               confirmed: dict[tuple, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each baseline's best search measurement, and its confirmed mean when there is one."""
    chosen: dict[str, FrozenTrial] = {}
    for trial in complete:
        name = trial.user_attrs.get("baseline")
        if name and (name not in chosen or _better(study, trial.value, chosen[name].value)):
            chosen[name] = trial
    baselines = {}
    for name, trial in chosen.items():
        config = confirmed.get(params_key(trial.params))
        baselines[name] = {
            "trial": trial.number, "params": dict(trial.params), "env": server_env(trial.params),
            "feasible": is_feasible(trial), "search_value": trial.value,
            "value": config["mean"] if config else trial.value,
            "ci95": config["ci95"] if config else None,
            "source": "confirmation" if config else "search",
            **_server_attrs(trial),
        }
    return baselines


def _server_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """Server mode: the rates the trial tried and where its LoadGen logs are."""
    return {key: trial.user_attrs[key] for key in ("rates_tried", "loadgen_logs")
            if key in trial.user_attrs}


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the `.md` file, the dashboard note and the printed summary."""
    metric = report["objective"]["metric"]
    host = report["host"] or {}
    lines = [f"# autotune: {report['study']}", "",
             f"Mode **{report['mode']}** ({metric}, {report['objective']['statistic']}, "
             f"{report['objective']['direction']}), server {report['server']}, host "
             f"{host.get('hostname')} ({host.get('cpu_model')}, {host.get('physical_cores')} "
             "physical cores).", ""]
    if report.get("exposure"):
        lines += [f"**Exposure**: {report['exposure']}.", ""]
    best = report["best"]
    if best is None:
        lines += ["**No feasible trial**: none met the accuracy floors (HR@10 >= "
                  f"{report['floors']['min_hr']}, NDCG@10 >= {report['floors']['min_ndcg']}).", ""]
    else:
        ci = best["ci95"]
        interval = (f" (95% CI {format_objective(metric, ci[0])} to "
                    f"{format_objective(metric, ci[1])})" if ci else "")
        lines += ["## Best settings", "",
                  f"Trial {best['trial']}: **{format_objective(metric, best['value'])}**"
                  f"{interval}, "
                  f"from the {best['source']}; HR@10 {best['hr']:.4f}, NDCG@10 {best['ndcg']:.4f}.",
                  "", "| setting | value |", "|---|---|",
                  *[f"| {name} | {value} |" for name, value in best["params"].items()], "",
                  "```", best["docker_run"], "```", ""]
    if report["baselines"]:
        lines += ["## Baselines", "", "| baseline | objective | speed-up of best |",
                  "|---|---|---|"]
        for name, baseline in report["baselines"].items():
            ratio = report["speedup"].get(name)
            lines.append(f"| {name} | {format_objective(metric, baseline['value'])} | "
                         f"{f'{ratio:.2f}x' if ratio is not None else '-'} |")
        lines.append("")
    rated = [(f"{name} (trial {entry['trial']})", entry) for name, entry in
             [("best", best), *report["baselines"].items()] if entry and entry.get("rates_tried")]
    if rated:
        lines += ["## Latency vs rate", ""]
        for name, entry in rated:
            lines += rate_table(name, entry["rates_tried"], report.get("p99_ms"))
    if report.get("importances"):
        lines += ["## Which knob matters", "", "| setting | importance |", "|---|---|",
                  *[f"| {name} | {value:.2f} |" for name, value in report["importances"].items()],
                  "", "PED-ANOVA importances (sum 1): how much the best trials agree on each.", ""]
    counts = ", ".join(f"{state.lower()} {count}" for state, count in report["trials"].items())
    lines += [f"Trials: {counts}.", ""]
    return "\n".join(lines)


def env_file_text(report: dict[str, Any]) -> str:
    """`KEY=value` lines of the best settings, for `docker run --env-file`."""
    return "".join(f"{name}={value}\n" for name, value in report["best"]["env"].items())


def write_report_files(report: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write `<study>.json`, `.md` and (when there is a best) `.env`; the paths written."""
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = report_dir / report["study"]
    files = {stem.with_suffix(".json"): json.dumps(report, indent=2) + "\n",
             stem.with_suffix(".md"): render_markdown(report)}
    if report["best"] is not None:
        files[stem.with_suffix(".env")] = env_file_text(report)
        batching = settings_from_params(report["best"]["params"]).batching
        if batching is not None:
            files[batching_file(report_dir, report["study"])] = batching.to_text()
    for path, text in files.items():
        path.write_text(text)
    return list(files)


def print_report(study: optuna.Study, report: dict[str, Any], console: Console) -> None:
    """The best trials as a table (infeasible ones dimmed), then the Markdown summary."""
    console.print(_trials_table(study, report))
    console.print(Markdown(render_markdown(report)))


def _trials_table(study: optuna.Study, report: dict[str, Any]) -> Table:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(complete, key=lambda t: (not is_feasible(t), -t.value if reverse else t.value))
    params = list(dict.fromkeys(name for trial in ranked for name in trial.params))
    metric = report["objective"]["metric"]
    table = Table(title=f"{report['study']}: best trials")
    objective_column = f"{metric.split('_')[0]} ({UNITS.get(metric, '')})"
    for column in ["trial", *[PARAM_LABELS.get(p, p) for p in params], objective_column,
                   "HR@10", "NDCG@10", "baseline"]:
        table.add_column(column)
    for trial in ranked[:TABLE_ROWS]:
        table.add_row(str(trial.number), *[str(trial.params.get(p, "-")) for p in params],
                      format_number(metric, trial.value),
                      f"{trial.user_attrs.get('hr', float('nan')):.4f}",
                      f"{trial.user_attrs.get('ndcg', float('nan')):.4f}",
                      trial.user_attrs.get("baseline", ""),
                      style=None if is_feasible(trial) else "dim")
    return table


def publish_report(study: optuna.Study, report_dir: Path, quiet: bool = False) -> dict[str, Any]:
    """Build the report, write its files (and the HTML), save it as the dashboard note, print it."""
    from optuna_dashboard import save_note

    from autotune.html_report import write_html_report

    report = build_report(study, report_dir)
    paths = write_report_files(report, report_dir)
    paths.append(write_html_report(study, report, report_dir))
    if report["mode"] == "server":
        keep_best_logs(loadgen_log_root(report_dir, study.study_name),
                       (report["best"] or {}).get("loadgen_logs"))
    save_note(study, render_markdown(report))
    console = Console()
    if not quiet:
        print_report(study, report, console)
    console.print(f"Report: {', '.join(str(path) for path in paths)}", highlight=False)
    return report


def print_stored_report(storage: str, study_name: str | None, report_dir: Path) -> int:
    """`autotune report`: the report of a stored study (the only one when unnamed)."""
    from autotune.storage import mask_password, open_storage

    opened = open_storage(storage, create=False)
    shown = mask_password(storage)
    names = optuna.study.get_all_study_names(storage=opened)
    if study_name is None:
        if len(names) != 1:
            raise UsageError(f"storage {shown} holds {len(names)} studies "
                             f"({', '.join(names) or 'none'}); name one with --study-name")
        study_name = names[0]
    elif study_name not in names:
        raise UsageError(f"no study {study_name!r} in {shown}; "
                         f"it has: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=opened)
    report = publish_report(study, report_dir)
    if report["best"] is None:
        raise NoFeasibleTrialError(f"study {study_name!r} has no feasible trial")
    return 0
