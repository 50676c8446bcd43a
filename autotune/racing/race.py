"""Racing the finalists: re-measure them side by side until the data decides.

A search trial is one measurement, and on a shared host one restart of one
configuration moves by 5-12%: more than many configurations differ by. So after the
search the finalists (the top-k feasible configurations and every baseline) are raced:
each round measures every survivor once, in a rotated order, with a fresh server each
time, so that a drift of the host hits all of them alike and a round is a paired
observation. How a round measures is the caller's (`MeasureRound`): every survivor's
server runs at once (autotune.measure.side_by_side), because the host drifts within
seconds; online and batch rounds alternate short blocks of requests between them, a
server-mode round refines each survivor's peak at the bound in a few short LoadGen runs
(autotune.measure.peak_rounds). `one_at_a_time` makes a round of a plain function.

The test. From round `min_rounds` (3) on, after every round, the leader is the survivor
with the best geometric mean; every other survivor is compared with it by the paired
speed ratio of the rounds both were measured in (autotune.stats: Student's t interval
of the mean per-round log-ratio). A survivor whose interval lies wholly on the slower
side is dropped. Looking after every round would inflate the error of a fixed-level
test, so the level is corrected by alpha spending with a Bonferroni bound: look k
(k = 1 at round `min_rounds`) spends alpha / (k (k + 1)) (these sum to alpha over any
number of looks, so the correction needs no planned number of rounds, which a budget
in seconds cannot give), shared equally among the comparisons made at that look. By
the union bound, the chance that any configuration that is really as fast as the
leader is ever dropped stays below alpha (5%) however long the race runs. Paired t
intervals were chosen over F-race's Friedman test because the report needs the ratios
and their intervals anyway, and ranks cannot say how much faster.

The claims. A speed-up over a finalist the race dropped as slower is stated at the level
of the look that dropped it (`Finalist.dropped_alpha`), not at 95%: its rounds ended
because its ratio looked extreme just then, and a fixed-level interval over rounds a
test chose to stop at over-claims (a race on 2026-11-29 dropped the tutorial's settings
after 3 rounds at 1.43x and would have claimed [1.37, 1.50], where a grid of 10 rounds
measured 1.19x [1.13, 1.26]; at its look's level the claim is [1.23, 1.67]). This is the
interval the race's own test used to drop it, exactly so when the recommended
configuration led then: Jennison and Turnbull's repeated confidence intervals, which the
union bound above keeps valid together however the race chose to stop.

The race stops when one survivor is left ("one left"), when every survivor's interval
against the leader lies within a factor 1 + `precision` ("tied within precision"),
when the next round would end after `budget_s` at the mean time a configuration has
taken so far ("budget"), or on Ctrl-C
("interrupted": what was measured is kept, and the caller still writes the report).
A finalist whose measurement fails twice is dropped ("failed").

Several instances. When the study searched `instances`, the best single-instance
configuration is a finalist too, under the role `SINGLE_INSTANCE` (kept in
`Finalist.baselines` beside the baselines' names), so the report's gain over one
instance is a paired ratio of raced measurements like every other speed-up.

A fleet. Every worker of a host class races the class's finalists on its own host, and
stores its race under its own study attr (`racing_attr`). The report pools the races
(`pooled`): each worker's rounds stay blocks of their own, so every ratio still pairs two
configurations measured in one round on one host; the hosts' own speed, which differs
more than the configurations do, cancels within each block as a round's drift does.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence, TypeVar

import optuna

from autotune.errors import MeasurementError
from autotune.host.facts import worker_id
from autotune.host.load import LoadMeter, QuietPolicy, measure_quietly
from autotune.modes import format_metric
from autotune.progress import Progress
from autotune.racing.record import ALPHA, SINGLE_INSTANCE, Finalist, RaceRecord
from autotune.record.schema import (
    StudyAttr,
    TrialAttr,
    best_single_instance_trial,
    complete_trials,
    is_feasible,
    params_key,
    racing_attr,
    ranked,
    searched_instances,
)
from autotune.search.space import describe_params
from autotune.stats import MIN_PAIRS

#: the race compares survivors from the round where a paired ratio first has an interval
MIN_ROUNDS = MIN_PAIRS
MAX_FAILURES = 2

T = TypeVar("T")
Measure = Callable[[dict[str, object]], float]
#: what a round reports for each configuration, by its index: its value, or its failure
Record = Callable[[int, "float | MeasurementError"], None]
#: measures one round of configurations, calling `Record` once for each (in any order)
MeasureRound = Callable[[Sequence[dict[str, object]], Record], None]
Clock = Callable[[], float]


def pick_finalists(study: optuna.Study, top: int) -> list[Finalist]:
    """The `top` best feasible distinct configurations, then each baseline's configuration,
    then the best single-instance one when the study searched `instances`."""
    best_first = ranked(study, complete_trials(study))
    chosen: dict[tuple, Finalist] = {}
    for trial in filter(is_feasible, best_first):
        if len(chosen) == top:
            break
        chosen.setdefault(params_key(trial.params),
                          Finalist(trial.number, dict(trial.params), True))
    for trial in best_first:
        name = trial.user_attrs.get(TrialAttr.BASELINE)
        if name and not any(name in finalist.baselines for finalist in chosen.values()):
            finalist = chosen.setdefault(params_key(trial.params), Finalist(
                trial.number, dict(trial.params), is_feasible(trial)))
            finalist.baselines.append(name)
    single = best_single_instance_trial(study)
    if single is not None and searched_instances(best_first):
        chosen.setdefault(params_key(single.params), Finalist(
            single.number, dict(single.params), True)).baselines.append(SINGLE_INSTANCE)
    return list(chosen.values())


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """`items` starting at position `round_index` (mod length): each round a new order."""
    shift = round_index % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def look_alpha(look: int, comparisons: int, alpha: float = ALPHA) -> float:
    """The per-comparison level at look `look` (1-based): alpha / (k (k + 1)) / comparisons."""
    return alpha / (look * (look + 1)) / max(comparisons, 1)


class Race:
    """Runs the rounds of one race over `measure_round`, recording into a RaceRecord."""

    def __init__(self, record: RaceRecord, measure_round: MeasureRound,
                 progress: Progress | None = None,
                 metric: str = "value", min_rounds: int = MIN_ROUNDS,
                 clock: Clock = time.monotonic, meter: LoadMeter | None = None,
                 quiet: QuietPolicy = QuietPolicy()) -> None:
        self.record = record
        self.measure_round = measure_round
        self.progress = progress or Progress()
        self.metric = metric
        self.min_rounds = min_rounds
        self.clock = clock
        self.meter = meter
        self.quiet = quiet
        self._started = clock()
        self._measure_seconds: list[float] = []

    def run(self) -> RaceRecord:
        """Race until a stopping rule holds; Ctrl-C ends it with what was measured."""
        record = self.record
        try:
            while (reason := self._stop_reason()) is None:
                self._round()
                self._drop_slower()
            record.stopped = reason
        except KeyboardInterrupt:
            record.stopped = "interrupted"
        if record.rounds and all(f.values[-1] is None for f in record.finalists):
            record.rounds -= 1  # the budget or Ctrl-C left the last round empty
            for finalist in record.finalists:
                finalist.values.pop()
            del record.loads[record.rounds:]
        record.seconds = round(self.clock() - self._started, 3)
        return record

    def _elapsed(self) -> float:
        return self.clock() - self._started

    def _fits(self, measurements: int) -> bool:
        """Whether `measurements` more, at the mean duration so far, end within the budget."""
        if not self._measure_seconds:
            return self.record.budget_s > 0
        expected = statistics.fmean(self._measure_seconds) * measurements
        return self._elapsed() + expected <= self.record.budget_s

    def _stop_reason(self) -> str | None:
        record = self.record
        contenders = [f for f in record.survivors if f.feasible]
        if len(contenders) <= 1:
            return "one left"
        if record.rounds >= self.min_rounds and self._tied_within_precision():
            return f"tied within {record.precision:.0%}"
        if not self._fits(len(record.survivors)):
            return "budget"
        return None

    def _tied_within_precision(self) -> bool:
        record = self.record
        leader = record.leader()
        others = [f for f in record.survivors if f is not leader]
        level = look_alpha(self._look(), len(others), record.alpha)
        return leader is not None and all(
            record.ratio(leader, other, level).within(record.precision) for other in others)

    def _look(self) -> int:
        return self.record.rounds - self.min_rounds + 1

    def _round(self) -> None:
        record = self.record
        index = record.rounds
        survivors = rotated(record.survivors, index)
        for finalist in record.finalists:
            finalist.values.append(None)
        record.rounds += 1
        self.progress.begin(f"racing round {index + 1}: {len(survivors)} configurations",
                            len(survivors))
        began = self.clock()

        def measure() -> None:
            for finalist in survivors:  # a round measured again starts afresh
                finalist.values[index] = None
            self.measure_round([finalist.params for finalist in survivors],
                               lambda at, outcome: self._record(survivors[at], index, outcome))

        try:
            if self.meter is None:
                measure()
            else:
                measured = measure_quietly(measure, self.meter, self.quiet, self.progress.phase)
                record.loads.append({"foreign_cpu": measured.load.foreign_cpu,
                                     "steal": measured.load.steal, "busy": measured.busy,
                                     "remeasured": len(measured.loads) > 1})
        finally:
            share = (self.clock() - began) / len(survivors)
            self._measure_seconds.extend([share] * len(survivors))

    def _record(self, finalist: Finalist, index: int, outcome: float | MeasurementError) -> None:
        if isinstance(outcome, MeasurementError):
            finalist.failures.append(str(outcome))
            self.progress.done(f"  round {index + 1} {finalist.label}: failed: {outcome}")
            if len(finalist.failures) >= MAX_FAILURES:
                self._drop(finalist, f"failed {len(finalist.failures)} times: {outcome}")
            return
        finalist.values[index] = outcome
        self.progress.done(f"  round {index + 1} {finalist.label}: "
                           f"{format_metric(self.metric, outcome)}")

    def _drop_slower(self) -> None:
        record = self.record
        if record.rounds < self.min_rounds:
            return
        leader = record.leader()
        if leader is None:
            return
        others = [f for f in record.survivors if f is not leader]
        level = look_alpha(self._look(), len(others), record.alpha)
        for other in others:
            ratio = record.ratio(leader, other, level)
            if ratio.ci is not None and ratio.ci[0] > 1.0:
                self._drop(other, f"slower than {leader.label}: {ratio.ratio:.3f}x "
                                  f"[{ratio.ci[0]:.3f}, {ratio.ci[1]:.3f}] at level "
                                  f"{1 - level:.4%}", alpha=level)

    def _drop(self, finalist: Finalist, reason: str, alpha: float | None = None) -> None:
        finalist.dropped_round = self.record.rounds
        finalist.dropped_reason = reason
        finalist.dropped_alpha = alpha
        self.progress.done(f"  dropped after round {self.record.rounds}: {finalist.label}: "
                           f"{reason}")


def one_at_a_time(measure: Measure, progress: Progress | None = None) -> MeasureRound:
    """A round that measures its configurations one after another with `measure`: a
    race over a plain function (the race's own tests, a simulated host)."""
    steps = progress or Progress()

    def measure_round(configs: Sequence[dict[str, object]], record: Record) -> None:
        for index, params in enumerate(configs):
            steps.step(describe_params(params))
            try:
                value = measure(params)
            except MeasurementError as error:
                record(index, error)
                continue
            record(index, value)

    return measure_round


def race(finalists: list[Finalist], measure_round: MeasureRound, *, direction: str,
         budget_s: float, precision: float, progress: Progress | None = None,
         metric: str = "value", clock: Clock = time.monotonic,
         meter: LoadMeter | None = None, quiet: QuietPolicy = QuietPolicy()) -> RaceRecord:
    """Race `finalists`, a round at a time over `measure_round` (see the module
    docstring), each round metered by `meter` when given; the record."""
    record = RaceRecord(direction=direction, precision=precision, budget_s=budget_s,
                        finalists=finalists)
    return Race(record, measure_round, progress, metric, clock=clock, meter=meter,
                quiet=quiet).run()


def race_study(study: optuna.Study, top: int, measure_round: MeasureRound, budget_s: float,
               precision: float, progress: Progress | None = None,
               meter: LoadMeter | None = None, quiet: QuietPolicy = QuietPolicy()) -> RaceRecord:
    """Race the study's finalists and store the record as the study's StudyAttr.RACING."""
    direction = study.direction.name.lower()
    record = race(pick_finalists(study, top), measure_round, direction=direction,
                  budget_s=budget_s, precision=precision, progress=progress,
                  metric=(study.metric_names or ["value"])[0], meter=meter, quiet=quiet)
    record.workers = [worker_id()]
    study.set_user_attr(racing_attr(record.workers[0]), record.to_dict())
    study.set_user_attr(StudyAttr.RACING, record.to_dict())
    return record


