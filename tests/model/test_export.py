"""The exported SavedModel: the contract's signature, the in-process scores, versioning."""

import numpy as np
import pytest
import tensorflow as tf

from autotune.data.eval_set import open_eval_set
from autotune.model.card import read_model_card
from autotune.model.config import WARMUP_BATCH_SIZES, NeuMFShape, TrainingConfig
from autotune.model.evaluate import score_eval_set
from autotune.model.export import export_model, numeric_versions
from autotune.model.metrics import hit_rate_and_ndcg
from autotune.model.neumf import NeuMF
from autotune.model.train import train
from autotune.search.batching_space import MAX_BATCH_SIZE_CHOICES
from autotune.serving.warmup import WARMUP_FILE, read_prediction_logs


def serve(loaded, users, items) -> np.ndarray:
    signature = loaded.signatures["serving_default"]
    return signature(user_id=tf.constant(users, tf.int32),
                     item_id=tf.constant(items, tf.int32))["rating"].numpy()


def test_signature_follows_the_contract(small_assets):
    signature = tf.saved_model.load(str(small_assets.version_dir)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        "user_id": (tf.int32, [None]), "item_id": (tf.int32, [None])}
    outputs = signature.structured_outputs
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in outputs.items()} == {
        "rating": (tf.float32, [None]), "item_id": (tf.float32, [None])}
    users, items = np.array([0, 1, 2], np.int32), np.array([5, 0, 7], np.int32)
    echoed = signature(user_id=tf.constant(users), item_id=tf.constant(items))["item_id"]
    np.testing.assert_array_equal(echoed.numpy(), items.astype(np.float32))


def test_the_export_carries_tf_servings_warmup_records(small_assets):
    """A batch-1 request and one as large as every batching configuration the tuner may
    recommend accepts (TF Serving refuses a larger warmup task and fails the load)."""
    requests = [log.predict_log.request
                for log in read_prediction_logs(small_assets.version_dir / WARMUP_FILE)]
    assert WARMUP_BATCH_SIZES[0] == 1 and WARMUP_BATCH_SIZES[-1] <= min(MAX_BATCH_SIZE_CHOICES)
    card = small_assets.model_card
    assert len(requests) == len(WARMUP_BATCH_SIZES)
    for request, rows in zip(requests, WARMUP_BATCH_SIZES, strict=True):
        assert request.model_spec.signature_name == "serving_default"
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        assert {name: (array.dtype, array.shape) for name, array in inputs.items()} == {
            "user_id": (np.int32, (rows,)), "item_id": (np.int32, (rows,))}
        assert inputs["user_id"].max() < card["users"] and inputs["item_id"].max() < card["items"]


def test_reloaded_model_reproduces_the_cards_in_process_accuracy(small_assets):
    loaded = tf.saved_model.load(str(small_assets.version_dir))
    with np.load(small_assets.eval_path) as eval_set:
        scores = score_eval_set(lambda u, i: serve(loaded, u, i), eval_set["users"],
                                eval_set["items"])
    assert ((scores > 0) & (scores < 1)).all()
    hr, ndcg = hit_rate_and_ndcg(scores)
    assert hr == small_assets.model_card["hr"] and ndcg == small_assets.model_card["ndcg"]


@pytest.fixture(scope="module")
def tiny_model(small_assets):
    data = open_eval_set(small_assets.eval_path.parent).load()
    model = NeuMF(NeuMFShape(data.num_users, data.num_items), seed=3)
    train(model, data, TrainingConfig(epochs=1, batch_size=1024, seed=3))
    return model, data


def test_export_reload_gives_the_in_process_scores(tiny_model, tmp_path):
    model, data = tiny_model
    users, items = data.eval_users.repeat(10), data.eval_items[:, :10].reshape(-1)
    in_process = tf.sigmoid(model.logits(tf.constant(users), tf.constant(items))).numpy()
    export_model(model, tmp_path, {"hr": 0.0})
    reloaded = serve(tf.saved_model.load(str(tmp_path / "1")), users, items)
    np.testing.assert_allclose(reloaded, in_process, rtol=1e-6, atol=1e-7)


def test_a_re_export_is_the_next_version_and_replaces_the_old(tiny_model, tmp_path):
    model, _ = tiny_model
    first = export_model(model, tmp_path, {"note": "first"})
    second = export_model(model, tmp_path, {"note": "second"})
    assert (first["version"], second["version"]) == (1, 2)
    assert numeric_versions(tmp_path) == [2]
    assert read_model_card(tmp_path) == {"note": "second", "version": 2}
    assert sorted(entry.name for entry in tmp_path.iterdir()) == [
        ".autotune-model-dir.json", "2", "model_card.json"]
