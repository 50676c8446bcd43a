"""The tuning study: the Optuna objective and the orchestration of one `autotune --mode` run.

A run takes the host lock, prepares data and model if missing, picks the launcher,
opens (or resumes) the study, enqueues what has not been measured yet (the baselines,
and every configuration when the whole space fits the budget), then runs trials one by
one with ask-and-tell: restart the server with the trial's settings, measure, score the
eval set through the same server, record. Optuna's `trial.set_constraint` carries the
accuracy floors, so TPE and `best_trial` skip infeasible trials (TPESampler reads them
itself; its `constraints_func` is deprecated since Optuna 5.0). After the search a
confirmation round (autotune.confirm) re-measures the best and the baselines, and
autotune.report writes the result.

Several tuners may share the study (hosts of one class on one PostgreSQL storage, see
autotune.fleet): planning and claiming a trial happen under a storage lock, `--trials`
is the class's shared budget, and a trial whose worker stops its heartbeat is failed
and its configuration measured again by another worker.

A failed trial (server did not start, died, errored) is FAIL with its reason and the
study goes on; three in a row end it. Ctrl-C (or SIGTERM) marks the running trial FAIL
("interrupted"), stops its server, writes the report of the completed trials and ends
with exit 130; a rerun resumes the study, after marking FAIL the trials a killed tuner
left RUNNING (autotune.recovery).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from autotune.accuracy import AccuracyGate, AccuracyResult
from autotune.client import LatencyPolicy
from autotune.confirm import pick_candidates, run_confirmation
from autotune.errors import AutotuneError, NoFeasibleTrialError, UsageError
from autotune.eval_rows import EvalRows
from autotune.fleet import (
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
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
from autotune.launch.base import Launcher, ModelLocation
from autotune.loadgen import RunSettings
from autotune.lock import HostLock
from autotune.measure import DEFAULT_REQUEST_TIMEOUT_S, MeasurementError, Workload, running_server
from autotune.paths import DEFAULT_REPORT_DIR, DEFAULT_STORAGE, MODEL_NAME
from autotune.peak import PeakPolicy, ServerLoad
from autotune.preflight import check_assets, check_run
from autotune.progress import Progress, make_progress
from autotune.recovery import fail_orphaned_trials, report_when_interrupted
from autotune.report import format_objective, publish_report
from autotune.server_report import loadgen_log_root
from autotune.space import (
    Baseline,
    SearchSpace,
    baselines,
    build_space,
    describe_params,
    image_default_env,
    settings_from_params,
)
from autotune.storage import open_storage

if TYPE_CHECKING:
    from autotune.prepare import PreparedAssets

#: trials when the space is larger than the budget and `--trials` is not given
DEFAULT_BUDGET = 30
#: server-mode trials each search a peak rate (~10 LoadGen runs): a smaller budget and
#: confirmation keep a default run under 20 minutes on a small host
SERVER_BUDGET = 14
#: (configurations, rounds) of the confirmation round when not given, by mode
DEFAULT_CONFIRMATION = {"server": (2, 2)}
#: server mode's gate scores a seeded sample of users unless told otherwise: with
#: batching on, its requests are cut to the trial's max_batch_size
SERVER_ACCURACY_USERS = 500
MAX_FAILURES_IN_A_ROW = 3
#: study attrs that must match for a resumed study's trials to be comparable
COMPARABLE_ATTRS = ("mode", "objective", "server", "space", "batch_size", "min_hr", "min_ndcg",
                    "p99_ms")


class StudyAbortedError(AutotuneError):
    """Too many trials failed in a row: the server or its settings are broken."""


@dataclass(frozen=True)
class TuningOptions:
    """Everything one tuning run needs; mirrors the `autotune --mode` flags."""

    mode: str
    server: str = "auto"
    image: str = "autotune/serving:mkl"
    start_timeout: float = 120.0
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    trials: int | None = None
    timeout: float | None = None
    space: str = "default"
    max_threads: int | None = None
    objective: str = "mean"
    batch_size: int = 50_000
    iterations: int = 40
    min_hr: float = 0.22
    min_ndcg: float = 0.11
    accuracy_users: int | None = None
    #: None: the mode's default (DEFAULT_CONFIRMATION, else 3 and 3)
    confirm_top: int | None = None
    confirm_rounds: int | None = None
    #: server mode: the p99 latency bound in milliseconds
    p99_ms: float = 10.0
    dataset: str = "synthetic"
    data_dir: Path | None = None
    model_dir: Path | None = None
    epochs: int | None = None
    seed: int = 0
    download: bool = False
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    report_dir: Path = DEFAULT_REPORT_DIR
    allow_concurrent: bool = False
    #: group this host by hand instead of by its hardware (autotune.fleet.host_class)
    host_class: str | None = None
    #: Optuna heartbeat: a trial whose worker is silent for `grace_period` s is failed
    #: and its configuration queued again (short values only in tests)
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S
    grace_period: int = GRACE_PERIOD_S
    quiet: bool = False
    #: how long an online measurement runs (no flag: the default suits every host)
    latency_policy: LatencyPolicy = LatencyPolicy()
    #: server mode: each LoadGen run's length (its bound is `p99_ms`) and the rate search
    loadgen_run: RunSettings = RunSettings()
    peak_policy: PeakPolicy = PeakPolicy()

    def confirmation_plan(self) -> tuple[int, int]:
        """(configurations, rounds) of the confirmation round: as given, else the mode's."""
        top, rounds = DEFAULT_CONFIRMATION.get(self.mode, (3, 3))
        return (top if self.confirm_top is None else self.confirm_top,
                rounds if self.confirm_rounds is None else self.confirm_rounds)

    def server_load(self, log_root: Path) -> ServerLoad:
        """How server-mode trials load the server; LoadGen's logs go under `log_root`."""
        return ServerLoad(dataclasses.replace(self.loadgen_run, bound_ms=self.p99_ms),
                          self.peak_policy, log_root)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "TuningOptions":
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    @property
    def stored_objective(self) -> str:
        """The objective as stored in the study: the latency statistic, or throughput."""
        if self.mode == "server":
            return f"qps at p99 <= {self.p99_ms:g} ms"
        return self.objective if self.mode == "online" else "throughput"


def run_tuning(options: TuningOptions, assets: "PreparedAssets | None" = None) -> int:
    """Run (or resume) the study for `options` and report it; the exit code.

    `assets` are already prepared data and model (tests, or callers that prepared them),
    checked here; by default they are prepared here from the data options. Every flag,
    path and URL is checked before the first trial (autotune.preflight).
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
        launcher = stack.enter_context(_make_launcher(options, model))
        server_mode = options.mode == "server"
        space = build_space(host, options.max_threads, options.space == "extended",
                            batching=server_mode)
        eval_rows = EvalRows.load(Path(assets.eval_path))
        workload = Workload.build(options.mode, options.objective, options.batch_size,
                                  options.iterations, eval_rows, options.seed,
                                  options.latency_policy)
        accuracy_users = options.accuracy_users or (SERVER_ACCURACY_USERS if server_mode else None)
        gate = AccuracyGate(eval_rows.sample_users(accuracy_users, options.seed),
                            options.min_hr, options.min_ndcg)
        study = open_study(options, storage, host, launcher, workload, Path(assets.model_dir))
        if server_mode:
            workload = dataclasses.replace(workload, server_load=options.server_load(
                loadgen_log_root(options.report_dir, study.study_name)))
        fail_orphaned_trials(study)
        stack.enter_context(report_when_interrupted(study, options.report_dir))
        progress = stack.enter_context(make_progress(options.quiet))
        named = baselines(space, host, options.mode, image_default_env())
        budget = open_budget(study, storage, lambda: plan_trials(
            study, space, named, options.trials or (SERVER_BUDGET if server_mode else None)))
        objective = TrialObjective(space, launcher, workload, gate, options.start_timeout, progress,
                                   options.request_timeout)
        run_trials(Coordinator(study, storage, budget, space.suggest), objective, options.timeout,
                   progress)
        top, rounds = options.confirmation_plan()
        if rounds and _has_feasible(study):
            run_confirmation(study, pick_candidates(study, top), rounds, objective.remeasure,
                             progress)
    report = publish_report(study, options.report_dir, quiet=options.quiet)
    if report["best"] is None:
        counts = report["trials"]
        raise NoFeasibleTrialError(
            f"no feasible trial in study {study.study_name!r}: {counts.get('COMPLETE', 0)} "
            f"measured ({counts['infeasible']} below the floors HR@10 >= {options.min_hr}, "
            f"NDCG@10 >= {options.min_ndcg}), {counts.get('FAIL', 0)} failed")
    return 0


def check_options(options: TuningOptions) -> None:
    """Refuse values no run can use, with the reason (`UsageError`, exit 2)."""
    problems = [message for bad, message in (
        (not 0 <= options.min_hr <= 1, f"--min-hr {options.min_hr} is not within [0, 1]"),
        (not 0 <= options.min_ndcg <= 1, f"--min-ndcg {options.min_ndcg} is not within [0, 1]"),
        ((options.confirm_rounds or 0) < 0,
         f"--confirm-rounds {options.confirm_rounds} is negative"),
        (options.p99_ms <= 0, f"--p99-ms {options.p99_ms:g} must be > 0 (a latency bound in ms)"),
        (options.timeout is not None and options.timeout <= 0, "--timeout must be positive"),
        (options.start_timeout <= 0, "--start-timeout must be positive"),
        (options.heartbeat_interval < 1, "--heartbeat-interval must be at least 1 second"),
        (options.grace_period <= options.heartbeat_interval,
         "--grace-period must be longer than --heartbeat-interval"),
        (options.request_timeout <= 0, "--request-timeout must be positive"),
    ) if bad]
    if problems:
        raise UsageError("; ".join(problems))


def _prepare(options: TuningOptions) -> "PreparedAssets":
    from autotune.prepare import prepare_assets

    return prepare_assets(dataset=options.dataset, data_dir=options.data_dir,
                          model_dir=options.model_dir, epochs=options.epochs, seed=options.seed,
                          download=options.download, quiet=options.quiet)


def _make_launcher(options: TuningOptions, model: ModelLocation) -> Launcher:
    """The launcher for `--server` (auto: docker when the engine and the image are there)."""
    from autotune.launch import docker_ready, make_launcher

    kind = options.server
    if kind == "auto":
        kind = "docker" if docker_ready(options.image) else "local"
    return make_launcher(kind, model, image=options.image)


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
    study_parts = {"mode": options.mode, "objective": options.stored_objective,
                   "space": options.space, "max_threads": options.max_threads,
                   "dataset": options.dataset}
    return make_host_class(hardware_parts(host), server_build(server, options.image),
                           model_fingerprint(model_dir), study_parts, options.host_class)


def open_study(options: TuningOptions, storage: BaseStorage, host: HostFacts, launcher: Launcher,
               workload: Workload, model_dir: Path) -> optuna.Study:
    """Create the study, or load it and check that its stored setup matches this run."""
    host_class = host_class_of(options, host, launcher.kind, model_dir)
    name = options.study_name or host_class.study_name()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                direction=workload.direction)
    attrs: dict[str, object] = {
        "mode": options.mode, "objective": options.stored_objective, "server": launcher.kind,
        "space": options.space,
        "batch_size": options.batch_size if options.mode == "batch" else 1,
        "min_hr": options.min_hr, "min_ndcg": options.min_ndcg,
        **({"p99_ms": options.p99_ms} if options.mode == "server" else {}),
        "host": host.as_dict(), "image": options.image,
        "launcher": launcher.describe(), "model_dir": str(model_dir.resolve()),
    }
    mismatched = [f"{key} {study.user_attrs[key]!r} (this run: {attrs[key]!r})"
                  for key in COMPARABLE_ATTRS
                  if key in study.user_attrs and study.user_attrs[key] != attrs[key]]
    if mismatched or study.direction.name.lower() != workload.direction:
        raise UsageError(f"study {name!r} was measured with another setup: "
                         f"{'; '.join(mismatched) or 'another direction'}; "
                         "pass --study-name to start a new study")
    check_host_class(study, host_class)
    with warnings.catch_warnings():  # experimental in name only since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([workload.metric_name])
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
    covered = [t.system_attrs.get("fixed_params", t.params) for t in trials if t.state in live]
    done_baselines = {t.user_attrs.get("baseline") for t in trials if t.state in live}
    for baseline in named:
        if baseline.name not in done_baselines:
            study.enqueue_trial(baseline.params, user_attrs={"baseline": baseline.name})
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

    def __init__(self, space: SearchSpace, launcher: Launcher, workload: Workload,
                 gate: AccuracyGate, start_timeout_s: float, progress: Progress,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.space = space
        self.launcher = launcher
        self.workload = workload
        self.gate = gate
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self.progress = progress

    def __call__(self, trial: optuna.Trial) -> float:
        """Measure the trial's settings, record its attrs and constraints; its objective value."""
        params = self.space.suggest(trial)
        baseline = trial.user_attrs.get("baseline")
        self.progress.step(f"trial {trial.number} {describe_params(params)}"
                           + (f" ({baseline})" if baseline else ""))
        self.progress.phase("starting server")
        settings = settings_from_params(params)
        with running_server(self.launcher, settings, MODEL_NAME, self.start_timeout_s,
                            self.request_timeout_s) as server:
            trial.set_user_attr("startup_s", round(server.startup_s, 3))
            if self.launcher.exposure:  # named in the report (autotune.launch.base)
                trial.study.set_user_attr("exposure", self.launcher.exposure)
            value, attrs = self.workload.measure(server.client, self.progress.phase)
            self.progress.phase("accuracy")
            accuracy = self.gate.check(server.client, settings.batching and
                                       settings.batching.max_batch_size)
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        record_accuracy(trial, accuracy)
        return value

    def remeasure(self, params: dict[str, object]) -> float:
        """The objective of `params` once more (the confirmation round): no gate, no trial."""
        self.progress.phase("starting server")
        with running_server(self.launcher, settings_from_params(params), MODEL_NAME,
                            self.start_timeout_s, self.request_timeout_s) as server:
            return self.workload.measure(server.client, self.progress.phase)[0]


def record_accuracy(trial: optuna.Trial, accuracy: AccuracyResult) -> None:
    """Store HR/NDCG and the floors as constraints, so a trial below a floor is infeasible.

    Optuna 5 reads `trial.set_constraint` (TPE and `best_trial` skip infeasible trials);
    optuna-dashboard 0.21 greys only trials with the older `constraints` list system attr,
    so the same values are written there too.
    """
    trial.set_user_attr("hr", accuracy.hr)
    trial.set_user_attr("ndcg", accuracy.ndcg)
    trial.set_user_attr("accuracy_ok", accuracy.ok)
    if not accuracy.ok:
        trial.set_user_attr("infeasible", accuracy.shortfall())
    constraints = accuracy.constraints()
    for name, value in constraints.items():
        trial.set_constraint(name, value)
    trial.storage.set_trial_system_attr(trial._trial_id, "constraints", list(constraints.values()))


def run_trials(coordinator: Coordinator, objective: TrialObjective, timeout_s: float | None,
               progress: Progress) -> None:
    """Run trials while the class's budget lasts (no new one after `timeout_s`), then wait
    for the other workers' trials of the budget; see the module docstring."""
    study = coordinator.study
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
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
            _fail(study, trial, str(error))
            failures_in_a_row += 1
            progress.done(f"trial {trial.number} FAIL: {str(error).splitlines()[0]}",
                          _best_text(study))
            if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise StudyAbortedError(f"{failures_in_a_row} trials in a row failed; the last: "
                                        f"{error}") from None
            continue
        except KeyboardInterrupt:
            _fail(study, trial, "interrupted")
            raise
        except AutotuneError as error:  # e.g. the launcher became unusable: ends the study
            _fail(study, trial, str(error))
            raise
        except BaseException as error:
            _fail(study, trial, f"internal error: {error!r}")
            raise
        frozen = study.tell(trial, value)
        failures_in_a_row = 0
        progress.done(_trial_line(frozen, study), _best_text(study))


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("failure", reason)
    study.tell(trial, state=TrialState.FAIL)


def _has_feasible(study: optuna.Study) -> bool:
    try:
        _ = study.best_trial
    except ValueError:
        return False
    return True


def _best_text(study: optuna.Study) -> str | None:
    if not _has_feasible(study):
        return None
    best = study.best_trial
    return f"{format_objective(study.metric_names[0], best.value)} (trial {best.number})"


def _trial_line(trial: optuna.trial.FrozenTrial, study: optuna.Study) -> str:
    attrs = trial.user_attrs
    verdict = "ok" if attrs["accuracy_ok"] else f"[red]infeasible: {attrs['infeasible']}[/]"
    baseline = f" ({attrs['baseline']})" if "baseline" in attrs else ""
    return (f"trial {trial.number} {describe_params(trial.params)}{baseline}: "
            f"{format_objective(study.metric_names[0], trial.value)}, HR@10 {attrs['hr']:.3f} "
            f"NDCG@10 {attrs['ndcg']:.3f} {verdict}")
