"""The NCF tutorial's client (its `run_ncf.py`), ported, against the embedded server and
the serving image: the accuracy it computes is the model card's.

The flow is the tutorial's verification step: the whole eval set in batches of 50,000,
each a `PredictRequest` of `user_id` (int32) and `item_id` (uint16) built with
`make_tensor_proto`; from each response it reads the scores as
`result.outputs['rating'].float_val` and the echoed item ids as
`result.outputs['item_id'].float_val` (the export's `item_id` output is float32, as the
tutorial's model returns it), builds `items_by_user` from them, then ranks each user's
1,000 candidates by score for HR@10 and NDCG@10. One departure, to make the check
stricter: the echoed ids are checked against the ids sent.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from autotune.launch import ModelLocation, ServerSettings, make_launcher
from autotune.launch.base import Launcher
from autotune.model.metrics import hit_rate_and_ndcg
from serving.fixtures import START_DEADLINE_S

#: the tutorial's batch size for its accuracy run (`run_ncf.py -b 50000`)
TUTORIAL_BATCH = 50_000


def run_tutorial_client(address: str, users: np.ndarray, items: np.ndarray,
                        batch_size: int = TUTORIAL_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """The scores and echoed item ids of every (user, item) pair, batch by batch."""
    channel = grpc.insecure_channel(address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ncf"
    request.model_spec.signature_name = "serving_default"
    predictions, movies = [], []
    for begin in range(0, len(users), batch_size):
        end = begin + batch_size
        request.inputs["user_id"].CopyFrom(tf.make_tensor_proto(users[begin:end].astype(np.int32)))
        request.inputs["item_id"].CopyFrom(tf.make_tensor_proto(items[begin:end].astype(np.uint16)))
        result = stub.Predict(request, timeout=120)
        predictions.append(result.outputs["rating"].float_val)
        movies.append(result.outputs["item_id"].float_val)
    channel.close()
    return np.concatenate(predictions), np.concatenate(movies)


def check_tutorial_accuracy(launcher: Launcher, small_assets) -> None:
    with np.load(small_assets.eval_path) as eval_set:
        eval_users, eval_items = eval_set["users"], eval_set["items"]
    num_users = len(eval_users)
    with launcher:
        address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_DEADLINE_S)
        scores, echoed = run_tutorial_client(address, np.repeat(eval_users, eval_items.shape[1]),
                                             eval_items.ravel())
    predicted_scores_by_user = scores.reshape(num_users, -1)
    items_by_user = echoed.reshape(num_users, -1)
    assert len(echoed) == eval_items.size  # the tutorial's client reads them all
    np.testing.assert_array_equal(items_by_user, eval_items)  # column 0: the held-out positive
    hr, ndcg = hit_rate_and_ndcg(predicted_scores_by_user)
    print(f"Accuracy: {hr:.5f} HR, {ndcg:.5f} NDCG")
    assert (hr, ndcg) == (small_assets.model_card["hr"], small_assets.model_card["ndcg"])


def test_tutorial_client_against_the_embedded_server(small_assets) -> None:
    model = ModelLocation(Path(small_assets.model_dir))
    check_tutorial_accuracy(make_launcher("local", model), small_assets)


@pytest.mark.docker
def test_tutorial_client_against_the_serving_image(small_assets, serving_image: str) -> None:
    model = ModelLocation(Path(small_assets.model_dir))
    check_tutorial_accuracy(make_launcher("docker", model, image=serving_image), small_assets)
