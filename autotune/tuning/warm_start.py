"""Warm start: a new host class begins where its sibling classes in the same storage ended.

A fleet's classes differ by their hardware but serve the same model in the same mode, and
the region of the space that wins on one is a good first guess on another. So
`--warm-start auto` (the default) finds the studies in the storage of the same mode and
the same model (the host class's `model` part, the served version's fingerprint) but of
another host class, and `--warm-start STUDY` names one such study (another mode or
model, or no such study: `UsageError`, before the study of this run is created). Their
best configurations, up to `--confirm-top` (`TuningOptions.racing_top`) besides the
baselines' (measured anyway), are enqueued
right after the baselines (autotune.tuning.study.plan_trials), each with the trial attr
`warm_start_from` (`{"study", "trial"}`: where it was found).

A source's order is its race's verdict where it raced (autotune.racing.verdict: the
recommended, the fastest, then the configurations tied with it), then its best feasible
search trials; several sources take turns, rank by rank. A configuration is mapped onto
this host's space (`map_params`): each thread setting scaled by the ratio of this
host's physical cores to the source host's and clipped into the space, every other
knob the nearest value the space offers (`instances` the nearest allowed count), a knob
the source did not search taken from the image's defaults, a CPU set kept only where
this host offers the same one. What the transfer found here is the report's
(autotune.report.warm_start).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest
from typing import Mapping, Sequence

import optuna
from optuna.storages import BaseStorage

from autotune.errors import UsageError
from autotune.fleet import HostClass
from autotune.host.facts import HostFacts
from autotune.launch.settings import NO_CPUSET
from autotune.options import WARM_START_AUTO, WARM_START_NONE, TuningOptions
from autotune.racing.record import stored_race
from autotune.racing.verdict import decide
from autotune.record.schema import (
    StudyAttr,
    complete_trials,
    instances_of,
    is_feasible,
    params_key,
    ranked,
)
from autotune.search.batching_space import ENABLE
from autotune.search.space import THREAD_PARAMS, SearchSpace


@dataclass(frozen=True)
class Transfer:
    """A configuration another host class found, mapped onto this host's space."""

    params: dict[str, object]
    #: the study and trial number it comes from
    study: str
    trial: int

    def attr(self) -> dict[str, object]:
        """The `warm_start_from` trial attr."""
        return {"study": self.study, "trial": self.trial}


def warm_start_sources(storage: BaseStorage, options: TuningOptions,
                       host_class: HostClass) -> list[optuna.Study]:
    """The studies `--warm-start` draws from (see the module docstring)."""
    if options.warm_start == WARM_START_NONE:
        return []
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if options.warm_start == WARM_START_AUTO:
        return [optuna.load_study(study_name=summary.study_name, storage=storage)
                for summary in summaries
                if _same_traffic(summary.user_attrs, options, host_class)
                and _class_of(summary.user_attrs).get("digest") != host_class.digest]
    named = next((s for s in summaries if s.study_name == options.warm_start), None)
    if named is None:
        raise UsageError(f"--warm-start {options.warm_start!r}: no such study in the storage; "
                         "name one of its studies, or pass --warm-start auto")
    if not _same_traffic(named.user_attrs, options, host_class):
        raise UsageError(f"--warm-start {options.warm_start!r} is a study of another mode or "
                         f"model (its mode: {named.user_attrs.get(StudyAttr.MODE)!r}); name a "
                         f"study of --mode {options.mode.name} with this model, or pass "
                         "--warm-start auto")
    return [optuna.load_study(study_name=named.study_name, storage=storage)]


def _class_of(attrs: Mapping[str, object]) -> dict:
    stored = attrs.get(StudyAttr.HOST_CLASS)
    return stored if isinstance(stored, dict) else {}


def _same_traffic(attrs: Mapping[str, object], options: TuningOptions,
                  host_class: HostClass) -> bool:
    """Whether a study with these attrs measured this run's mode on this run's model."""
    return (attrs.get(StudyAttr.MODE) == options.mode.name
            and _class_of(attrs).get("parts", {}).get("model") == host_class.parts["model"])


def transfers(sources: Sequence[optuna.Study], host: HostFacts, space: SearchSpace,
              defaults: Mapping[str, object], top: int,
              planned: Sequence[Mapping[str, object]] = ()) -> list[Transfer]:
    """Up to `top` distinct configurations of `sources`, best first and taking turns,
    mapped onto `space` (`defaults`: the image's, for knobs a source did not search);
    those `planned` anyway (the baselines) do not count."""
    per_source = [[Transfer(map_params(params, _core_ratio(source, host), space, defaults),
                            source.study_name, number)
                   for number, params in best_configurations(source)] for source in sources]
    skipped = {params_key(params) for params in planned}
    chosen: dict[tuple, Transfer] = {}
    for turn in zip_longest(*per_source):
        for transfer in filter(None, turn):
            if len(chosen) < top and params_key(transfer.params) not in skipped:
                chosen.setdefault(params_key(transfer.params), transfer)
    return list(chosen.values())


def best_configurations(study: optuna.Study) -> list[tuple[int, dict[str, object]]]:
    """(trial number, params) of a study, best first: its race's recommended, fastest and
    tied configurations where it raced, then its feasible trials by value; each once."""
    record = stored_race(study.user_attrs)
    verdict = decide(record) if record is not None else None
    raced = [] if verdict is None else [verdict.recommended, verdict.fastest,
                                        *(finalist for finalist, _ in verdict.tied)]
    searched = [(trial.number, dict(trial.params)) for trial in
                ranked(study, complete_trials(study)) if is_feasible(trial)]
    found: dict[tuple, tuple[int, dict[str, object]]] = {}
    for number, params in [*((f.trial, dict(f.params)) for f in raced), *searched]:
        found.setdefault(params_key(params), (number, params))
    return list(found.values())


def _core_ratio(source: optuna.Study, host: HostFacts) -> float:
    """This host's physical cores over the source host's (1 where it is not recorded)."""
    theirs = (source.user_attrs.get(StudyAttr.HOST) or {}).get("physical_cores")
    return host.physical_cores / theirs if theirs else 1.0


def map_params(params: Mapping[str, object], core_ratio: float, space: SearchSpace,
               defaults: Mapping[str, object]) -> dict[str, object]:
    """`params` of another host as a configuration of `space` (see the module docstring)."""
    mapped: dict[str, object] = {}
    for name, values in space.choices().items():
        value = params.get(name, defaults.get(name))
        if name in THREAD_PARAMS:
            mapped[name] = min(max(round(int(value) * core_ratio), 1),  # type: ignore[call-overload]
                               space.max_threads)
        elif name == "cpuset":
            if instances_of(mapped) == 1:
                mapped[name] = value if value in values else NO_CPUSET
        else:
            mapped[name] = nearest(value, values)
    if space.batching:
        enabled = bool(params.get(ENABLE, False))
        mapped[ENABLE] = enabled
        if enabled:
            mapped.update({name: nearest(params.get(name), values)
                           for name, values in space.batching.knobs().items()})
    return mapped


def nearest(value: object, values: Sequence[object]) -> object:
    """The value of `values` nearest to `value` (numbers), else `value` itself when offered,
    else the first."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and all(
            isinstance(choice, (int, float)) for choice in values):
        return min(values, key=lambda choice: abs(choice - value))  # type: ignore[operator]
    return value if value in values else values[0]
