"""`autotune check`: is a stored study's recommendation still the fastest on this host?

After a model or serving-image upgrade the tuned settings may stop being the best. The
check races, side by side as the tuner's racing does (autotune.racing, with the rounds
of `TrialObjective.racing_rounds`: autotune.measure.side_by_side, in server mode each
round a short refinement of every finalist's peak from the one its trials found), the
study's recommendation (its report's
`best`), the settings deployed now (`--env-file`, autotune.check.deployed) and this
host's baselines, for `--confirm-budget` seconds (default 120), and judges the race
(autotune.check.verdict): exit 0 when the recommendation is still the fastest or
statistically tied with it, 1 when another configuration is significantly faster (the
paired ratio and its interval printed). Every input is checked before any server
starts (the env file, the study, a recommendation to check, the JUnit folder): a bad
one is one line, exit 2, nothing written. What is measured and how (mode, objective,
protocol, batch size, limits, model, image, launcher) is the study's; `--server`,
`--image` and `--model-dir` measure with another. The study itself is only read.
Ctrl-C stops the servers and ends the check with no verdict (exit 130).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from autotune.check.deployed import deployed_params
from autotune.check.junit import write_junit
from autotune.check.verdict import DEPLOYED, RECOMMENDATION, judge
from autotune.errors import UsageError
from autotune.host.facts import detect_host
from autotune.host.lock import HostLock
from autotune.launch import make_launcher, watched_folder
from autotune.measure.records import Records
from autotune.options import LATENCY_STATISTICS, CheckOptions, TuningOptions, default
from autotune.paths import check_writable_folder
from autotune.progress import make_progress
from autotune.racing.race import Race
from autotune.racing.record import Finalist, RaceRecord
from autotune.record.memory import measured_memory
from autotune.record.schema import StudyAttr, complete_trials, found_values, params_key
from autotune.report import build_report, stored_study
from autotune.search.space import baselines
from autotune.tuning import rig
from autotune.tuning.traffic import build_traffic, read_traffic
from autotune.tuning.trials import TrialObjective

if TYPE_CHECKING:
    from autotune.assets.prepare import PreparedAssets

#: `Finalist.trial` of a configuration that is no trial of the study
NOT_A_TRIAL = -1
#: the TuningOptions fields a check takes from the study attrs of the same meaning, where
#: the study has them (else the option's default)
STORED_OPTIONS = {"protocol": StudyAttr.PROTOCOL, "image": StudyAttr.IMAGE,
                  "batch_size": StudyAttr.BATCH_SIZE, "space": StudyAttr.SPACE,
                  "precision": StudyAttr.PRECISION, "p99_ms": StudyAttr.P99_MS,
                  "rtol": StudyAttr.RTOL, "atol": StudyAttr.ATOL}


def run_check(check: CheckOptions, assets: "PreparedAssets | None" = None,
              launcher_factory: rig.LauncherFactory = make_launcher) -> int:
    """Check the study's recommendation on this host (see the module docstring); the
    exit code. `assets` and `launcher_factory` as `autotune.tuning.run_tuning` takes them."""
    if not check.confirm_budget > 0:
        raise UsageError(f"--confirm-budget {check.confirm_budget:g} must be > 0 (seconds of "
                         "racing)")
    deployed = deployed_params(check.env_file, detect_host())
    study = stored_study(check.storage, check.study_name)
    best = build_report(study)["best"]
    if best is None:
        raise UsageError(f"study {study.study_name!r} has no recommendation (no feasible "
                         "trial); tune it first with `autotune --mode ...`")
    if check.junit_xml is not None:  # its folder is made here: after every other check
        check_writable_folder(Path(check.junit_xml).parent, "--junit-xml")
    options = study_options(study, check)
    records = read_traffic(options, assets)
    with ExitStack() as stack:
        record = _race(options, study, check_finalists(best, deployed), assets, records,
                       launcher_factory, stack)
    if record.stopped == "interrupted":  # no verdict from a race cut short: exit 130
        raise KeyboardInterrupt
    verdict = judge(record)
    print(f"autotune check {study.study_name}: {'PASS' if verdict.passed else 'FAIL'}: "
          f"{verdict.sentence}", flush=True)
    if check.junit_xml is not None:
        write_junit(Path(check.junit_xml), study.study_name, verdict, record.seconds)
    return verdict.exit_code


def study_options(study: optuna.Study, check: CheckOptions) -> TuningOptions:
    """The tuning options the study was measured with (its attrs), with the check's
    budget and the launcher, image, model and data folder it names."""
    attrs = study.user_attrs
    limits = attrs.get(StudyAttr.LIMITS) or {}
    parts = (attrs.get(StudyAttr.HOST_CLASS) or {}).get("parts", {})
    stored = attrs.get(StudyAttr.OBJECTIVE)
    requests = (attrs.get(StudyAttr.REQUESTS) or {}).get("file")
    kept = {name: attrs[key] for name, key in STORED_OPTIONS.items()
            if attrs.get(key) is not None}
    if check.image:
        kept["image"] = check.image
    return TuningOptions(
        mode=attrs[StudyAttr.MODE], server=check.server or attrs[StudyAttr.SERVER], **kept,
        objective=stored if stored in LATENCY_STATISTICS else default("objective"),
        max_threads=parts.get("max_threads"),
        cpus=limits.get("cpus"), cpuset_cpus=limits.get("cpuset_cpus"),
        memory=limits.get("memory_mb"), dataset=parts.get("dataset", default("dataset")),
        data_dir=check.data_dir,
        model_dir=check.model_dir or Path(attrs[StudyAttr.MODEL_DIR]),
        requests=Path(requests) if requests else None, storage=check.storage,
        study_name=study.study_name, confirm_budget=check.confirm_budget, quiet=check.quiet)


class CheckRace(Race):
    """The tuner's race, which a check also stops once the recommendation is dropped: no
    later round can change the verdict then (autotune.check.verdict)."""

    def _stop_reason(self) -> str | None:
        recommended = next(f for f in self.record.finalists if RECOMMENDATION in f.baselines)
        if not recommended.alive:
            return "the recommendation was dropped"
        return super()._stop_reason()


def check_finalists(best: dict[str, Any], deployed: dict[str, object]) -> list[Finalist]:
    """The recommendation (the report's `best`) and the deployed settings: one finalist
    when they are the same configuration, with both roles."""
    return with_roles([Finalist(best["trial"], dict(best["params"]), True, [RECOMMENDATION])],
                      [(DEPLOYED, deployed)])


def with_roles(finalists: list[Finalist],
               roles: list[tuple[str, dict[str, object]]]) -> list[Finalist]:
    """`finalists` joined by each (role, configuration): a role of the finalist of its
    configuration, or a new finalist where there is none."""
    chosen = {params_key(finalist.params): finalist for finalist in finalists}
    for role, params in roles:
        chosen.setdefault(params_key(params), Finalist(NOT_A_TRIAL, dict(params), True)
                          ).baselines.append(role)
    return list(chosen.values())


def _race(options: TuningOptions, study: optuna.Study, finalists: list[Finalist],
          assets: "PreparedAssets | None", records: Records | None,
          launcher_factory: rig.LauncherFactory, stack: ExitStack) -> RaceRecord:
    """Set up as a tuning run does (the host lock, the traffic, the launchers, server
    mode's LoadGen logs in a folder removed afterwards, by its watchdog if the check is
    killed) and race `finalists` with this host's baselines."""
    stack.enter_context(HostLock())
    host = rig.within_limits(detect_host(), options)
    traffic = build_traffic(options, assets, records)
    options = replace(options, batch_size=traffic.batch_size)
    launcher = stack.enter_context(rig.instance_group(options, traffic.model, host,
                                                      launcher_factory))
    space = rig.space_of(options, host)
    named = baselines(space, host, options.mode, launcher.image_env())
    logs = stack.enter_context(watched_folder("autotune-check-"))
    progress = stack.enter_context(make_progress(options.quiet))
    workload = rig.measured_load(options, traffic.workload, logs)
    objective = TrialObjective(space, launcher, workload, traffic.gate, progress, options)
    more_launchers = partial(rig.instance_group, options, traffic.model, host, launcher_factory,
                             launcher.kind)
    trials = complete_trials(study)
    with objective.racing_rounds(more_launchers, measured_memory(trials), found_values(trials)
                                 ) as (measure_round, meter):
        record = RaceRecord(direction=study.direction.name.lower(),
                            precision=options.confirm_precision,
                            budget_s=options.racing_budget,
                            finalists=with_roles(finalists, [(b.name, b.params) for b in named]))
        return CheckRace(record, measure_round, progress, (study.metric_names or ["value"])[0],
                         meter=meter, quiet=objective.quiet).run()

