"""The report as Markdown: the `.md` file, the dashboard note, the printed summary (the
`.env` file of the best settings is autotune.report.env_file's)."""

from __future__ import annotations

from typing import Any, Sequence

from autotune.model.metrics import HR_LABEL, NDCG_LABEL
from autotune.modes import format_metric
from autotune.protocols import PROTOCOL_LABELS
from autotune.record.schema import TrialAttr
from autotune.report.gate import gate_values
from autotune.search.space import describe_params

#: how the report says a count of rounds too small for an interval
ROUND_WORDS = {2: "two"}


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the `.md` file, the dashboard note and the printed summary."""
    metric = report["objective"]["metric"]
    lines = [*_heading_lines(report), *_best_lines(report, metric),
             *_right_sizing_lines(report),
             *_tied_lines(report, metric), *_not_raced_lines(report, metric),
             *_baseline_lines(report, metric), *_warm_start_lines(report, metric),
             *_rate_lines(report), *_racing_lines(report["racing"]),
             *_importance_lines(report), *_load_lines(report)]
    counts = ", ".join(f"{state.lower()} {count}" for state, count in report["trials"].items())
    lines += [f"Trials: {counts}.", "", *_capped_lines(report["measurement"])]
    return "\n".join(lines)


def _heading_lines(report: dict[str, Any]) -> list[str]:
    """The study, its mode and objective, the server, the protocol and the host."""
    host = report["host"] or {}
    lines = [f"# autotune: {report['study']}", "",
             f"Mode **{report['mode']}** ({report['objective']['metric']}, "
             f"{report['objective']['statistic']}, {report['objective']['direction']}), "
             f"server {report['server']} over "
             f"{PROTOCOL_LABELS.get(report['protocol'], report['protocol'])}, host "
             f"{host.get('hostname')} ({host.get('cpu_model')}, {host.get('physical_cores')} "
             f"physical cores{_limits_text(report)}).", ""]
    if report.get("exposure"):
        lines += [f"**Exposure**: {report['exposure']}.", ""]
    warning = host.get("load", {}).get("warning")
    if warning:
        lines += [f"**Busy host**: {warning}", ""]
    if report.get("throttling_warning"):
        lines += [f"**Throttled**: {report['throttling_warning']}", ""]
    return [*lines, *_requests_lines(report)]


def _limits_text(report: dict[str, Any]) -> str:
    """`; CPU limit 1, cpuset 0-1, memory limit 2048 MB`: what the host's cgroup (or the
    limit flags) allowed, where anything was limited."""
    host, limits = report["host"] or {}, report.get("limits") or {}
    parts = []
    if host.get("cpu_limit") is not None:
        parts.append(f"CPU limit {host['cpu_limit']:g}")
    if limits.get("cpuset_cpus"):
        parts.append(f"cpuset {limits['cpuset_cpus']}")
    if host.get("memory_limit_mb") is not None:
        parts.append(f"memory limit {host['memory_limit_mb']:,.0f} MB")
    return "".join(f"; {part}" for part in parts)


def _right_sizing_lines(report: dict[str, Any]) -> list[str]:
    """Right-sizing: each CPU limit's best peak under the bound, and the one chosen."""
    sizing = report.get("right_sizing")
    if not sizing:
        return []
    chosen = (f"the smallest that holds it: **{sizing['cpus']:g} CPUs**"
              if sizing["cpus"] is not None else "no limit tried holds it")
    return ["## Right-sizing", "",
            f"Target {sizing['target_qps']:,.0f} requests/s at p99 <= "
            f"{report.get('p99_ms'):g} ms; {chosen}.", "",
            "| CPU limit | peak requests/s | trial | holds the target |", "|---|---|---|---|",
            *[f"| {row['cpus']:g} | {row['peak_qps']:,.0f} | {row['trial']} | "
              f"{'yes' if row['holds'] else 'no'} |" for row in sizing["limits"]], ""]


def _best_lines(report: dict[str, Any], metric: str) -> list[str]:
    """The recommended settings with their interval, table and `docker run`, or why none."""
    best = report["best"]
    if best is None:
        return ["**No feasible trial**: none met the constraints "
                f"({_gate_floor(report['floors'])}{_memory_floor(report)}).", ""]
    source = (f"the racing ({report['racing']['rounds']} rounds)"
              if best["source"] == "racing" else "the search")
    return ["## Best settings", "",
            f"Trial {best['trial']}: **{format_metric(metric, best['value'])}**"
            f"{_interval(metric, best)}, from {source}; "
            f"{', '.join(f'{label} {value}' for label, value in gate_values(best))}.", "",
            report["recommendation"], "",
            "| setting | value |", "|---|---|",
            *[f"| {name} | {value} |" for name, value in best["params"].items()], "",
            *_instances_lines(report),
            "```", best["docker_run"], "```", ""]


def _tied_lines(report: dict[str, Any], metric: str) -> list[str]:
    """The configurations statistically tied with the fastest, when there are any."""
    if len(report["tied"]) < 2:
        return []
    return ["## Statistically tied with the fastest", "",
            "| configuration | objective | the fastest vs it |", "|---|---|---|",
            *[f"| {describe_params(t['params'])} | {format_metric(metric, t['value'])}"
              f"{_interval(metric, t)} | "
              f"{describe_ratio(t['fastest_vs_it']) if index else 'the fastest'} |"
              for index, t in enumerate(report["tied"])], ""]


def _not_raced_lines(report: dict[str, Any], metric: str) -> list[str]:
    """Finalists measured in too few rounds to be compared: not raced, not tied."""
    if not report.get("not_raced"):
        return []
    return ["## Not raced long enough to compare", "",
            "| configuration | objective |", "|---|---|",
            *[f"| {describe_params(t['params'])} | {format_metric(metric, t['value'])}"
              f"{_interval(metric, t)} |" for t in report["not_raced"]], ""]


def _baseline_lines(report: dict[str, Any], metric: str) -> list[str]:
    """Each baseline's value and the recommendation's speed-up over it."""
    if not report["baselines"]:
        return []
    lines = ["## Baselines", "", "| baseline | objective | speed-up of best |", "|---|---|---|"]
    for name, baseline in report["baselines"].items():
        ratio = report["speedup"].get(name)
        lines.append(f"| {name} | {format_metric(metric, baseline['value'])}"
                     f"{_interval(metric, baseline)} | "
                     f"{describe_ratio(ratio) if ratio is not None else '-'} |")
    return [*lines, ""]


def _warm_start_lines(report: dict[str, Any], metric: str) -> list[str]:
    """What other host classes' studies gave this one, and how it ranked here."""
    rows = report.get("warm_start") or []
    if not rows:
        return []
    return ["## Warm start", "", "| configuration | from | here |", "|---|---|---|",
            *[f"| {describe_params(row['params'])} | trial {row['from']['trial']} of "
              f"{row['from']['study']} | {_warm_start_outcome(row, metric)} |" for row in rows],
            ""]


def _warm_start_outcome(row: dict[str, Any], metric: str) -> str:
    """`trial 3: 1.234 ms, 2nd of 8 feasible (recommended)`, or why it has no rank."""
    if row["value"] is None:
        return f"trial {row['trial']}: {row['state'].lower()}"
    rank = (f"rank {row['rank']} of {row['of']} feasible" if row["rank"] is not None
            else "infeasible")
    chosen = " (recommended)" if row["recommended"] else ""
    return f"trial {row['trial']}: {format_metric(metric, row['value'])}, {rank}{chosen}"


def _rate_lines(report: dict[str, Any]) -> list[str]:
    """Server mode: the latency-vs-rate table of the best and of each baseline."""
    rated = [(f"{name} (trial {entry['trial']})", entry)
             for name, entry in [("best", report["best"]), *report["baselines"].items()]
             if entry and entry.get(TrialAttr.RATES_TRIED)]
    if not rated:
        return []
    lines = ["## Latency vs rate", ""]
    for name, entry in rated:
        lines += rate_table(name, entry[TrialAttr.RATES_TRIED], report.get("p99_ms"))
    return lines


def _load_lines(report: dict[str, Any]) -> list[str]:
    """How busy the host was during the search and the racing, and the busiest trials."""
    load = (report["host"] or {}).get("load") or {}
    phases = [(f"the {phase} ({spread['measurements']} {unit})", spread)
              for phase, unit in (("search", "trials"), ("racing", "rounds"))
              if (spread := load.get(phase))]
    if not phases:
        return []
    lines = ["## How busy the host was", "",
             "| measured during | other processes (median, worst) | steal (median, worst) |",
             "|---|---|---|",
             *[f"| {name} | {spread['foreign_cpu']['median']:.1%}, "
               f"{spread['foreign_cpu']['worst']:.1%} | {spread['steal']['median']:.1%}, "
               f"{spread['steal']['worst']:.1%} |" for name, spread in phases], ""]
    busiest = ", ".join(f"trial {entry['trial']} ({entry['foreign_cpu']:.0%} other processes, "
                        f"{entry['steal']:.0%} steal)" for entry in load["busiest"])
    if busiest:
        lines += [f"Busiest trials: {busiest}.", ""]
    if load["remeasured"] or load["busy"]:
        lines += [f"Measured again after the host calmed: {load['remeasured']}; still busy "
                  f"when kept: {load['busy']} (--max-foreign-cpu).", ""]
    return lines


def _importance_lines(report: dict[str, Any]) -> list[str]:
    """Which knob matters on this host (PED-ANOVA), when it can be told."""
    if not report.get("importances"):
        return []
    return ["## Which knob matters", "", "| setting | importance |", "|---|---|",
            *[f"| {name} | {value:.2f} |" for name, value in report["importances"].items()],
            "", "PED-ANOVA importances (sum 1): how much the best trials agree on each.", ""]


def describe_ratio(ratio: dict[str, Any]) -> str:
    """`1.23x (faster; 95% CI 1.10-1.37x)`, or `no significant difference (95% CI ...)`."""
    if ratio.get("is_recommended"):
        return "is the recommended configuration"
    if ratio["ratio"] is None:
        return "not measured side by side"
    if ratio["ci95"] is None:
        return f"{ratio['ratio']:.2f}x from single measurements: no interval, no claim"
    low, high = ratio["ci95"]
    interval = f"95% CI {low:.2f}-{high:.2f}x"
    if not ratio["significant"]:
        return f"no significant difference ({interval})"
    word = "faster" if ratio["ratio"] > 1 else "slower"
    return f"{ratio['ratio']:.2f}x ({word}; {interval})"


def _interval(metric: str, entry: dict[str, Any]) -> str:
    """` (95% CI a to b)`, or why there is none: one measurement, or two rounds."""
    if entry.get("ci95") is not None:
        low, high = entry["ci95"]
        return f" (95% CI {format_metric(metric, low)} to {format_metric(metric, high)})"
    rounds = entry.get("rounds", 1)
    return " (one measurement)" if rounds <= 1 else f" ({ROUND_WORDS.get(rounds, rounds)} rounds)"


def _racing_lines(racing: dict[str, Any] | None) -> list[str]:
    if racing is None:
        return []
    dropped = "; ".join(f"{describe_params(d['params'])} after round {d['round']} ({d['reason']})"
                        for d in racing["dropped"]) or "none"
    return ["## Racing", "",
            f"{len(racing['finalists'])} finalists, {racing['rounds']} rounds in "
            f"{racing['seconds']:.0f} s (budget {racing['budget_s']:.0f} s), stopped: "
            f"{racing['stopped']}. Dropped: {dropped}.{_pooled_sentence(racing)}", ""]


def _pooled_sentence(racing: dict[str, Any]) -> str:
    """A fleet's pooled race: how many hosts and workers contributed rounds."""
    workers, hosts = racing.get("workers", []), racing.get("hosts", [])
    if len(workers) < 2:
        return ""
    return (f" Pooled from {len(hosts)} host{'s' if len(hosts) != 1 else ''} "
            f"({len(workers)} workers: {', '.join(workers)}), each worker's rounds paired "
            "within that worker's own host.")


def _capped_lines(measurement: dict[str, Any]) -> list[str]:
    """The trials whose measurement stopped at its cap before reaching the precision."""
    capped = measurement["capped"]
    if not capped:
        return []
    target = measurement["precision"]
    reached = ", ".join(
        f"trial {c['trial']} ("
        + (f"±{c['precision']:.1%}" if c["precision"] is not None else "no interval") + ")"
        for c in capped)
    goal = f"±{target:.0%}" if target is not None else "the precision"
    return [f"{len(capped)} trial(s) stopped at the measurement cap before their 95% interval "
            f"was within {goal}: {reached}.", ""]


def _gate_floor(floors: dict[str, Any]) -> str:
    """What the gate asked of a trial: the HR/NDCG floors, or the outputs' tolerances."""
    if floors.get("rtol") is not None:
        return (f"outputs within rtol {floors['rtol']:g} and atol {floors['atol']:g} of the "
                f"reference, {floors['reference']}")
    return f"{HR_LABEL} >= {floors['min_hr']}, {NDCG_LABEL} >= {floors['min_ndcg']}"


def _requests_lines(report: dict[str, Any]) -> list[str]:
    """A model measured from recorded requests: the file and what the gate checks."""
    requests = report.get("requests")
    if not requests:
        return []
    return [f"Model `{report['model_name']}`, measured from {requests['records']} recorded "
            f"requests ({requests['rows']} rows) in `{requests['file']}`; gate: "
            f"{_gate_floor(report['floors'])}.", ""]


def _memory_floor(report: dict[str, Any]) -> str:
    limit = report["floors"].get("max_memory_mb")
    return f", memory <= {limit:g} MB" if limit is not None else ""


def _instances_lines(report: dict[str, Any]) -> list[str]:
    """CPU sets, memory and the gain over the best single instance, where known."""
    best, single = report["best"], report.get("single_instance")
    lines = []
    if best["cpusets"]:
        lines.append(f"{best['instances']} instance(s) on CPUs "
                     + ", ".join(f"`{cpus}`" for cpus in best["cpusets"]) + ".")
    if best.get("throttled_ratio") is not None:
        lines.append(f"Throttled by its CPU quota in {best['throttled_ratio']:.1%} of the CFS "
                     f"periods it was measured in ({best['throttled_s']:.1f} s waiting).")
    if best["rss_mb"] is not None:
        lines.append(f"Resident memory, all instances together: {best['rss_mb']:,.0f} MB.")
    if single is not None and single["speedup_of_best"].get("is_recommended"):
        lines.append("The best single instance is the recommended configuration.")
    elif single is not None:
        lines.append(f"Best single instance: trial {single['trial']}, "
                     f"{format_metric(report['objective']['metric'], single['value'])}"
                     f"{_interval(report['objective']['metric'], single)}; the best "
                     f"over it: {describe_ratio(single['speedup_of_best'])}.")
    return [*lines, ""] if lines else []


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

