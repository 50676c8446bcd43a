"""The Mode values: what differs by mode is read from them, never from the mode's name."""

import pytest

from autotune.errors import UsageError
from autotune.modes import BATCH, MODES, ONLINE, SERVER, format_metric, get_mode, mode_of_metric


def test_online_and_batch_values():
    assert (ONLINE.metric, ONLINE.direction, ONLINE.stored_objective("p99", 10.0)) == (
        "latency_ms", "minimize", "p99")
    assert (BATCH.metric, BATCH.direction, BATCH.stored_objective("mean", 10.0)) == (
        "throughput_sps", "maximize", "throughput")
    assert ONLINE.batch_size(50_000) == 1 and BATCH.batch_size(50_000) == 50_000
    assert ONLINE.tutorial_threads(8) == (1, 1, 1) and BATCH.tutorial_threads(8) == (8, 8, 1)


def test_server_mode_is_one_more_value():
    assert (SERVER.metric, SERVER.direction, SERVER.stored_objective("mean", 2.5)) == (
        "qps_at_slo", "maximize", "qps at p99 <= 2.5 ms")
    assert SERVER.batch_size(50_000) == 1 and SERVER.tutorial_threads(8) == (1, 1, 1)
    assert SERVER.bounded and SERVER.searches_batching
    assert not (ONLINE.bounded or ONLINE.searches_batching or BATCH.bounded)
    assert (SERVER.default_trials, SERVER.racing_top, SERVER.accuracy_users) == (14, 2, 500)
    assert (ONLINE.default_trials, ONLINE.racing_top, ONLINE.accuracy_users) == (None, 5, None)
    assert SERVER.format(1234.4) == "1,234 requests/s"
    assert SERVER.protocols == ("grpc",)  # LoadGen's adapter sends gRPC only
    assert ONLINE.protocols == BATCH.protocols == ("grpc", "rest")


def test_formatting_and_comparison_follow_the_direction():
    assert ONLINE.format(1.23456) == "1.235 ms"
    assert BATCH.format(1234567.4) == "1,234,567 samples/s"
    assert ONLINE.better(1.0, 2.0) and BATCH.better(2.0, 1.0)
    assert ONLINE.speedup(1.0, 2.0) == 2.0 and BATCH.speedup(2.0, 1.0) == 2.0


def test_lookup_by_name_and_metric():
    assert list(MODES) == ["online", "batch", "server"]
    assert get_mode("batch") is BATCH and get_mode(ONLINE) is ONLINE
    assert mode_of_metric("latency_ms") is ONLINE and mode_of_metric("qps_at_slo") is SERVER
    assert format_metric("latency_ms", 2.0) == "2.000 ms" and format_metric("value", 3.0) == "3"
    with pytest.raises(UsageError, match="unknown mode 'offline'"):
        get_mode("offline")
