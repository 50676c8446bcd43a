"""The server refuses bad ids and mismatched inputs in its own words (INVALID_ARGUMENT
naming the input, the value and the range), before the graph runs."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from autotune.launch import ServerSettings
from autotune.launch.local import LocalLauncher
from serving.fixtures import PlainClient


@pytest.fixture(scope="module")
def client(server_address):
    plain = PlainClient(server_address)
    yield plain
    plain.close()


def _refusal(client: PlainClient, users, items) -> str:
    request = client.request(user_id=np.array(users, np.int32), item_id=np.array(items, np.int32))
    with pytest.raises(grpc.RpcError) as raised:
        client.predict(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = raised.value.details()
    assert "node" not in details and "[[" not in details and "Graph" not in details
    return details


def test_an_item_id_out_of_range_names_the_input_the_value_and_the_range(client, small_assets):
    items = small_assets.model_card["items"]
    details = _refusal(client, [0, 1, 2], [3, items, 4])
    assert details == (f"input 'item_id' has id {items} at position 1, outside the model's "
                       f"range [0, {items - 1}]")


def test_a_negative_user_id_is_refused_the_same_way(client, small_assets):
    details = _refusal(client, [-5], [0])
    users = small_assets.model_card["users"]
    assert "'user_id' has id -5" in details and f"[0, {users - 1}]" in details


def test_inputs_of_different_lengths_are_refused_naming_both(client):
    details = _refusal(client, [0, 1, 2], [3, 4])
    assert "same length" in details
    assert "'item_id' has 2" in details and "'user_id' has 3" in details


def test_a_model_stating_no_ranges_gets_the_graphs_reason_in_one_line(tiny_model):
    with LocalLauncher(tiny_model) as launcher:
        plain = PlainClient(launcher.start(ServerSettings(1, 1, 1)))
        launcher.wait_until_available(120)
        try:
            details = _refusal(plain, [0, 1], [3, 500])
        finally:
            plain.close()
    assert details == "the model refused the inputs: indices[1] = 500 is not in [0, 200)"
