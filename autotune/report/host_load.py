"""How busy the host was while the study measured: the report's `host.load`.

Every trial records what else ran during its measurement (`foreign_cpu`, `steal`:
autotune.host.load), and so does every racing round (`RaceRecord.loads`). The report
gives the median and the worst of each over the search and over the racing, names the
busiest trials, counts the measurements taken again after the host calmed and those
that stayed busy, and warns in words when other processes or the hypervisor took more
than `BUSY_SHARE` of the CPU during the racing (during the search when nothing was
raced): the answer is then for a host that busy, and a quiet host may prefer another
configuration (one that needs every core).
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

from optuna.trial import FrozenTrial

from autotune.options import BUSY_SHARE
from autotune.racing.record import RaceRecord
from autotune.record.schema import TrialAttr

#: trials the report names as the busiest
BUSIEST = 3
SHARES = ("foreign_cpu", "steal")


def load_summary(complete: list[FrozenTrial], record: RaceRecord | None) -> dict[str, Any]:
    """The report's `host.load` (docs/DESIGN.md, "The report JSON")."""
    metered = [t for t in complete if TrialAttr.FOREIGN_CPU in t.user_attrs]
    rounds = record.loads if record is not None else []
    search = _spread([{share: t.user_attrs[share] for share in SHARES} for t in metered])
    racing = _spread(rounds)
    busiest = sorted(metered, key=lambda t: -(t.user_attrs[TrialAttr.FOREIGN_CPU]
                                              + t.user_attrs.get(TrialAttr.STEAL, 0.0)))
    return {
        "search": search, "racing": racing,
        "busiest": [{"trial": t.number, **{share: t.user_attrs.get(share) for share in SHARES}}
                    for t in busiest[:BUSIEST]],
        "remeasured": sum(TrialAttr.LOAD_MEASUREMENTS in t.user_attrs for t in metered)
        + sum(bool(load.get("remeasured")) for load in rounds),
        "busy": sum(bool(t.user_attrs.get(TrialAttr.BUSY_HOST)) for t in metered)
        + sum(bool(load.get("busy")) for load in rounds),
        "warning": _warning(racing, "racing") if racing else _warning(search, "search"),
    }


def _spread(loads: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The count, median and worst of each share over `loads` (None: nothing metered)."""
    loads = list(loads)
    if not loads:
        return None
    return {"measurements": len(loads),
            **{share: {"median": round(statistics.median(load[share] for load in loads), 4),
                       "worst": round(max(load[share] for load in loads), 4)}
               for share in SHARES}}


def _warning(spread: dict[str, Any] | None, phase: str) -> str | None:
    """The sentence of a busy host, when the median of either share exceeded BUSY_SHARE."""
    if spread is None:
        return None
    foreign, steal = spread["foreign_cpu"], spread["steal"]
    if max(foreign["median"], steal["median"]) <= BUSY_SHARE:
        return None
    return (f"The host was busy during the {phase}: other processes took a median "
            f"{foreign['median']:.0%} of its CPU (worst {foreign['worst']:.0%}) and the "
            f"hypervisor stole {steal['median']:.0%} (worst {steal['worst']:.0%}). The "
            "answer is for a host that busy: on a quiet host a configuration that needs "
            "every core may win. Rerun on a quiet host, or with --max-foreign-cpu.")
