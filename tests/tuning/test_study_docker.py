"""A study with the Docker launcher: the serving image, driven like TF Serving's."""

import json
import os

import optuna
import pytest
from optuna.trial import TrialState

from autotune.tuning.run import run_tuning

pytestmark = pytest.mark.docker


def _our_containers() -> list:
    """Containers this test process started (others' tests may run beside it)."""
    import docker

    return docker.from_env().containers.list(
        all=True, filters={"label": f"autotune.pid={os.getpid()}"})


def test_docker_study_with_the_extended_space(tuning_options, small_assets, serving_image):
    options = tuning_options("online", server="docker", image=serving_image, space="extended",
                             trials=3)
    assert run_tuning(options, assets=small_assets) == 0
    (name,) = optuna.study.get_all_study_names(options.storage)
    study = optuna.load_study(study_name=name, storage=options.storage)
    assert study.user_attrs["server"] == "docker" and study.user_attrs["image"] == serving_image
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    # the sampled third trial is pruned when it measures slower than the best so far (as
    # one on a single pinned CPU may); the two baselines never are
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert len(trials) + len(pruned) == 3 and len(trials) >= 2
    assert {"kmp_blocktime", "kmp_affinity", "cpuset"} <= set(trials[0].params)
    assert trials[0].user_attrs["baseline"] == "tutorial" and trials[0].params["cpuset"] == "none"
    report = json.loads((options.report_dir / f"{name}.json").read_text())
    assert report["best"]["docker_run"].endswith(serving_image)
    assert "KMP_BLOCKTIME" in report["best"]["env"]
    assert not _our_containers()
