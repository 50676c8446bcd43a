"""The knob table: params, settings, environment and flags derived from one row per knob."""

from autotune.launch.settings import (
    KNOBS,
    MAX_ENQUEUED_BATCHES,
    NO_CPUSET,
    ServerSettings,
    env_params,
)
from autotune.serving.batching_config import BatchingParameters

EXTENDED = {"omp_num_threads": 2, "intra_op_parallelism": 3, "inter_op_parallelism": 1,
            "kmp_blocktime": 0, "kmp_affinity": "granularity=fine,compact,1,0", "cpuset": "0-1"}


def test_params_settings_params_round_trip():
    settings = ServerSettings.from_params(EXTENDED)
    assert settings.params() == EXTENDED
    assert settings.env() == {"OMP_NUM_THREADS": "2", "TENSORFLOW_INTRA_OP_PARALLELISM": "3",
                              "TENSORFLOW_INTER_OP_PARALLELISM": "1", "KMP_BLOCKTIME": "0",
                              "KMP_AFFINITY": "granularity=fine,compact,1,0"}
    assert settings.server_args() == ["--tensorflow_intra_op_parallelism=3",
                                      "--tensorflow_inter_op_parallelism=1"]
    assert settings.cpuset == "0-1"


def test_unpinned_and_default_space_params():
    threads = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1}
    assert ServerSettings.from_params({**threads, "cpuset": NO_CPUSET}).cpuset is None
    assert ServerSettings.from_params(threads).params() == threads


def test_env_params_reads_every_env_knob_and_skips_blank_ones():
    env = {"OMP_NUM_THREADS": "4", "TENSORFLOW_INTER_OP_PARALLELISM": " ",
           "KMP_BLOCKTIME": "1", "KMP_AFFINITY": "none", "PATH": "/bin"}
    assert env_params(env) == {"omp_num_threads": 4, "kmp_blocktime": 1, "kmp_affinity": "none"}


def test_a_flag_only_knob_travels_as_a_flag(monkeypatch):
    from autotune.launch import settings as knob_table

    flag_knob = knob_table.Knob("session_parallelism", "session", "choice",
                                flag="--tensorflow_session_parallelism")
    monkeypatch.setattr(knob_table, "KNOBS", (*KNOBS, flag_knob))
    settings = ServerSettings.from_params({"omp_num_threads": 1, "intra_op_parallelism": 1,
                                           "inter_op_parallelism": 1,
                                           "session_parallelism": "2"})
    assert settings.server_args()[-1] == "--tensorflow_session_parallelism=2"
    assert "session_parallelism" not in settings.env()
    assert settings.params()["session_parallelism"] == "2"


def test_batching_knobs_travel_as_the_batching_parameters():
    threads = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1}
    batching = {"enable_batching": True, "max_batch_size": 128, "batch_timeout_micros": 1000,
                "num_batch_threads": 2}
    settings = ServerSettings.from_params({**threads, **batching})
    assert settings.batching == BatchingParameters(
        max_batch_size=128, batch_timeout_micros=1000, num_batch_threads=2,
        max_enqueued_batches=MAX_ENQUEUED_BATCHES)
    assert settings.params() == {**threads, **batching}
    assert settings.env() == ServerSettings(1, 1, 1).env()  # not by env, not by flag
    assert settings.server_args() == ServerSettings(1, 1, 1).server_args()
    off = ServerSettings.from_params({**threads, "enable_batching": False})
    assert off.batching is None and off.params() == threads


def test_instances_are_a_count_the_launcher_applies():
    threads = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 2}
    settings = ServerSettings.from_params({**threads, "instances": 2})
    assert settings.instances == 2 and settings.params() == {**threads, "instances": 2}
    assert settings.env() == ServerSettings(1, 1, 2).env()  # not by env, not by flag
    assert settings.server_args() == ServerSettings(1, 1, 2).server_args()
    assert ServerSettings.from_params({**threads, "instances": 1}).params() == threads
