"""The search space and its baselines: bounds, --max-threads, the extended knobs."""

from dataclasses import replace

import optuna
import pytest

from autotune.host.facts import HostFacts
from autotune.launch.image import UPSTREAM_MKL_ENV, image_default_env
from autotune.modes import BATCH, MODES, ONLINE
from autotune.search.space import (
    KMP_AFFINITY_CHOICES,
    NO_CPUSET,
    THREAD_PARAMS,
    baselines,
    build_space,
    format_cpu_list,
    settings_from_params,
)

TWO_CORES = HostFacts(hostname="h", cpu_model="c", physical_cores=2, sockets=1, numa_nodes=1,
                      logical_cpus=2, usable_cpus=(0, 1), core_leaders=(0, 1))
EIGHT_CORES_SMT = HostFacts(hostname="h", cpu_model="c", physical_cores=8, sockets=1,
                            numa_nodes=1, logical_cpus=16, usable_cpus=tuple(range(16)),
                            core_leaders=tuple(range(8)))


def test_default_space_is_threads_up_to_physical_cores():
    space = build_space(TWO_CORES)
    assert list(space.choices()) == list(THREAD_PARAMS)
    assert all(values == (1, 2) for values in space.choices().values())
    assert space.size == 8 == len(list(space.configurations()))


def test_max_threads_moves_every_bound():
    space = build_space(TWO_CORES, max_threads=5)
    assert all(values == (1, 2, 3, 4, 5) for values in space.choices().values())
    assert space.size == 125


def test_extended_space_adds_openmp_knobs_and_pinning():
    space = build_space(EIGHT_CORES_SMT, extended=True)
    assert space.choices()["kmp_blocktime"] == (0, 1, 10, 200)
    assert space.choices()["kmp_affinity"] == tuple(KMP_AFFINITY_CHOICES.values())
    assert space.choices()["cpuset"] == (NO_CPUSET, "0-3", "0-7")  # one thread per core
    # on 2 cores without SMT, pinning to both is no pinning: none vs the first core
    assert build_space(TWO_CORES, extended=True).choices()["cpuset"] == (NO_CPUSET, "0")
    # one core: nothing to pin to that differs from no pinning
    one = HostFacts("h", "c", 1, 1, 1, 1, (0,), (0,))
    assert "cpuset" not in build_space(one, extended=True).choices()


def test_batch_space_searches_instances_over_the_core_divisors():
    space = build_space(TWO_CORES, instances=BATCH.searches_instances)
    assert space.choices()["instances"] == (1, 2)
    assert space.size == 16 == len(list(space.configurations()))
    assert "instances" not in build_space(TWO_CORES, instances=ONLINE.searches_instances).choices()
    one = HostFacts("h", "c", 1, 1, 1, 1, (0,), (0,))
    assert "instances" not in build_space(one, instances=True).choices()
    tutorial, image = baselines(space, TWO_CORES, "batch", UPSTREAM_MKL_ENV)
    assert tutorial.params["instances"] == image.params["instances"] == 1
    assert settings_from_params({**tutorial.params, "instances": 2}).instances == 2


def test_cpuset_is_searched_with_one_instance_only():
    space = build_space(EIGHT_CORES_SMT, extended=True, instances=True)
    configurations = list(space.configurations())
    assert len(configurations) == space.size
    assert all(("cpuset" in params) == (params["instances"] == 1) for params in configurations)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    suggested = [space.suggest(study.ask()) for _ in range(30)]
    assert {params["instances"] for params in suggested} == {1, 2, 4, 8}
    assert all(("cpuset" in params) == (params["instances"] == 1) for params in suggested)


def test_suggest_stays_in_bounds():
    space = build_space(EIGHT_CORES_SMT, max_threads=3, extended=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        params = space.suggest(study.ask())
        assert all(1 <= params[name] <= 3 for name in THREAD_PARAMS)
        for name, values in space.choices().items():
            assert params[name] in values


def test_settings_carry_knobs_as_env_and_cpuset():
    settings = settings_from_params({"omp_num_threads": 2, "intra_op_parallelism": 3,
                                     "inter_op_parallelism": 1, "kmp_blocktime": 0,
                                     "kmp_affinity": "granularity=fine,compact,1,0",
                                     "cpuset": "0-3"})
    assert settings.env()["KMP_BLOCKTIME"] == "0"
    assert settings.env()["KMP_AFFINITY"] == "granularity=fine,compact,1,0"
    assert settings.cpuset == "0-3"
    assert settings_from_params({"omp_num_threads": 1, "intra_op_parallelism": 1,
                                 "inter_op_parallelism": 1, "cpuset": NO_CPUSET}).cpuset is None


def test_tutorial_baselines_per_mode():
    space = build_space(EIGHT_CORES_SMT)
    online, _ = baselines(space, EIGHT_CORES_SMT, "online", UPSTREAM_MKL_ENV)
    batch, _ = baselines(space, EIGHT_CORES_SMT, "batch", UPSTREAM_MKL_ENV)
    assert online.name == batch.name == "tutorial"
    assert online.params == {"omp_num_threads": 1, "intra_op_parallelism": 1,
                             "inter_op_parallelism": 1}
    assert batch.params == {"omp_num_threads": 8, "intra_op_parallelism": 8,
                            "inter_op_parallelism": 1}


def test_image_defaults_map_zero_to_usable_cpus_clipped_into_the_space():
    space = build_space(EIGHT_CORES_SMT)  # threads 1..8, the host has 16 logical CPUs
    _, image = baselines(space, EIGHT_CORES_SMT, "online", UPSTREAM_MKL_ENV)
    assert image.name == "image-defaults"
    assert image.params == {"omp_num_threads": 2, "intra_op_parallelism": 8,
                            "inter_op_parallelism": 8}
    extended = build_space(EIGHT_CORES_SMT, extended=True)
    tutorial, image = baselines(extended, EIGHT_CORES_SMT, "online", UPSTREAM_MKL_ENV)
    assert image.params["kmp_blocktime"] == 1 == tutorial.params["kmp_blocktime"]
    assert image.params["kmp_affinity"] == KMP_AFFINITY_CHOICES["compact"]
    assert image.params["cpuset"] == NO_CPUSET


def test_every_baseline_lies_in_its_space():
    one_core = replace(TWO_CORES, physical_cores=1, logical_cpus=1, usable_cpus=(0,),
                       core_leaders=(0,))
    for host in (TWO_CORES, EIGHT_CORES_SMT, one_core):
        for extended in (False, True):
            for mode in MODES.values():
                space = build_space(host, extended=extended, batching=mode.searches_batching,
                                    instances=mode.searches_instances)
                configurations = list(space.configurations())
                assert len(configurations) == space.size
                for baseline in baselines(space, host, mode, image_default_env()):
                    assert baseline.params in configurations


@pytest.mark.parametrize("cpus, text", [((0,), "0"), ((0, 1, 2, 5), "0-2,5"), ((3, 1), "1,3")])
def test_cpu_lists(cpus, text):
    assert format_cpu_list(cpus) == text
