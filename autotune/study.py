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
their servers side by side (autotune.side_by_side), and autotune.report publishes the
result. Whatever differs by mode (the measurement, the space's batching
knobs and instance counts, the defaults of budget, finalists and gate) is read from the
run's `Mode` (autotune.modes). Every trial runs through an `InstanceGroup`, so a trial
of `instances` N starts N pinned servers; their memory is recorded (`rss_mb`) and, with
`--max-memory-mb`, is a constraint like the floors (autotune.memory).

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
left RUNNING (autotune.recovery). Ctrl-C during the racing keeps what it measured,
writes the report, then exits 130.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
import warnings
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from autotune.accuracy import AccuracyGate
from autotune.errors import (
    AutotuneError,
    BoundMissedError,
    MeasurementError,
    NoFeasibleTrialError,
    UsageError,
)
from autotune.eval_rows import EvalRows
from autotune.fleet import (
    Coordinator,
    Heartbeat,
    HostClass,
    check_host_class,
    hardware_parts,
    make_host_class,
    model_fingerprint,
    open_budget,
    requeue_stale_trial,
    server_build,
)
from autotune.host import HostFacts, detect_host
from autotune.launch import make_launcher
from autotune.launch.base import Launcher, ModelLocation, ServerSettings
from autotune.launch.group import InstanceGroup
from autotune.launch.running import RunningServer, running_server
from autotune.lock import HostLock
from autotune.measure import Workload
from autotune.memory import MemoryCheck, measured_memory, over_limit_summary
from autotune.metrics import HR_LABEL, NDCG_LABEL
from autotune.modes import MODES, Mode
from autotune.options import DEFAULT_BUDGET, DEFAULT_REQUEST_TIMEOUT_S, TuningOptions
from autotune.paths import MODEL_NAME
from autotune.peak import ServerLoad
from autotune.preflight import check_assets, check_run
from autotune.progress import Progress, make_progress
from autotune.protocols import GRPC, PROTOCOL_LABELS, REST
from autotune.racing import MeasureRound, one_at_a_time, race_study
from autotune.recovery import fail_orphaned_trials, report_when_interrupted
from autotune.report.publish import publish_report
from autotune.report.server_files import loadgen_log_root
from autotune.schema import (
    COMPARABLE_STUDY_ATTRS,
    STUDY_ATTRS_BEFORE_RECORDED,
    StudyAttr,
    TrialAttr,
    best_feasible_trial,
    complete_trials,
    planned_params,
    record_accuracy,
    record_failure,
)
from autotune.side_by_side import MemoryOf, SideBySide
from autotune.space import (
    Baseline,
    SearchSpace,
    baselines,
    build_space,
    describe_params,
    settings_from_params,
)
from autotune.storage import open_storage

if TYPE_CHECKING:
    from autotune.prepare import PreparedAssets

#: makes the launcher for `--server KIND`, the model, `image=--image` and `rest=` whether
#: REST is measured
LauncherFactory = Callable[..., Launcher]
MAX_FAILURES_IN_A_ROW = 3


class StudyAbortedError(AutotuneError):
    """Too many trials failed in a row: the server or its settings are broken."""


def run_tuning(options: TuningOptions, assets: "PreparedAssets | None" = None,
               launcher_factory: LauncherFactory = make_launcher) -> int:
    """Run (or resume) the study for `options` and report it; the exit code.

    `assets` are already prepared data and model (tests, or callers that prepared them),
    checked here; by default they are prepared here from the data options. Every flag,
    path and URL is checked before the first trial (autotune.preflight).
    `launcher_factory` makes the launcher from `--server`, the model, `--image` and
    whether REST is measured (`autotune.launch.make_launcher`; tests pass their own).
    """
    check_options(options)
    check_run(options)
    storage = open_storage(options.storage, heartbeat_interval=options.heartbeat_interval,
                           grace_period=options.grace_period,
                           stale_trial_callback=requeue_stale_trial)
    with ExitStack() as stack:
        if not options.allow_concurrent:
            stack.enter_context(HostLock())
        stack.enter_context(_sigterm_as_interrupt())
        host = detect_host()
        assets = check_assets(assets) if assets else _prepare(options)
        model = ModelLocation(Path(assets.model_dir), MODEL_NAME)
        launcher = stack.enter_context(_instance_group(options, model, host, launcher_factory))
        mode = options.mode
        space = build_space(host, options.max_threads, options.space == "extended",
                            batching=mode.searches_batching,
                            instances=mode.searches_instances)
        eval_rows = EvalRows.load(Path(assets.eval_path))
        workload = Workload.build(mode, options.objective, options.batch_size,
                                  options.iterations, eval_rows, options.seed,
                                  options.latency_policy, precision=options.precision)
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
        named = baselines(space, host, mode, launcher.image_env())
        budget = open_budget(study, storage,
                             lambda: plan_trials(study, space, named, options.budget))
        objective = TrialObjective(space, launcher, workload, gate, options.start_timeout, progress,
                                   options.request_timeout, options.protocol,
                                   options.max_memory_mb)
        run_trials(Coordinator(study, storage, budget, space.suggest), objective, options.timeout,
                   progress)
        interrupted = False
        if options.confirm_budget and best_feasible_trial(study) is not None:
            more_launchers = partial(_instance_group, options, model, host, launcher_factory,
                                     launcher.kind)
            memory_of = measured_memory(complete_trials(study))
            with objective.racing_rounds(more_launchers, memory_of) as measure_round:
                record = race_study(study, options.racing_top, measure_round,
                                    options.confirm_budget, options.confirm_precision, progress)
            interrupted = record.stopped == "interrupted"
    report = publish_report(study, options.report_dir, quiet=options.quiet)
    if interrupted:
        raise KeyboardInterrupt
    if report["best"] is None:
        counts = report["trials"]
        memory = over_limit_summary(study.get_trials(deepcopy=False), options.max_memory_mb)
        raise NoFeasibleTrialError(
            f"no feasible trial in study {study.study_name!r}: {counts.get('COMPLETE', 0)} "
            f"measured ({counts['infeasible']} infeasible: below the floors {HR_LABEL} >= "
            f"{options.min_hr}, {NDCG_LABEL} >= {options.min_ndcg}"
            f"{'; ' + memory if memory else ''}), {counts.get('FAIL', 0)} failed"
            f"{_missed_bound(study, options)}")
    return 0


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


def check_options(options: TuningOptions) -> None:
    """Refuse values no run can use, with the reason (`UsageError`, exit 2)."""
    problems = [message for bad, message in (
        (not 0 <= options.min_hr <= 1, f"--min-hr {options.min_hr} is not within [0, 1]"),
        (not 0 <= options.min_ndcg <= 1, f"--min-ndcg {options.min_ndcg} is not within [0, 1]"),
        (not 0 <= options.precision < 1, f"--precision {options.precision} is not within [0, 1)"),
        (options.p99_ms <= 0, f"--p99-ms {options.p99_ms:g} must be > 0 (a latency bound in ms)"),
        (options.confirm_budget < 0, f"--confirm-budget {options.confirm_budget} is negative"),
        (not 0 < options.confirm_precision < 1,
         f"--confirm-precision {options.confirm_precision} is not within (0, 1)"),
        (options.timeout is not None and options.timeout <= 0, "--timeout must be positive"),
        (options.start_timeout <= 0, "--start-timeout must be positive"),
        (options.heartbeat_interval < 1, "--heartbeat-interval must be at least 1 second"),
        (options.grace_period <= options.heartbeat_interval,
         "--grace-period must be longer than --heartbeat-interval"),
        (options.request_timeout <= 0, "--request-timeout must be positive"),
        (options.protocol not in options.mode.protocols, _unmeasurable(options)),
        (options.max_memory_mb is not None and options.max_memory_mb <= 0,
         "--max-memory-mb must be positive"),
    ) if bad]
    if problems:
        raise UsageError("; ".join(problems))


def _unmeasurable(options: TuningOptions) -> str:
    """Why `--protocol` cannot be measured in `--mode`, and what can."""
    mode, label = options.mode, PROTOCOL_LABELS.get(options.protocol, options.protocol)
    able = [name for name, other in MODES.items() if options.protocol in other.protocols]
    return (f"--mode {mode.name} measures over "
            f"{' and '.join(PROTOCOL_LABELS[p] for p in mode.protocols)} only; use --protocol "
            f"{mode.protocols[0]}, or --mode {' or '.join(able) or '(none)'} to measure {label}")


def _prepare(options: TuningOptions) -> "PreparedAssets":
    from autotune.prepare import prepare_assets

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
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so a killed run also stops its server and marks its trial."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def host_class_of(options: TuningOptions, host: HostFacts, server: str,
                  model_dir: Path) -> HostClass:
    """This host's class for this run (autotune.fleet.host_class)."""
    study_parts = {"mode": options.mode.name, "objective": options.stored_objective,
                   "space": options.space, "max_threads": options.max_threads,
                   "dataset": options.dataset,
                   # only REST is named: gRPC studies keep the classes (and names) they had
                   **({"protocol": options.protocol} if options.protocol != GRPC else {})}
    return make_host_class(hardware_parts(host), server_build(server, options.image),
                           model_fingerprint(model_dir), study_parts, options.host_class)


def open_study(options: TuningOptions, storage: BaseStorage, host: HostFacts, launcher: Launcher,
               workload: Workload, model_dir: Path) -> optuna.Study:
    """Create the study, or load it and check that its stored setup matches this run."""
    host_class = host_class_of(options, host, launcher.kind, model_dir)
    name = options.study_name or host_class.study_name()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                direction=workload.mode.direction)
    attrs: dict[str, object] = {
        StudyAttr.MODE: options.mode.name, StudyAttr.OBJECTIVE: options.stored_objective,
        StudyAttr.SERVER: launcher.kind, StudyAttr.PROTOCOL: options.protocol,
        StudyAttr.SPACE: options.space,
        StudyAttr.BATCH_SIZE: options.mode.batch_size(options.batch_size),
        StudyAttr.MIN_HR: options.min_hr, StudyAttr.MIN_NDCG: options.min_ndcg,
        StudyAttr.PRECISION: options.precision,
        **({StudyAttr.P99_MS: options.p99_ms} if options.mode.bounded else {}),
        StudyAttr.MAX_MEMORY_MB: options.max_memory_mb,
        StudyAttr.HOST: host.as_dict(), StudyAttr.IMAGE: options.image,
        StudyAttr.LAUNCHER: launcher.describe(), StudyAttr.MODEL_DIR: str(model_dir.resolve()),
    }
    stored = ({**STUDY_ATTRS_BEFORE_RECORDED, **study.user_attrs} if study.user_attrs
              else study.user_attrs)
    mismatched = [f"{key} {stored[key]!r} (this run: {attrs.get(key)!r})"
                  for key in COMPARABLE_STUDY_ATTRS
                  if key in stored and stored[key] != attrs.get(key)]
    if mismatched or study.direction.name.lower() != workload.mode.direction:
        raise UsageError(f"study {name!r} was measured with another setup: "
                         f"{'; '.join(mismatched) or 'another direction'}; "
                         "pass --study-name to start a new study")
    check_host_class(study, host_class)
    with warnings.catch_warnings():  # experimental in name only since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([workload.mode.metric])
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    # constant_liar: a worker's sampler counts the configurations others are measuring
    study.sampler = optuna.samplers.TPESampler(seed=options.seed + len(study.trials),
                                               constant_liar=True)
    return study


def plan_trials(study: optuna.Study, space: SearchSpace, named: list[Baseline],
                requested: int | None) -> int:
    """Enqueue what is still unmeasured; return how many trials this run makes.

    Baselines go first, each until it has a COMPLETE (or waiting, or running) trial, so a
    resumed study or a second worker does not repeat them but retries one that failed or
    was interrupted. When the whole space is no larger than the budget (`requested`, else
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


class TrialObjective:
    """Measures one configuration: server restart, objective, accuracy gate, trial record."""

    def __init__(self, space: SearchSpace, launcher: InstanceGroup, workload: Workload,
                 gate: AccuracyGate, start_timeout_s: float, progress: Progress,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                 protocol: str = GRPC, max_memory_mb: float | None = None) -> None:
        self.space = space
        self.protocol = protocol
        self.launcher = launcher
        self.workload = workload
        self.gate = gate
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self.progress = progress
        self.max_memory_mb = max_memory_mb

    def __call__(self, trial: optuna.Trial) -> float:
        """Measure the trial's settings, record its attrs and constraints; its objective value."""
        params = self.space.suggest(trial)
        baseline = trial.user_attrs.get(TrialAttr.BASELINE)
        self.progress.step(f"trial {trial.number} {describe_params(params)}"
                           + (f" ({baseline})" if baseline else ""))
        settings = settings_from_params(params)
        with self._running(settings) as server:
            trial.set_user_attr(TrialAttr.STARTUP_S, round(server.startup_s, 3))
            if self.launcher.exposure:  # named in the report (autotune.launch.base)
                trial.study.set_user_attr(StudyAttr.EXPOSURE, self.launcher.exposure)
            value, attrs = self.workload.measure(server.clients, self.progress.phase,
                                                 server.in_flight)
            self.progress.phase("accuracy")
            accuracy = self.gate.check(server.client, settings.batching and
                                       settings.batching.max_batch_size)
            memory = self._memory()
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        for name, values in ((TrialAttr.CPUSETS, self.launcher.cpusets),
                             (TrialAttr.CPUSET_MEMS, self.launcher.cpuset_mems)):
            if any(values):
                trial.set_user_attr(name, values)
        record_accuracy(trial, accuracy, memory)
        return value

    def _memory(self) -> MemoryCheck | None:
        """The running servers' memory against the limit; None when unknown and unlimited."""
        rss_mb = self.launcher.rss_mb()
        if rss_mb is None and self.max_memory_mb is not None:
            raise MeasurementError(f"cannot read the memory of the {self.launcher.kind} server(s), "
                                   "which --max-memory-mb needs")
        return None if rss_mb is None else MemoryCheck(rss_mb, self.max_memory_mb)

    def remeasure(self, params: dict[str, object]) -> float:
        """The objective of `params` once more (the racing): no gate, no trial."""
        with self._running(settings_from_params(params)) as server:
            return self.workload.measure(server.clients, self.progress.phase,
                                         server.in_flight)[0]

    @contextmanager
    def racing_rounds(self, make_launcher: Callable[[], Launcher],
                      memory_of: MemoryOf) -> Iterator[MeasureRound]:
        """How the race measures a round: every finalist's server at once with requests
        alternating between them (autotune.side_by_side, on launchers `make_launcher`
        builds, in groups that fit in memory by what `memory_of` says each configuration
        took) where the mode races side by side, else one after another (`remeasure`)."""
        if not self.workload.mode.races_side_by_side:
            yield one_at_a_time(self.remeasure, self.progress)
            return
        with SideBySide(make_launcher, self.workload, self.start_timeout_s,
                        self.request_timeout_s, self.protocol, self.progress,
                        memory_of=memory_of) as side_by_side:
            yield side_by_side

    def _running(self, settings: ServerSettings) -> ContextManager[RunningServer]:
        return running_server(self.launcher, settings, MODEL_NAME, self.start_timeout_s,
                              self.progress.phase, self.request_timeout_s, self.protocol)


def run_trials(coordinator: Coordinator, objective: TrialObjective, timeout_s: float | None,
               progress: Progress) -> None:
    """Run trials while the class's budget lasts (no new one after `timeout_s`), then wait
    for the other workers' trials of the budget; see the module docstring."""
    study = coordinator.study
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    mode = objective.workload.mode
    failures_in_a_row = 0
    budget = coordinator.budget
    progress.begin(f"study {study.study_name}: {budget.trials} trials", budget.trials)
    while deadline is None or time.monotonic() < deadline:
        trial = coordinator.claim()
        if trial is None:
            if not coordinator.others_running():
                break
            progress.phase("waiting for the trials of other workers")
            coordinator.wait()
            continue
        try:
            with Heartbeat(coordinator.storage, trial._trial_id):
                value = objective(trial)
        except MeasurementError as error:
            missed = isinstance(error, BoundMissedError)  # a finding, not a broken server
            if missed:
                trial.set_user_attr(TrialAttr.MISSED_P99_MS, error.p99_ms)
                trial.set_user_attr(TrialAttr.RATES_TRIED, error.rates_tried)
            record_failure(study, trial, str(error))
            failures_in_a_row = 0 if missed else failures_in_a_row + 1
            progress.done(f"trial {trial.number} FAIL: {str(error).splitlines()[0]}",
                          _best_text(study, mode))
            if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise StudyAbortedError(f"{failures_in_a_row} trials in a row failed; the last: "
                                        f"{error}") from None
            continue
        except KeyboardInterrupt:
            record_failure(study, trial, "interrupted")
            raise
        except AutotuneError as error:  # e.g. the launcher became unusable: ends the study
            record_failure(study, trial, str(error))
            raise
        except BaseException as error:
            record_failure(study, trial, f"internal error: {error!r}")
            raise
        frozen = study.tell(trial, value)
        failures_in_a_row = 0
        progress.done(_trial_line(frozen, mode), _best_text(study, mode))


def _best_text(study: optuna.Study, mode: Mode) -> str | None:
    best = best_feasible_trial(study)
    return None if best is None else f"{mode.format(best.value)} (trial {best.number})"


def _trial_line(trial: optuna.trial.FrozenTrial, mode: Mode) -> str:
    attrs = trial.user_attrs
    verdict = (f"[red]infeasible: {attrs[TrialAttr.INFEASIBLE]}[/]"
               if TrialAttr.INFEASIBLE in attrs else "ok")
    baseline = f" ({attrs[TrialAttr.BASELINE]})" if TrialAttr.BASELINE in attrs else ""
    return (f"trial {trial.number} {describe_params(trial.params)}{baseline}: "
            f"{mode.format(trial.value)}, {HR_LABEL} {attrs[TrialAttr.HR]:.3f} "
            f"{NDCG_LABEL} {attrs[TrialAttr.NDCG]:.3f} {verdict}")
