"""The host class: what decides the answer, so that hosts which share it share one study.

Two hosts get the same best thread settings when they have the same CPU model, physical
cores, sockets, NUMA layout and memory, serve the same model from the same server
build, and are tuned for the same mode, objective, space and traffic (the NCF dataset,
or a model's recorded requests). Those parts, hashed, give the class a short digest; the
default study name is a readable prefix plus that digest
(`online-synthetic-2c1s-4f0a9e12c3`, or `online-<model name>-2c1s-...` for a model
measured from its recorded requests), so every host of a class joins one study on a
shared storage without being told its name, and a host of another class gets its own.

`--host-class NAME` replaces the hardware parts by NAME (the operator vouches that the
hosts are alike); the server build, the model and the study parts still count.

The study keeps its class as the `host_class` attr (name, digest, parts): a worker
whose parts differ is refused, with each differing part named, also when `--study-name`
points it at the study by hand.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import optuna
import psutil

from autotune.errors import UsageError
from autotune.host.facts import HostFacts, numa_layout
from autotune.record.schema import StudyAttr

GIB = 1 << 30
#: hex digits of the digest in the study name
DIGEST_CHARS = 10


@dataclass(frozen=True)
class HostClass:
    """A class's readable name, its digest and the parts the digest is made of."""

    name: str
    digest: str
    parts: Mapping[str, Any]

    def study_name(self) -> str:
        """The default study of the class: `<name>-<digest>`."""
        return f"{self.name}-{self.digest}"

    def as_attr(self) -> dict[str, Any]:
        """JSON-ready form stored as the study's `host_class` attr."""
        return {**asdict(self), "parts": dict(self.parts)}


def hardware_parts(host: HostFacts) -> dict[str, Any]:
    """The machine's share of the class: CPU, cores, sockets, NUMA layout, memory (GiB),
    and the CPU quota where there is one (a 4-CPU pod is not its 64-core node; unlimited
    hosts keep the classes they had)."""
    parts = {"cpu_model": host.cpu_model, "physical_cores": host.physical_cores,
             "sockets": host.sockets, "numa_layout": numa_layout(host.usable_cpus),
             "memory_gib": round(psutil.virtual_memory().total / GIB)}
    return parts if host.cpu_limit is None else {**parts, "cpu_limit": host.cpu_limit}


def server_build(server: str, image: str) -> str:
    """What runs the model: the image's id for Docker, the TensorFlow build for local."""
    if server == "docker":
        from autotune.launch.docker import connect

        return connect().images.get(image).id
    for distribution in ("intel-tensorflow", "tensorflow", "tensorflow-cpu"):
        try:
            return f"local {distribution}=={metadata.version(distribution)}"
        except metadata.PackageNotFoundError:
            continue
    return "local"


def model_fingerprint(model_dir: Path) -> str:
    """A digest of the served (highest) version: TensorFlow's `fingerprint.pb` when the
    SavedModel has one (it covers graph and weights), else `saved_model.pb` and the
    variables index."""
    versions = sorted((int(path.name), path) for path in Path(model_dir).iterdir()
                      if path.name.isdigit() and path.is_dir())
    if not versions:
        return "none"
    served = versions[-1][1]
    files = ([served / "fingerprint.pb"] if (served / "fingerprint.pb").is_file() else
             [served / "saved_model.pb", served / "variables" / "variables.index"])
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def make_host_class(hardware: Mapping[str, Any], server: str, model: str, study: Mapping[str, Any],
                    manual_name: str | None = None) -> HostClass:
    """The class of these parts; `manual_name` (`--host-class`) stands for the hardware."""
    machine = {"host_class": manual_name} if manual_name else dict(hardware)
    parts = {**machine, "server_build": server, "model": model, **study}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:DIGEST_CHARS]
    if manual_name:
        label = manual_name
    else:
        label = f"{hardware['physical_cores']}c{hardware['sockets']}s"
    served = study.get("dataset") or study.get("model_name")  # NCF's data, or the model
    name = "-".join(str(word) for word in (study["mode"], served, label,
                                            "extended" if study["space"] != "default" else None,
                                            study.get("protocol"))
                    if word)
    return HostClass(name=_slug(name), digest=digest, parts=parts)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def check_host_class(study: optuna.Study, host_class: HostClass) -> None:
    """Refuse (`UsageError`) a worker whose class is not the study's; record it on a new study."""
    stored = study.user_attrs.get(StudyAttr.HOST_CLASS)
    if stored is None:
        study.set_user_attr(StudyAttr.HOST_CLASS, host_class.as_attr())
        return
    if stored["digest"] == host_class.digest:
        return
    theirs, ours = stored["parts"], host_class.parts
    differing = [f"{key} {ours.get(key)!r} (study: {theirs.get(key)!r})"
                 for key in sorted(set(theirs) | set(ours)) if theirs.get(key) != ours.get(key)]
    raise UsageError(
        f"study {study.study_name!r} belongs to host class {stored['name']!r} and this host "
        f"differs: {'; '.join(differing)}; run without --study-name to tune this host's own "
        "class, or pass the same --host-class on every host you vouch are alike")
