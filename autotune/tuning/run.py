"""The tuning study: the Optuna objective and the orchestration of one `autotune --mode` run.

A run reads what it will send (autotune.tuning.traffic: the NCF eval set, or a model's
recorded requests, checked against it), takes the host lock, prepares data and model if
missing, picks the launcher, opens (or resumes) the study, enqueues what has not been
measured yet (the baselines, then what sibling host classes in the storage found best:
autotune.tuning.warm_start, and every configuration when the whole space fits the
budget), then runs trials one by one with ask-and-tell: restart the server with the
trial's settings, measure, check the answers through the same server (HR/NDCG of the
eval set, or the outputs' agreement with the reference), record. Optuna's
`trial.set_constraint` carries the gate, so TPE and `best_trial` skip infeasible trials
(TPESampler reads them itself; its `constraints_func` is deprecated since Optuna 5.0).
After the search the finalists (the best, the baselines and, when `instances` was
searched, the best single instance) are raced (autotune.racing) until the data decides,
online and batch with their servers side by side (autotune.measure.side_by_side), and
autotune.report publishes the result. Whatever differs by mode (the measurement, the
space's batching knobs and instance counts, the defaults of budget, finalists and gate)
is read from the run's `Mode` (autotune.modes). Every trial runs through an
`InstanceGroup`, so a trial of `instances` N starts N pinned servers; their memory is
recorded (`rss_mb`) and, with `--max-memory-mb`, is a constraint like the floors
(autotune.record.memory).

Several tuners may share the study (hosts of one class on one PostgreSQL storage, see
autotune.fleet): planning and claiming a trial happen under a storage lock, `--trials`
is the class's shared budget, and a trial whose worker stops its heartbeat is failed
and its configuration measured again by another worker.

A failed trial (server did not start, died, errored) is FAIL with its reason and the
study goes on; three in a row end it. A server-mode trial that misses the p99 bound even
at the lowest rate is FAIL too, but it is a finding about the configuration, not a
broken server: it does not count towards the three, and when no trial is feasible the
error says which bound the host could meet. Ctrl-C (or SIGTERM) marks the running trial FAIL
("interrupted"), stops its server, writes the report of the completed trials and ends
with exit 130; a rerun resumes the study, after marking FAIL the trials a killed tuner
left RUNNING (autotune.tuning.recovery). Ctrl-C during the racing keeps what it measured,
writes the report, then exits 130.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Iterator

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from autotune.errors import NoFeasibleTrialError
from autotune.fleet import (
    Coordinator,
    open_budget,
)
from autotune.host.facts import HostFacts, detect_host
from autotune.host.lock import HostLock
from autotune.launch import make_launcher
from autotune.launch.base import ModelLocation
from autotune.launch.group import InstanceGroup
from autotune.measure.records import Records
from autotune.options import BUSY_SHARE, TuningOptions
from autotune.progress import Progress, make_progress
from autotune.racing.race import race_study
from autotune.record.memory import measured_memory, over_limit_summary
from autotune.record.schema import (
    TrialAttr,
    best_feasible_trial,
    complete_trials,
    found_values,
)
from autotune.record.storage import open_storage, storage_lost_as_error
from autotune.report.publish import publish_report
from autotune.report.server_files import loadgen_log_root
from autotune.search.space import SearchSpace, baselines
from autotune.tuning.preflight import check_limits, check_options, check_run
from autotune.tuning.recovery import fail_orphaned_trials, report_when_interrupted
from autotune.tuning.rig import (
    LauncherFactory,
    instance_group,
    measured_load,
    space_of,
    within_limits,
)
from autotune.tuning.study import host_class_of, open_study, plan_trials
from autotune.tuning.traffic import build_traffic, read_traffic
from autotune.tuning.trials import TrialObjective, run_trials
from autotune.tuning.warm_start import transfers, warm_start_sources

if TYPE_CHECKING:
    from autotune.assets.prepare import PreparedAssets

#: seconds of sampling before the first trial, to say whether the host is busy
START_SAMPLE_S = 1.0


@dataclass
class TuningRun:
    """What a run set up before its first trial: what the search and the racing work on."""

    options: TuningOptions
    storage: BaseStorage
    host: HostFacts
    model: ModelLocation
    launcher: InstanceGroup
    launcher_factory: LauncherFactory
    space: SearchSpace
    study: optuna.Study
    objective: TrialObjective
    progress: Progress
    #: the studies of sibling host classes the search starts from (autotune.tuning.warm_start)
    warm_sources: list[optuna.Study]


def run_tuning(options: TuningOptions, assets: "PreparedAssets | None" = None,
               launcher_factory: LauncherFactory = make_launcher) -> int:
    """Run (or resume) the study for `options` and report it; the exit code.

    The five steps of docs/DESIGN.md's data flow: check (every flag, path and URL before
    anything slow), set up, search, race, report. A storage that stops answering on the
    way ends the run in one line (`StorageLostError`), its servers stopped first.
    `assets` are already prepared data and model (tests, or callers that prepared
    them), checked here; by default they are prepared here from the data options.
    `launcher_factory` makes the launcher from `--server`, the model, `--image` and
    whether REST is measured (`autotune.launch.make_launcher`; tests pass their own).
    """
    check_options(options)
    records = read_traffic(options, assets)
    check_run(options)
    storage = open_storage(options.storage, heartbeat_interval=options.heartbeat_interval,
                           grace_period=options.grace_period)
    with storage_lost_as_error(options.storage), _interrupted_once():
        with ExitStack() as stack:
            run = _set_up(options, storage, assets, records, launcher_factory, stack)
            _search(run)
            interrupted = _race(run)
        report = publish_report(run.study, run.options.report_dir, quiet=run.options.quiet)
        if interrupted:
            raise KeyboardInterrupt
        if report["best"] is None:
            raise _no_feasible_trial(run, report["trials"])
    return 0


def _set_up(options: TuningOptions, storage: BaseStorage, assets: "PreparedAssets | None",
            records: Records | None, launcher_factory: LauncherFactory,
            stack: ExitStack) -> TuningRun:
    """The host lock, the model and what is sent to it (autotune.tuning.traffic: the
    workload and its gate), the launchers, the space, the study (a dead tuner's trial
    failed first) and the progress display, each entered on `stack` so that whatever
    happens next they are released."""
    if not options.allow_concurrent:
        stack.enter_context(HostLock())
    machine = detect_host()
    host = within_limits(machine, options)
    traffic = build_traffic(options, assets, records)
    options = dataclasses.replace(options, batch_size=traffic.batch_size)
    launcher = stack.enter_context(instance_group(options, traffic.model, host,
                                                   launcher_factory))
    check_limits(options, machine, launcher.kind)
    space = space_of(options, host)
    host_class = host_class_of(options, host, launcher.kind, traffic)
    sources = warm_start_sources(storage, options, host_class)
    study = open_study(options, storage, host_class, host, launcher, traffic)
    workload = measured_load(options, traffic.workload,
                             loadgen_log_root(options.report_dir, study.study_name))
    fail_orphaned_trials(study)
    stack.enter_context(report_when_interrupted(study, options.report_dir))
    progress = stack.enter_context(make_progress(options.quiet))
    objective = TrialObjective(space, launcher, workload, traffic.gate, progress, options)
    return TuningRun(options, storage, host, traffic.model, launcher, launcher_factory, space,
                     study, objective, progress, sources)


def _search(run: TuningRun) -> None:
    """Say when the host is busy, plan the trials (once per host class) and run them
    while the budget lasts."""
    options, study = run.options, run.study
    load = run.objective.meter.over(START_SAMPLE_S)
    if load.busier_than(BUSY_SHARE):
        run.progress.note(f"[yellow]the host is busy: {load.foreign_cpu:.0%} of its CPU used "
                          f"by other processes, {load.steal:.0%} stolen by the hypervisor; "
                          "the answer will be for a host that busy[/]")
    named = baselines(run.space, run.host, options.mode, run.launcher.image_env())
    image_defaults = named[-1].params  # baselines(): the tutorial's, then the image's
    warm = transfers(run.warm_sources, run.host, run.space, image_defaults, options.racing_top,
                     [baseline.params for baseline in named])
    budget = open_budget(study, run.storage,
                         lambda: plan_trials(study, run.space, named, options.budget, warm))
    run_trials(Coordinator(study, run.storage, budget, run.space.suggest), run.objective,
               options.timeout, run.progress)


def _race(run: TuningRun) -> bool:
    """Race the finalists when there is a feasible trial and a racing budget, and the run
    does not right-size (its answer is the smallest CPU limit that holds the rate, not the
    fastest configuration); whether the race was interrupted (what it measured is kept)."""
    options, study = run.options, run.study
    if (not options.racing_budget or options.target_qps is not None
            or best_feasible_trial(study) is None):
        return False
    more_launchers = partial(instance_group, options, run.model, run.host,
                             run.launcher_factory, run.launcher.kind)
    trials = complete_trials(study)
    with run.objective.racing_rounds(more_launchers, measured_memory(trials),
                                     found_values(trials)) as (measure_round, meter):
        record = race_study(study, options.racing_top, measure_round, options.racing_budget,
                            options.confirm_precision, run.progress, meter=meter,
                            quiet=run.objective.quiet)
    return record.stopped == "interrupted"


def _no_feasible_trial(run: TuningRun, counts: dict[str, int]) -> NoFeasibleTrialError:
    """Why no trial is the answer: how many were measured, infeasible (only the constraints
    that were missed: the gate, the memory limit, the target rate) and failed, and in
    server mode the bound this host could meet."""
    study, options = run.study, run.options
    trials = study.get_trials(deepcopy=False)
    reasons = "; ".join(filter(None, (
        run.objective.gate.unmet(complete_trials(study)),
        over_limit_summary(trials, options.max_memory_mb), _missed_target(options))))
    return NoFeasibleTrialError(
        f"no feasible trial in study {study.study_name!r}: {counts.get('COMPLETE', 0)} "
        f"measured ({counts['infeasible']} infeasible{': ' + reasons if reasons else ''}), "
        f"{counts.get('FAIL', 0)} failed{_missed_bound(study, options)}")


def _missed_target(options: TuningOptions) -> str:
    """Right-sizing: the rate no CPU limit held."""
    if options.target_qps is None:
        return ""
    return (f"right-sizing: no CPU limit held --target-qps {options.target_qps:g} under "
            f"p99 <= {options.p99_ms:g} ms (lower the target or loosen the bound)")


def _missed_bound(study: optuna.Study, options: TuningOptions) -> str:
    """Server mode: how many trials missed the p99 bound at every rate, the best p99 they
    saw at the lowest rate, and a bound to rerun with (half as loose again as that p99)."""
    missed = [t.user_attrs[TrialAttr.MISSED_P99_MS] for t in study.get_trials(
        deepcopy=False, states=(TrialState.FAIL,)) if TrialAttr.MISSED_P99_MS in t.user_attrs]
    if not missed:
        return ""
    best = min(missed)
    return (f"; {len(missed)} missed p99 <= {options.p99_ms:g} ms even at "
            f"{options.peak_policy.min_qps:g} requests/s (the best p99 there: {best:.2f} ms): "
            f"this host needs a looser bound, e.g. --p99-ms {math.ceil(1.5 * best)}")


@contextmanager
def _interrupted_once() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the run once: the first raises KeyboardInterrupt (the trial
    is marked, the servers stopped, the report written, exit 130); one arriving while
    that stop runs is only acknowledged, so it cannot cut the stop short (a second
    Ctrl-C 0.3 s after the first skipped the .html report)."""
    stopping: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        if stopping:
            print("autotune: already stopping: its servers are stopped and its report "
                  "written, then it exits", file=sys.stderr, flush=True)
            return
        stopping.append(signum)
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
