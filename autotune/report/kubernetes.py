"""`<study>.k8s.yaml`: the recommendation as a Kubernetes Deployment, ready to apply.

One container of the serving image with the recommended settings as its environment (as
the `.env` and the `docker run` line carry them), the batching flags as its args and the
batching parameters from a ConfigMap when it batches, the model folder mounted where TF
Serving's images look for it (a `hostPath` of the model folder the study served: replace
it with the volume the cluster keeps models on), and `resources.requests` equal to
`resources.limits` for CPU and memory, so that the pod is of the Guaranteed QoS class:

- CPU: the limit the servers were tuned under (`--cpus`, the right-sized limit, or the
  tuner's own cgroup quota), else the CPUs the study's servers could use;
- memory: `--memory` (or the tuner's cgroup limit), else twice the resident memory
  measured, rounded up to 64 MiB.

Several instances are replicas, each with its share. Pinning (a cpuset, or instances on
their own cores) needs the kubelet's static CPU manager policy, which gives exclusive
cores only to Guaranteed pods with integer CPUs: a comment says so where it matters.
Written with PyYAML, and loaded back before it is written (`kubernetes_text`).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from autotune.launch.batching_file import CONTAINER_FOLDER, CONTAINER_PATH, FILE_NAME, batching_args
from autotune.launch.docker import MODELS_IN_CONTAINER
from autotune.launch.settings import DeployLimits, ServerSettings
from autotune.paths import MODEL_NAME
from autotune.protocols import GRPC, PROTOCOL_PORTS, REST
from autotune.report.deployment import deployed_settings

SUFFIX = ".k8s.yaml"
#: the memory request and limit, without a limit given: this many times the measured RSS
MEMORY_HEADROOM = 2.0
MEMORY_STEP_MIB = 64
#: without any memory measurement either
FALLBACK_MEMORY_MIB = 1024


def kubernetes_text(report: dict[str, Any]) -> str:
    """The `.k8s.yaml` of a report with a best configuration: header comments and the
    documents, checked by loading them back."""
    best = report["best"]
    settings = deployed_settings(best["params"], DeployLimits.from_dict(report["limits"]))
    name = _dns_name(report["study"])
    documents = [_deployment(report, settings, name)]
    if settings.batching is not None:
        documents.append({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": f"{name}-batching"},
                          "data": {FILE_NAME: settings.batching.to_text()}})
    body = yaml.safe_dump_all(documents, sort_keys=False)
    if list(yaml.safe_load_all(body)) != documents:
        raise RuntimeError("the Kubernetes spec did not load back as written")
    return "".join(f"# {line}\n" if line else "#\n" for line in _comments(report, settings)) + body


def _deployment(report: dict[str, Any], settings: ServerSettings, name: str) -> dict[str, Any]:
    """The Deployment of one serving container per replica (an instance each)."""
    resources = {"cpu": _cpu_quantity(_cpus(report, settings)),
                 "memory": f"{_memory_mib(report, settings)}Mi"}
    container: dict[str, Any] = {
        "name": "serving", "image": report["image"],
        "env": [{"name": key, "value": value} for key, value in report["best"]["env"].items()],
        "ports": [{"name": str(protocol), "containerPort": PROTOCOL_PORTS[protocol]}
                  for protocol in (GRPC, REST)],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": [{"name": "model", "mountPath": f"{MODELS_IN_CONTAINER}/{MODEL_NAME}",
                          "readOnly": True}]}
    volumes: list[dict[str, Any]] = [{"name": "model", "hostPath": {
        "path": report["model_dir"] or "/models", "type": "Directory"}}]
    if settings.batching is not None:
        container["args"] = batching_args(CONTAINER_PATH)
        container["volumeMounts"].append({"name": "batching", "mountPath": CONTAINER_FOLDER,
                                          "readOnly": True})
        volumes.append({"name": "batching", "configMap": {"name": f"{name}-batching"}})
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": report["best"]["instances"],
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container], "volumes": volumes}}}}


def _cpus(report: dict[str, Any], settings: ServerSettings) -> float:
    """One replica's CPUs: the limit tuned under, else the host's share."""
    if settings.cpus is not None:
        return settings.cpus
    host = report["host"] or {}
    whole = host.get("cpu_limit") or len(host.get("usable_cpus") or []) or 1
    return whole / report["best"]["instances"]


def _memory_mib(report: dict[str, Any], settings: ServerSettings) -> int:
    """One replica's memory: the limit tuned under, else twice the measured RSS."""
    limit = settings.memory_mb
    if limit is None and (report["host"] or {}).get("memory_limit_mb"):
        limit = report["host"]["memory_limit_mb"] / report["best"]["instances"]
    if limit is not None:
        return math.floor(limit)
    rss = report["best"].get("rss_mb")
    if rss is None:
        return FALLBACK_MEMORY_MIB
    per_replica = MEMORY_HEADROOM * rss / report["best"]["instances"]
    return MEMORY_STEP_MIB * math.ceil(per_replica / MEMORY_STEP_MIB)


def _cpu_quantity(cpus: float) -> str:
    """A CPU quantity: whole CPUs as `2`, else millicores (`500m`)."""
    return f"{cpus:g}" if float(cpus).is_integer() else f"{round(cpus * 1000)}m"


def _comments(report: dict[str, Any], settings: ServerSettings) -> list[str]:
    """Where the spec came from, and what the cluster must provide for it to hold."""
    lines = [f"autotune: the recommendation of study {report['study']} (trial "
             f"{report['best']['trial']}), as a Deployment.",
             "requests = limits for CPU and memory: the pod is Guaranteed QoS.",
             "Replace the model's hostPath with the volume your cluster keeps models on."]
    if settings.memory_mb is None and not (report["host"] or {}).get("memory_limit_mb"):
        lines.append(f"Memory: {MEMORY_HEADROOM:g}x the resident memory measured (no "
                     "--memory was given).")
    pinned = report["best"]["instances"] > 1 or settings.cpuset is not None
    if pinned:
        cpus = _cpus(report, settings)
        lines += ["", "Pinned: the tuned servers ran on cores of their own. In Kubernetes "
                  "that needs the kubelet's", "static CPU manager policy "
                  "(--cpu-manager-policy=static), which gives exclusive cores only to",
                  "Guaranteed pods with integer CPU requests"
                  + ("." if float(cpus).is_integer() else
                     f": this spec's {_cpu_quantity(cpus)} is not one, so round it up.")]
    return lines


def _dns_name(study: str) -> str:
    """A Kubernetes object name (RFC 1123 label) from a study name."""
    name = re.sub(r"[^a-z0-9-]+", "-", study.lower()).strip("-")[:63].rstrip("-")
    return name or "autotune-serving"
