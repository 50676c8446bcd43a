"""The tuning study: the Optuna objective and the orchestration of one `autotune --mode` run.

A run takes the host lock, prepares data and model if missing, picks the launcher,
opens (or resumes) the study, enqueues what has not been measured yet (the baselines,
and every configuration when the whole space fits the budget), then runs trials one by
one with ask-and-tell: restart the server with the trial's settings, measure, score the
eval set through the same server, record. Optuna's `trial.set_constraint` carries the
accuracy floors, so TPE and `best_trial` skip infeasible trials (TPESampler reads them
itself; its `constraints_func` is deprecated since Optuna 5.0). After the search the
finalists (the best, the baselines and, when `instances` was searched, the best single
instance) are raced (autotune.racing) until the data decides, online and batch with
their servers side by side (autotune.measure.side_by_side), and autotune.report publishes the
result. Whatever differs by mode (the measurement, the space's batching
knobs and instance counts, the defaults of budget, finalists and gate) is read from the
run's `Mode` (autotune.modes). Every trial runs through an `InstanceGroup`, so a trial
of `instances` N starts N pinned servers; their memory is recorded (`rss_mb`) and, with
`--max-memory-mb`, is a constraint like the floors (autotune.record.memory).

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
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from autotune.assets.prepare import check_assets
from autotune.data.eval_rows import EvalRows
from autotune.errors import NoFeasibleTrialError
from autotune.fleet import (
    Coordinator,
    open_budget,
)
from autotune.host.facts import HostFacts, detect_host
from autotune.host.lock import HostLock
from autotune.launch import make_launcher
from autotune.launch.base import Launcher, ModelLocation
from autotune.launch.group import InstanceGroup
from autotune.measure.accuracy import AccuracyGate
from autotune.measure.peak import ServerLoad
from autotune.measure.workload import Workload
from autotune.model.metrics import HR_LABEL, NDCG_LABEL
from autotune.options import TuningOptions
from autotune.paths import MODEL_NAME
from autotune.progress import Progress, make_progress
from autotune.protocols import REST
from autotune.racing.race import race_study
from autotune.record.memory import measured_memory, over_limit_summary
from autotune.record.schema import (
    TrialAttr,
    best_feasible_trial,
    complete_trials,
)
from autotune.record.storage import open_storage, storage_lost_as_error
from autotune.report.publish import publish_report
from autotune.report.server_files import loadgen_log_root
from autotune.search.space import SearchSpace, baselines, build_space
from autotune.tuning.preflight import check_options, check_run
from autotune.tuning.recovery import fail_orphaned_trials, report_when_interrupted
from autotune.tuning.study import open_study, plan_trials
from autotune.tuning.trials import TrialObjective, run_trials

if TYPE_CHECKING:
    from autotune.assets.prepare import PreparedAssets

#: makes the launcher for `--server KIND`, the model, `image=--image` and `rest=` whether
#: REST is measured
LauncherFactory = Callable[..., Launcher]


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
    check_run(options)
    storage = open_storage(options.storage, heartbeat_interval=options.heartbeat_interval,
                           grace_period=options.grace_period)
    with storage_lost_as_error(options.storage), _interrupted_once():
        with ExitStack() as stack:
            run = _set_up(options, storage, assets, launcher_factory, stack)
            _search(run)
            interrupted = _race(run)
        report = publish_report(run.study, options.report_dir, quiet=options.quiet)
        if interrupted:
            raise KeyboardInterrupt
        if report["best"] is None:
            raise _no_feasible_trial(run.study, options, report["trials"])
    return 0


def _set_up(options: TuningOptions, storage: BaseStorage, assets: "PreparedAssets | None",
            launcher_factory: LauncherFactory, stack: ExitStack) -> TuningRun:
    """The host lock, the assets, the launchers, the space, the workload and its gate, the
    study (a dead tuner's trial failed first) and the progress display, each entered on
    `stack` so that whatever happens next they are released."""
    if not options.allow_concurrent:
        stack.enter_context(HostLock())
    host = detect_host()
    assets = check_assets(assets) if assets else _prepare(options)
    model = ModelLocation(Path(assets.model_dir), MODEL_NAME)
    launcher = stack.enter_context(_instance_group(options, model, host, launcher_factory))
    mode = options.mode
    space = build_space(host, options.max_threads, options.space == "extended",
                        batching=mode.searches_batching, instances=mode.searches_instances)
    eval_rows = EvalRows.load(Path(assets.eval_path))
    workload = Workload.build(mode, options.objective, options.batch_size, options.iterations,
                              eval_rows, options.seed, options.latency_policy,
                              precision=options.precision)
    gate = AccuracyGate(eval_rows.sample_users(options.gate_users, options.seed),
                        options.min_hr, options.min_ndcg)
    study = open_study(options, storage, host, launcher, workload, Path(assets.model_dir))
    if mode.bounded:
        workload = dataclasses.replace(workload, server_load=ServerLoad(
            options.bounded_run, options.peak_policy,
            loadgen_log_root(options.report_dir, study.study_name)))
    fail_orphaned_trials(study)
    stack.enter_context(report_when_interrupted(study, options.report_dir))
    progress = stack.enter_context(make_progress(options.quiet))
    objective = TrialObjective(space, launcher, workload, gate, options.start_timeout, progress,
                               options.request_timeout, options.protocol, options.max_memory_mb)
    return TuningRun(options, storage, host, model, launcher, launcher_factory, space, study,
                     objective, progress)


def _search(run: TuningRun) -> None:
    """Plan the trials (once per host class) and run them while the budget lasts."""
    options, study = run.options, run.study
    named = baselines(run.space, run.host, options.mode, run.launcher.image_env())
    budget = open_budget(study, run.storage,
                         lambda: plan_trials(study, run.space, named, options.budget))
    run_trials(Coordinator(study, run.storage, budget, run.space.suggest), run.objective,
               options.timeout, run.progress)


def _race(run: TuningRun) -> bool:
    """Race the finalists when there is a feasible trial and a racing budget; whether the
    race was interrupted (what it measured is kept)."""
    options, study = run.options, run.study
    if not options.confirm_budget or best_feasible_trial(study) is None:
        return False
    more_launchers = partial(_instance_group, options, run.model, run.host,
                             run.launcher_factory, run.launcher.kind)
    memory_of = measured_memory(complete_trials(study))
    with run.objective.racing_rounds(more_launchers, memory_of) as measure_round:
        record = race_study(study, options.racing_top, measure_round, options.confirm_budget,
                            options.confirm_precision, run.progress)
    return record.stopped == "interrupted"


def _no_feasible_trial(study: optuna.Study, options: TuningOptions,
                       counts: dict[str, int]) -> NoFeasibleTrialError:
    """Why no trial is the answer: how many were measured, infeasible (how many below the
    floors, how many above the memory limit: only those that were) and failed, and in
    server mode the bound this host could meet."""
    trials = study.get_trials(deepcopy=False)
    below = sum(trial.user_attrs.get(TrialAttr.ACCURACY_OK) is False for trial in trials)
    reasons = "; ".join(filter(None, (
        below and f"{below} below the floors {HR_LABEL} >= {options.min_hr}, "
                  f"{NDCG_LABEL} >= {options.min_ndcg}",
        over_limit_summary(trials, options.max_memory_mb))))
    return NoFeasibleTrialError(
        f"no feasible trial in study {study.study_name!r}: {counts.get('COMPLETE', 0)} "
        f"measured ({counts['infeasible']} infeasible{': ' + reasons if reasons else ''}), "
        f"{counts.get('FAIL', 0)} failed{_missed_bound(study, options)}")


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


def _prepare(options: TuningOptions) -> "PreparedAssets":
    from autotune.assets.prepare import prepare_assets

    return prepare_assets(dataset=options.dataset, data_dir=options.data_dir,
                          model_dir=options.model_dir, epochs=options.epochs, seed=options.seed,
                          download=options.download, quiet=options.quiet)


def _instance_group(options: TuningOptions, model: ModelLocation, host: HostFacts,
                    launcher_factory: LauncherFactory, kind: str | None = None) -> InstanceGroup:
    """The launchers for `--server` (or of `kind`), grouped so that a trial can run several
    instances; the first decides `auto`, the others are of its kind."""
    rest = options.protocol == REST
    first = launcher_factory(kind or options.server, model, image=options.image, rest=rest)
    unused = [first]
    return InstanceGroup(lambda: unused.pop() if unused else
                         launcher_factory(first.kind, model, image=options.image, rest=rest),
                         host)


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
