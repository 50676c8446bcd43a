"""The HTML report: `<report-dir>/<study>.html`, the study in pictures, readable offline.

One self-contained page (plotly.js is inlined, nothing is fetched to view it) with:

- the report's Markdown summary (best settings, baselines, importances);
- the optimisation history (Optuna's plot; infeasible trials grey) with each baseline's
  search measurement as a reference line;
- the parameter importances (Optuna's plot, the evaluator of autotune.report.importance);
- one slice plot per searched knob (Optuna's plot; infeasible trials grey);
- the racing's measurements of each finalist, every round and the mean with its 95%
  interval;
- the latency distribution (online: the stored percentiles as a cumulative curve) or
  the throughput of each request (batch) of the best trial against the tutorial's;
- how busy the host was while each trial measured (other processes' CPU and steal).

Built from the study and the report dict (autotune.report.data.build_report), so the file
written at the end of a run and by `autotune report` later are the same.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
from markdown_it import MarkdownIt
from plotly.offline import get_plotlyjs

from autotune.modes import metric_unit
from autotune.options import BUSY_SHARE
from autotune.record.schema import TrialAttr, complete_trials
from autotune.report.files import HTML, report_file
from autotune.report.importance import importance_evaluator, param_importances
from autotune.report.markdown import render_markdown
from autotune.search.space import PARAM_LABELS
from autotune.stats import geometric_mean_and_ci95

#: grey of infeasible trials, the same as Optuna's plots use
INFEASIBLE_COLOR = "#cccccc"
TUTORIAL = "tutorial"
SLICE_HEIGHT = 320
#: the importance plot grows by one bar's height per parameter
BAR_HEIGHT_BASE, BAR_HEIGHT = 120, 50
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; }
pre { background: #f4f4f4; padding: 8px; overflow-x: auto; }
section { margin-top: 2em; } .caption { color: #555; }
"""
#: a section's title, caption and figure (None: the study has nothing to draw there)
Plot = tuple[str, str, "go.Figure | None"]


def write_html_report(study: optuna.Study, report: dict[str, Any], report_dir: Path) -> Path:
    """Write `<report_dir>/<study>.html`; its path."""
    path = report_file(report_dir, report["study"], HTML)
    path.write_text(render_html(study, report))
    return path


def render_html(study: optuna.Study, report: dict[str, Any]) -> str:
    """The whole page: summary, then one section per plot that the study can fill."""
    metric = report["objective"]["metric"]
    sections = [_section(title, caption, figure) for title, caption, figure in (
        _history(study, report, metric), _importances(study, metric),
        *_slices(study, metric), _finalists(report, metric), _distribution(study, report),
        _host_load(study))
        if figure is not None]
    # no raw HTML: study and host names are text, whatever they contain
    summary = MarkdownIt("commonmark", {"html": False}).enable("table").render(
        render_markdown(report))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>autotune: {html.escape(report['study'])}</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>\n"
            f"<body>\n{summary}\n{''.join(sections)}</body></html>\n")


def _section(title: str, caption: str, figure: go.Figure) -> str:
    figure.update_layout(title=None, margin={"t": 30}, template="plotly_white")
    plot = figure.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)
    return (f"<section><h2>{html.escape(title)}</h2><p class=\"caption\">{html.escape(caption)}"
            f"</p>\n{plot}</section>\n")


def _axis_title(metric: str) -> str:
    unit = metric_unit(metric)
    return f"{metric} ({unit})" if unit else metric


def _history(study: optuna.Study, report: dict[str, Any], metric: str) -> Plot:
    caption = ("Every measured trial in order, the best feasible so far as a line; grey "
               "points missed an accuracy floor. Dashed: each baseline's search measurement.")
    if not complete_trials(study):
        return "Optimisation history", caption, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure = optuna.visualization.plot_optimization_history(study, target_name=metric)
    for name, baseline in report["baselines"].items():
        figure.add_hline(y=baseline["search_value"], line_dash="dash", line_color="#888",
                         annotation_text=f"{name} (trial {baseline['trial']})",
                         annotation_position="top left")
    figure.update_yaxes(title=_axis_title(metric))
    return "Optimisation history", caption, figure


def _importances(study: optuna.Study, metric: str) -> Plot:
    caption = ("Which knob matters on this host: how much the best trials agree on it "
               "(Optuna's PED-ANOVA; the importances sum to 1).")
    if not param_importances(study):
        return "Parameter importances", caption, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure = optuna.visualization.plot_param_importances(
            study, evaluator=importance_evaluator(len(complete_trials(study))), target_name=metric)
    figure.update_layout(height=BAR_HEIGHT_BASE + BAR_HEIGHT * len(figure.data[0].y))
    return "Parameter importances", caption, figure


def _slices(study: optuna.Study, metric: str) -> list[Plot]:
    complete = complete_trials(study)
    names = sorted({name for trial in complete for name in trial.params},
                   key=lambda name: (name not in PARAM_LABELS, list(PARAM_LABELS).index(name)
                                     if name in PARAM_LABELS else name))
    plots = []
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            figure = optuna.visualization.plot_slice(study, params=[name], target_name=metric)
        figure.update_yaxes(title=_axis_title(metric))
        figure.update_layout(height=SLICE_HEIGHT)
        plots.append((f"Slice: {name}", f"The objective of every trial against {name}; "
                      "colour is the trial number, grey points missed an accuracy floor.",
                      figure))
    return plots


def _finalists(report: dict[str, Any], metric: str) -> Plot:
    racing = report.get("racing") or {}
    finalists = [f for f in racing.get("finalists", []) if any(v is not None for v in f["values"])]
    caption = ("The finalists raced after the search, a fresh server each round: every round "
               "(dots) and the geometric mean with its 95% interval (bar; none below three "
               "rounds); a dropped finalist says after which round.")
    if not finalists:
        return "Racing", caption, None
    figure = go.Figure()
    for finalist in finalists:
        values = [value for value in finalist["values"] if value is not None]
        names = f" ({', '.join(finalist['baselines'])})" if finalist["baselines"] else ""
        label = (f"trial {finalist['trial']}{names}"
                 + ("" if finalist["feasible"] else " infeasible")
                 + (f", dropped after {finalist['dropped_round']}"
                    if finalist["dropped_round"] is not None else ""))
        color = None if finalist["feasible"] else INFEASIBLE_COLOR
        mean, ci = geometric_mean_and_ci95(values)
        figure.add_scatter(x=[label] * len(values), y=values, mode="markers",
                           name=f"{label}: rounds", marker={"opacity": 0.5, "color": color},
                           showlegend=False)
        error = None if ci is None else {"type": "data", "symmetric": False,
                                         "array": [ci[1] - mean], "arrayminus": [mean - ci[0]]}
        figure.add_scatter(x=[label], y=[mean], mode="markers", name=f"{label}: mean",
                           marker={"symbol": "line-ew-open", "size": 24, "color": color},
                           error_y=error, showlegend=False)
    figure.update_yaxes(title=_axis_title(metric))
    return "Racing", caption, figure


def _host_load(study: optuna.Study) -> Plot:
    """What else ran while each trial measured: other processes' CPU and steal, per trial."""
    trials = [t for t in complete_trials(study) if TrialAttr.FOREIGN_CPU in t.user_attrs]
    caption = ("How busy the host was while each trial measured: the CPU other processes "
               "took, and the time the hypervisor stole, as shares of the CPU the tuner may "
               f"use. Above {BUSY_SHARE:.0%} the measurement is of a busy host.")
    if not trials:
        return "How busy the host was", caption, None
    figure = go.Figure()
    numbers = [t.number for t in trials]
    for attr, name in ((TrialAttr.FOREIGN_CPU, "other processes"), (TrialAttr.STEAL, "steal")):
        figure.add_bar(x=numbers, y=[t.user_attrs.get(attr, 0.0) for t in trials], name=name)
    figure.add_hline(y=BUSY_SHARE, line_dash="dot", line_color="#999")
    figure.update_layout(barmode="stack")
    figure.update_xaxes(title="trial")
    figure.update_yaxes(title="share of the CPU", tickformat=".0%")
    return "How busy the host was", caption, figure


def _distribution(study: optuna.Study, report: dict[str, Any]) -> Plot:
    """The best trial against the tutorial's, request by request."""
    best = report["best"]
    tutorial = report["baselines"].get(TUTORIAL)
    trials = {f"best (trial {best['trial']})": best["trial"]} if best else {}
    if tutorial and (not best or tutorial["trial"] != best["trial"]):
        trials[f"tutorial (trial {tutorial['trial']})"] = tutorial["trial"]
    attrs = {label: study.trials[number].user_attrs for label, number in trials.items()}
    # latency percentiles are stored by batch-1 (online) trials, request throughputs by
    # batch ones; a server-mode trial has neither
    percentiles = {label: a["latency_ms_percentiles"] for label, a in attrs.items()
                   if a.get("latency_ms_percentiles")}
    if percentiles:
        return _latency_curves(percentiles)
    return _request_throughputs({label: a["request_sps"] for label, a in attrs.items()
                                 if a.get("request_sps")})


def _latency_curves(percentiles: dict[str, list[float]]) -> Plot:
    caption = ("The batch-1 latency of every measured request of the best "
               "trial and of the tutorial's settings, as the share of requests at most that slow.")
    if not percentiles:
        return "Latency distribution", caption, None
    figure = go.Figure()
    for label, values in percentiles.items():
        figure.add_scatter(x=values, y=list(range(len(values))), mode="lines", name=label)
    figure.update_xaxes(title="latency (ms)")
    figure.update_yaxes(title="requests at most this slow (%)")
    return "Latency distribution", caption, figure


def _request_throughputs(per_request: dict[str, list[float]]) -> Plot:
    caption = ("The throughput of each measured request of the best trial and of the "
               "tutorial's settings.")
    if not per_request:
        return "Throughput per request", caption, None
    figure = go.Figure()
    for label, values in per_request.items():
        figure.add_box(y=values, name=label, boxpoints="all", jitter=0.4, pointpos=0)
    figure.update_yaxes(title="throughput (samples/s)")
    return "Throughput per request", caption, figure
