"""The rig a run measures on: this host within the deployment limits, the launchers
grouped for several instances, the space, and the workload as the mode measures it.

`autotune --mode` (autotune.tuning.run) and `autotune check` (autotune.check) set up
their servers the same way, so a configuration measured by either runs alike.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from autotune.host.cgroups import parse_cpu_list, read_limits
from autotune.host.facts import HostFacts, detect_host
from autotune.launch.base import Launcher, ModelLocation
from autotune.launch.group import InstanceGroup
from autotune.measure.peak import ServerLoad
from autotune.measure.workload import Workload
from autotune.options import TuningOptions
from autotune.protocols import REST
from autotune.search.space import SearchSpace, build_space

#: makes the launcher for `--server KIND`, the model, `image=--image` and `rest=` whether
#: REST is measured
LauncherFactory = Callable[..., Launcher]


def measured_load(options: TuningOptions, workload: Workload, loadgen_logs: Path) -> Workload:
    """The workload as the mode measures it: server mode's with its peak search
    (autotune.measure.peak.ServerLoad, LoadGen's logs under `loadgen_logs`)."""
    if not options.mode.bounded:
        return workload
    return dataclasses.replace(workload, server_load=ServerLoad(
        options.bounded_run, options.peak_policy, loadgen_logs))


def within_limits(machine: HostFacts, options: TuningOptions) -> HostFacts:
    """The host as the trial servers see it: within `--cpus`, `--cpuset-cpus` and
    `--memory` when given (the space and the instance split follow), else as it is."""
    if not options.deploy_limits:
        return machine
    cpuset = parse_cpu_list(options.cpuset_cpus) if options.cpuset_cpus else None
    return detect_host(limits=read_limits().narrowed(options.cpus, cpuset, options.memory))


def instance_group(options: TuningOptions, model: ModelLocation, host: HostFacts,
                   launcher_factory: LauncherFactory, kind: str | None = None) -> InstanceGroup:
    """The launchers for `--server` (or of `kind`), grouped so that a trial can run several
    instances; the first decides `auto`, the others are of its kind."""
    rest = options.protocol == REST
    first = launcher_factory(kind or options.server, model, image=options.image, rest=rest)
    unused = [first]
    return InstanceGroup(lambda: unused.pop() if unused else
                         launcher_factory(first.kind, model, image=options.image, rest=rest),
                         host, options.deploy_limits)


def space_of(options: TuningOptions, host: HostFacts) -> SearchSpace:
    """The search space of a run of `options` on `host` (autotune.search.space)."""
    mode = options.mode
    return build_space(host, options.max_threads, options.space == "extended",
                       batching=mode.searches_batching, instances=mode.searches_instances,
                       cpu_limits=options.target_qps is not None)
