"""The study of a run: created or resumed on the storage, and its trials planned.

`open_study` names the study after the host class (autotune.fleet) unless
`--study-name` is given, and refuses to resume one measured with another setup (the
comparable study attrs, the direction, the host class). `plan_trials` enqueues what is
still unmeasured: the baselines first, then what sibling host classes found best
(autotune.tuning.warm_start), then every configuration when the whole space fits the
budget; under a fleet it runs once per class, under the storage lock.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from autotune.errors import (
    UsageError,
)
from autotune.fleet import (
    HostClass,
    check_host_class,
    hardware_parts,
    make_host_class,
    model_fingerprint,
    server_build,
)
from autotune.host.facts import HostFacts
from autotune.launch.base import Launcher
from autotune.options import DEFAULT_BUDGET, TuningOptions
from autotune.protocols import GRPC
from autotune.record.schema import (
    COMPARABLE_STUDY_ATTRS,
    STUDY_ATTRS_BEFORE_RECORDED,
    StudyAttr,
    TrialAttr,
    planned_params,
)
from autotune.search.pruning import HopelessPruner
from autotune.search.space import (
    Baseline,
    SearchSpace,
)
from autotune.tuning.traffic import Traffic
from autotune.tuning.warm_start import Transfer

if TYPE_CHECKING:
    pass


def host_class_of(options: TuningOptions, host: HostFacts, server: str,
                  traffic: Traffic) -> HostClass:
    """This host's class for this run (autotune.fleet.host_class)."""
    study_parts = {"mode": options.mode.name, "objective": options.stored_objective,
                   "space": options.space, "max_threads": options.max_threads,
                   # the dataset (NCF), or the model's name and its records' digest
                   **traffic.class_parts,
                   # only REST, limits and right-sizing are named: other studies keep the
                   # classes (and names) they had
                   **({"protocol": options.protocol} if options.protocol != GRPC else {}),
                   **({"limits": options.deploy_limits.as_dict()}
                      if options.deploy_limits else {}),
                   **({"target_qps": options.target_qps} if options.target_qps else {})}
    return make_host_class(hardware_parts(host), server_build(server, options.image),
                           model_fingerprint(traffic.model.base_path), study_parts,
                           options.host_class)


def open_study(options: TuningOptions, storage: BaseStorage, host_class: HostClass,
               host: HostFacts, launcher: Launcher, traffic: Traffic) -> optuna.Study:
    """Create the study of `host_class` (`host_class_of`), or load it and check that its
    stored setup matches this run."""
    name = options.study_name or host_class.study_name()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mode = traffic.workload.mode
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                direction=mode.direction)
    attrs: dict[str, object] = {
        StudyAttr.MODE: options.mode.name, StudyAttr.OBJECTIVE: options.stored_objective,
        StudyAttr.SERVER: launcher.kind, StudyAttr.PROTOCOL: str(options.protocol),
        StudyAttr.SPACE: options.space,
        StudyAttr.BATCH_SIZE: traffic.workload.batch_size,
        # the gate's floors (HR/NDCG) or tolerances, and the requests measured
        **traffic.study_attrs,
        StudyAttr.PRECISION: options.precision,
        **({StudyAttr.P99_MS: options.p99_ms} if options.mode.bounded else {}),
        StudyAttr.MAX_MEMORY_MB: options.max_memory_mb,
        StudyAttr.LIMITS: options.deploy_limits.as_dict(),
        **({StudyAttr.TARGET_QPS: options.target_qps} if options.target_qps else {}),
        StudyAttr.HOST: host.as_dict(), StudyAttr.IMAGE: options.image,
        StudyAttr.LAUNCHER: launcher.describe(),
        StudyAttr.MODEL_DIR: str(Path(traffic.model.base_path).resolve()),
    }
    stored = ({**STUDY_ATTRS_BEFORE_RECORDED, **study.user_attrs} if study.user_attrs
              else study.user_attrs)
    mismatched = [f"{key} {stored[key]!r} (this run: {attrs.get(key)!r})"
                  for key in COMPARABLE_STUDY_ATTRS
                  if key in stored and stored[key] != attrs.get(key)]
    if mismatched or study.direction.name.lower() != mode.direction:
        raise UsageError(f"study {name!r} was measured with another setup: "
                         f"{'; '.join(mismatched) or 'another direction'}; "
                         "pass --study-name to start a new study")
    check_host_class(study, host_class)
    with warnings.catch_warnings():  # experimental in name only since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([mode.metric])
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    # constant_liar: a worker's sampler counts the configurations others are measuring
    study.sampler = optuna.samplers.TPESampler(seed=options.seed + len(study.trials),
                                               constant_liar=True)
    # right-sizing wants the smallest CPU limit that holds a rate, not the fastest
    study.pruner = (optuna.pruners.NopPruner() if options.target_qps is not None
                    else HopelessPruner(mode, options.precision, options.racing_top))
    return study


def plan_trials(study: optuna.Study, space: SearchSpace, named: list[Baseline],
                requested: int | None, warm: Sequence[Transfer] = ()) -> int:
    """Enqueue what is still unmeasured; return how many trials this run makes.

    Baselines go first, each until it has a COMPLETE (or waiting, or running) trial, so a
    resumed study or a second worker does not repeat them but retries one that failed or
    was interrupted. The configurations other host classes found (`warm`,
    autotune.tuning.warm_start) follow, each not yet covered, with its `warm_start_from`
    attr. When the whole space is no larger than the budget (`requested`, else
    DEFAULT_BUDGET) every configuration not yet measured is enqueued too, and the run
    makes exactly those trials unless `--trials` says otherwise.
    """
    trials = study.get_trials(deepcopy=False)
    live = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    covered = [planned_params(t) for t in trials if t.state in live]
    done_baselines = {t.user_attrs.get(TrialAttr.BASELINE) for t in trials if t.state in live}
    for baseline in named:
        if baseline.name not in done_baselines:
            study.enqueue_trial(baseline.params, user_attrs={TrialAttr.BASELINE: baseline.name})
            covered.append(baseline.params)
    for transfer in warm:
        if transfer.params not in covered:
            study.enqueue_trial(transfer.params,
                                user_attrs={TrialAttr.WARM_START_FROM: transfer.attr()})
            covered.append(transfer.params)
    whole_grid = space.size <= (requested or DEFAULT_BUDGET)
    if whole_grid:
        for params in space.configurations():
            if params not in covered:
                study.enqueue_trial(params)
                covered.append(params)
    if requested is not None:
        return requested
    if whole_grid:
        return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    return DEFAULT_BUDGET
