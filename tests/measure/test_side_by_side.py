"""Side-by-side rounds against real embedded servers: every configuration's server is up
at once while the blocks alternate (or, where memory is short, in groups that fit),
each gets one value (or its own failure), and nothing is left running."""

import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.distributions import IntDistribution

from autotune.data.eval_rows import EvalRows
from autotune.errors import MeasurementError
from autotune.host.facts import detect_host
from autotune.launch.base import ModelLocation
from autotune.launch.group import InstanceGroup
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from autotune.measure.blocks import PreciseBlocks
from autotune.measure.side_by_side import SideBySide, fitting_groups
from autotune.measure.workload import Workload
from autotune.paths import MODEL_NAME
from autotune.progress import Progress
from autotune.record.memory import measured_memory
from autotune.record.schema import TrialAttr
from processes import serving_processes

CONFIGS = [{"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1},
           {"omp_num_threads": 1, "intra_op_parallelism": 2, "inter_op_parallelism": 1}]


class ServersWhileMeasuring(Progress):
    """Counts the model servers alive when the round starts measuring."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def phase(self, text: str) -> None:
        if text.startswith("measuring") and "side by side" in text:
            self.seen.append(len(serving_processes()))


#: a server program that never answers: it sleeps until it is stopped
SILENT = (sys.executable, "-c", "import time; time.sleep(600)")


def _side_by_side(assets, mode: str, progress: Progress, broken: int | None = None,
                  program: tuple[str, ...] = ("false",), **memory) -> SideBySide:
    """Side-by-side rounds on embedded servers; the launcher of slot `broken` runs
    `program` instead (by default one that exits at once)."""
    model = ModelLocation(Path(assets.model_dir), MODEL_NAME)
    made: list[InstanceGroup] = []

    def make_launcher() -> InstanceGroup:
        program_here = program if len(made) == broken else EMBEDDED_SERVER
        made.append(InstanceGroup(lambda: LocalLauncher(model, program=program_here),
                                 detect_host()))
        return made[-1]

    workload = Workload.build(mode, "mean", batch_size=2000, iterations=5,
                              eval_rows=EvalRows.load(Path(assets.eval_path)), seed=0)
    return SideBySide(make_launcher, PreciseBlocks(workload, cap_s=0.5), start_timeout_s=60,
                      request_timeout_s=15, progress=progress, **memory)


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_a_round_runs_every_server_at_once_and_gives_each_one_value(small_assets, mode):
    progress = ServersWhileMeasuring()
    outcomes: list[tuple[int, object]] = []
    with _side_by_side(small_assets, mode, progress) as measure_round:
        for _ in range(2):  # the launchers are reused by the next round
            measure_round(CONFIGS, lambda at, outcome: outcomes.append((at, outcome)))
    assert progress.seen == [2, 2]
    assert sorted(at for at, _ in outcomes) == [0, 0, 1, 1]
    assert all(isinstance(value, float) and value > 0 for _, value in outcomes)
    assert not serving_processes()


def test_a_server_that_does_not_start_fails_only_its_configuration(small_assets):
    outcomes: dict[int, object] = {}
    with _side_by_side(small_assets, "online", Progress(), broken=1) as measure_round:
        measure_round(CONFIGS, outcomes.__setitem__)
    assert isinstance(outcomes[1], MeasurementError) and "did not start" in str(outcomes[1])
    assert isinstance(outcomes[0], float) and outcomes[0] > 0
    assert not serving_processes()


def test_ctrl_c_while_the_servers_start_stops_them_all_at_once(small_assets, ctrl_c_after):
    """The servers start together; Ctrl-C while one never answers stops every launcher
    at once (not after the 60-s start timeout) and leaves neither server behind (other
    tests' long-lived children, such as a browser, are not this test's)."""
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with _side_by_side(small_assets, "online", Progress(), broken=1,
                           program=SILENT) as measure_round:
            ctrl_c_after(5.0)
            measure_round(CONFIGS, lambda at, outcome: None)
    assert time.monotonic() - began < 30
    assert not serving_processes()
    assert not [child for child in psutil.Process().children(recursive=True)
                if child.is_running() and SILENT[-1] in " ".join(child.cmdline())]


def test_a_round_too_large_for_memory_runs_in_groups_that_fit(small_assets):
    """Each server took 90 MiB and 100 MiB are available: one at a time, each still
    measured."""
    progress = ServersWhileMeasuring()
    outcomes: list[tuple[int, object]] = []
    with _side_by_side(small_assets, "online", progress, memory_of=lambda params: 90.0,
                       available=lambda: 100.0) as measure_round:
        measure_round(CONFIGS, lambda at, outcome: outcomes.append((at, outcome)))
    assert progress.seen == [1, 1]
    assert sorted(at for at, _ in outcomes) == [0, 1]
    assert all(isinstance(value, float) and value > 0 for _, value in outcomes)
    assert not serving_processes()


@pytest.mark.parametrize("sizes, room, groups", [
    ([100.0, 100.0, 100.0], 1000.0, [[0, 1, 2]]),
    ([300.0, 300.0, 300.0], 700.0, [[0, 1], [2]]),
    ([900.0, 100.0, 100.0], 500.0, [[0], [1, 2]]),  # too large alone: a group of its own
    ([300.0, None, 100.0], 650.0, [[0, 1], [2]]),  # unknown: as large as the largest known
    ([None, None], 1.0, [[0, 1]]),  # nothing known: nothing to size by
])
def test_fitting_groups(sizes, room, groups):
    assert fitting_groups(sizes, room) == groups


def test_measured_memory_is_the_most_a_configuration_took_in_its_trials():
    def trial(params: dict, rss_mb: float | None) -> optuna.trial.FrozenTrial:
        attrs = {} if rss_mb is None else {TrialAttr.RSS_MB: rss_mb}
        return optuna.trial.create_trial(
            params=params, distributions={name: IntDistribution(1, 2) for name in params},
            value=1.0, user_attrs=attrs)

    memory_of = measured_memory([trial(CONFIGS[0], 300.0), trial(CONFIGS[0], 350.0),
                                 trial(CONFIGS[1], None)])
    assert memory_of(dict(reversed(list(CONFIGS[0].items())))) == 350.0  # any params order
    assert memory_of(CONFIGS[1]) is None
