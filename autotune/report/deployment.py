"""The report's deployment facts: the limits the servers ran under, their throttling, and
right-sizing's table of CPU limit against peak rate.

- `deployed_settings`: the settings of one server as deployed, the recommendation's
  params under the study's limits (`--cpus`, `--cpuset-cpus`, `--memory`), each
  instance's share where there are several; the `docker run` line and the Kubernetes
  spec (autotune.report.kubernetes) are written from it;
- `throttling_warning`: the sentence when the recommendation's servers were throttled
  by their CFS quota in more than `THROTTLED_SHARE` of the periods it measured (its
  threads want more CPU than the limit gives: fewer threads, or a larger limit);
- `right_sizing`: with `--target-qps`, each CPU limit tried with its best peak rate and
  whether it held the target, and the limit recommended (autotune.record.target).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from optuna.trial import FrozenTrial

from autotune.launch.settings import DeployLimits, ServerSettings
from autotune.record.target import limit_table
from autotune.search.space import settings_from_params

#: the share of CFS periods above which the report warns that the answer was throttled
THROTTLED_SHARE = 0.05


def deployed_settings(params: Mapping[str, Any], limits: DeployLimits) -> ServerSettings:
    """One server's settings as deployed (module docstring)."""
    settings = limits.apply(settings_from_params(params))
    return settings.instance_share() if settings.instances > 1 else settings


def throttling_warning(best: Mapping[str, Any]) -> str | None:
    """The sentence of a recommendation throttled in more than THROTTLED_SHARE of periods."""
    ratio = best.get("throttled_ratio")
    if ratio is None or ratio <= THROTTLED_SHARE:
        return None
    return (f"The recommended configuration was throttled by its CPU quota in {ratio:.0%} of "
            f"the CFS periods it was measured in ({best.get('throttled_s') or 0:.1f} s "
            "waiting): its threads want more CPU than the limit gives. Expect its latency "
            "tail to follow the quota; fewer threads or a larger limit may serve better.")


def right_sizing(trials: Iterable[FrozenTrial], target_qps: float,
                 best: Mapping[str, Any] | None) -> dict[str, Any]:
    """The report's `right_sizing`: the target, the limit recommended (None: none held
    it) and the table of limits."""
    return {"target_qps": target_qps,
            "cpus": (best or {}).get("params", {}).get("cpus"),
            "limits": limit_table(trials, target_qps)}
