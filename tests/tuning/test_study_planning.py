"""run_tuning's own rules, fast, with a launcher that never starts a server.

What is tested here is the tuner around the measurements: the order it plans trials in,
how it counts failures, what a resumed study repeats or refuses, and an interrupt. The
measurements themselves are tested with real servers (test_study.py, test_study_docker.py).
"""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from autotune.errors import ServerStartError, UsageError
from autotune.host.facts import detect_host
from autotune.launch import Launcher, ModelLocation, ServerSettings
from autotune.record.schema import TrialAttr
from autotune.tuning.run import run_tuning
from autotune.tuning.trials import MAX_FAILURES_IN_A_ROW, StudyAbortedError
from serving.fixtures import tiny_model  # noqa: F401 (fixture)


class NoServerLauncher(Launcher):
    """Records each start's settings, then fails it (or raises `error`); runs nothing."""

    kind = "local"

    def __init__(self, model: ModelLocation, error: BaseException | None = None) -> None:
        super().__init__(model)
        self.starts: list[ServerSettings] = []
        self.error = error or ServerStartError("no server here")

    def start(self, settings: ServerSettings) -> str:
        self.starts.append(settings)
        raise self.error

    def stop(self) -> None:
        self._address = None

    def logs(self, lines: int = 50) -> str:
        return ""

    def _exit_reason(self) -> str | None:
        return "never started"

    def image_env(self) -> dict[str, str]:
        return {}  # no thread defaults: TensorFlow's 0, i.e. every CPU


@pytest.fixture
def assets(tmp_path: Path, tiny_model: ModelLocation) -> SimpleNamespace:  # noqa: F811
    """A minimal eval set (two users, four candidates) and the tiny model (pre-flight loads
    it, and the host class fingerprints it), which no server ever serves here."""
    eval_path = tmp_path / "eval.npz"
    np.savez(eval_path, users=np.array([0, 1], np.int32),
             items=np.arange(8, dtype=np.int32).reshape(2, 4))
    return SimpleNamespace(eval_path=eval_path, model_dir=tiny_model.base_path)


def _run(options, assets, launcher: NoServerLauncher) -> None:
    run_tuning(options, assets, launcher_factory=lambda kind, model, image, rest: launcher)


def _threads(settings: ServerSettings) -> tuple[int, int, int]:
    return (settings.omp_num_threads, settings.intra_op_parallelism,
            settings.inter_op_parallelism)


def _study(options) -> optuna.Study:
    [name] = optuna.study.get_all_study_names(options.storage)
    return optuna.load_study(study_name=name, storage=options.storage)


def test_baselines_first_then_the_grid_and_three_failures_end_the_study(tuning_options,
                                                                         assets):
    options = tuning_options("online", max_threads=2)
    launcher = NoServerLauncher(ModelLocation(assets.model_dir))
    with pytest.raises(StudyAbortedError, match="3 trials in a row failed"):
        _run(options, assets, launcher)
    # tutorial (1/1/1), image defaults (0 = every CPU, clipped to 2), then the grid's
    # first configuration not covered by a baseline
    cpus = min(detect_host().logical_cpus, 2)
    assert [_threads(s) for s in launcher.starts] == [(1, 1, 1), (cpus,) * 3, (1, 1, 2)]
    study = _study(options)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == MAX_FAILURES_IN_A_ROW
    assert all(t.user_attrs[TrialAttr.FAILURE].startswith("server did not start")
               for t in failed)
    assert [t.user_attrs.get(TrialAttr.BASELINE) for t in failed] == [
        "tutorial", "image-defaults", None]
    # the whole 8-configuration grid fits the default budget: the rest waits, enqueued
    covered_by_baselines = 2 if cpus == 2 else 1
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 8 - covered_by_baselines - 1


def test_a_resumed_study_retries_failed_baselines_and_refuses_another_setup(tuning_options,
                                                                            assets):
    options = tuning_options("online", max_threads=2, study_name="mine")
    with pytest.raises(StudyAbortedError):
        _run(options, assets, NoServerLauncher(ModelLocation(assets.model_dir)))
    with pytest.raises(StudyAbortedError):
        _run(options, assets, NoServerLauncher(ModelLocation(assets.model_dir)))
    waiting = _study(options).get_trials(states=(TrialState.WAITING,))
    assert {t.user_attrs.get(TrialAttr.BASELINE) for t in waiting} >= {"tutorial",
                                                                        "image-defaults"}
    planned = [tuple(sorted(t.system_attrs["fixed_params"].items())) for t in waiting]
    assert len(planned) == len(set(planned))  # nothing enqueued twice

    other = tuning_options("online", max_threads=2, objective="p99", study_name="mine")
    with pytest.raises(UsageError, match="objective 'mean' \\(this run: 'p99'\\)"):
        _run(other, assets, NoServerLauncher(ModelLocation(assets.model_dir)))


def test_an_interrupt_fails_the_running_trial_and_propagates(tuning_options, assets):
    options = tuning_options("batch", max_threads=2)
    launcher = NoServerLauncher(ModelLocation(assets.model_dir), error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        _run(options, assets, launcher)
    [failed] = _study(options).get_trials(states=(TrialState.FAIL,))
    assert failed.user_attrs[TrialAttr.FAILURE] == "interrupted"
    assert len(launcher.starts) == 1
