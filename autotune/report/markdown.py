"""The report as text: Markdown (the `.md` file, the dashboard note, the printed summary)
and the `.env` file of the best settings (for `docker run --env-file`)."""

from __future__ import annotations

from typing import Any, Sequence

from autotune.metrics import HR_LABEL, NDCG_LABEL
from autotune.modes import format_metric
from autotune.schema import TrialAttr


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
        lines += ["**No feasible trial**: none met the accuracy floors "
                  f"({HR_LABEL} >= {report['floors']['min_hr']}, "
                  f"{NDCG_LABEL} >= {report['floors']['min_ndcg']}).", ""]
    else:
        ci = best["ci95"]
        interval = (f" (95% CI {format_metric(metric, ci[0])} to "
                    f"{format_metric(metric, ci[1])})" if ci else "")
        lines += ["## Best settings", "",
                  f"Trial {best['trial']}: **{format_metric(metric, best['value'])}**"
                  f"{interval}, "
                  f"from the {best['source']}; {HR_LABEL} {best['hr']:.4f}, "
                  f"{NDCG_LABEL} {best['ndcg']:.4f}.",
                  "", "| setting | value |", "|---|---|",
                  *[f"| {name} | {value} |" for name, value in best["params"].items()], "",
                  "```", best["docker_run"], "```", ""]
    if report["baselines"]:
        lines += ["## Baselines", "", "| baseline | objective | speed-up of best |",
                  "|---|---|---|"]
        for name, baseline in report["baselines"].items():
            ratio = report["speedup"].get(name)
            lines.append(f"| {name} | {format_metric(metric, baseline['value'])} | "
                         f"{f'{ratio:.2f}x' if ratio is not None else '-'} |")
        lines.append("")
    rated = [(f"{name} (trial {entry['trial']})", entry)
             for name, entry in [("best", best), *report["baselines"].items()]
             if entry and entry.get(TrialAttr.RATES_TRIED)]
    if rated:
        lines += ["## Latency vs rate", ""]
        for name, entry in rated:
            lines += rate_table(name, entry[TrialAttr.RATES_TRIED], report.get("p99_ms"))
    if report.get("importances"):
        lines += ["## Which knob matters", "", "| setting | importance |", "|---|---|",
                  *[f"| {name} | {value:.2f} |" for name, value in report["importances"].items()],
                  "", "PED-ANOVA importances (sum 1): how much the best trials agree on each.", ""]
    counts = ", ".join(f"{state.lower()} {count}" for state, count in report["trials"].items())
    lines += [f"Trials: {counts}.", ""]
    return "\n".join(lines)


def rate_table(name: str, rows: Sequence[dict[str, Any]], bound_ms: float | None) -> list[str]:
    """Markdown lines (server mode): each rate tried, its latency percentiles and whether it
    met the bound."""
    bound = f" (bound p99 <= {bound_ms:g} ms)" if bound_ms is not None else ""
    lines = [f"### {name}{bound}", "", "| requests/s | p50 ms | p95 ms | p99 ms | errors | met |",
             "|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda row: row["qps"]):
        lines.append(f"| {row['qps']:,.0f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
                     f"{row['p99_ms']:.2f} | {row['errors']} | {'yes' if row['ok'] else 'no'} |")
    return [*lines, ""]


def env_file_text(report: dict[str, Any]) -> str:
    """`KEY=value` lines of the best settings, for `docker run --env-file`."""
    return "".join(f"{name}={value}\n" for name, value in report["best"]["env"].items())
