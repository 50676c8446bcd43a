"""Fixtures shared by the server, launcher and image tests: tiny models, a plain
`tensorflow-serving-api` client, and the Docker gate.

tests/conftest.py registers this module as a plugin, so every test can ask for its fixtures.
Docker tests use `serving_image`: it skips with the reason when no engine answers or the
image is absent, except under CI=true, where both are promised and it fails instead.
`$AUTOTUNE_TEST_IMAGE` names another image to test (a build of a work in progress).
"""

from __future__ import annotations

import os
import shlex

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from autotune.launch import ModelLocation, docker_ready
from autotune.paths import DEFAULT_IMAGE
from autotune.serving.server import SETTINGS_MARKER
from ci import unavailable
from serving.tiny_model import ITEMS, USERS, export_tiny_model

#: generous: two cores shared by the whole suite
START_DEADLINE_S = 120


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> ModelLocation:
    """Versions 1 and 2 of the tiny recommender (int32 ids) under `<tmp>/ncf`."""
    return ModelLocation(export_tiny_model(tmp_path_factory.mktemp("tiny") / "ncf"), "ncf")


@pytest.fixture(scope="session")
def tiny_uint16_model(tmp_path_factory: pytest.TempPathFactory) -> ModelLocation:
    """Version 1 of the tiny recommender exported the tutorial's way: `item_id` uint16."""
    base = tmp_path_factory.mktemp("tiny16") / "ncf"
    return ModelLocation(export_tiny_model(base, versions=(1,), item_dtype=tf.uint16), "ncf")


@pytest.fixture(scope="session")
def serving_image() -> str:
    """The serving image, when an engine is reachable and the image is present."""
    image = os.environ.get("AUTOTUNE_TEST_IMAGE", DEFAULT_IMAGE)
    if not docker_ready(image):
        reason = (f"no Docker engine reachable or image {image} absent "
                  f"(start dockerd; autotune image build --offline)")
        unavailable("Docker", reason)
    return image


class PlainClient:
    """What any TF Serving user writes with `tensorflow-serving-api`: stubs and
    `tf.make_tensor_proto`, nothing of autotune."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", 1 << 30)])
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    @staticmethod
    def request(model: str = "ncf", **inputs: np.ndarray) -> predict_pb2.PredictRequest:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.model_spec.signature_name = "serving_default"
        for name, values in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
        return request

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        return self.prediction.Predict(request, timeout=30)

    def scores(self, users: np.ndarray, items: np.ndarray, model: str = "ncf") -> np.ndarray:
        response = self.predict(self.request(model, user_id=users, item_id=items))
        return tf.make_ndarray(response.outputs["rating"])

    def signature_defs(self, model: str = "ncf") -> get_model_metadata_pb2.SignatureDefMap:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = model
        request.metadata_field.append("signature_def")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        self.prediction.GetModelMetadata(request, timeout=30).metadata["signature_def"].Unpack(
            signature_map)
        return signature_map

    def status(self, model: str = "ncf") -> get_model_status_pb2.GetModelStatusResponse:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        return self.models.GetModelStatus(request, timeout=30)

    def close(self) -> None:
        self.channel.close()


def reported_settings(log_text: str) -> dict[str, str]:
    """The fields of the server's settings line (the last one in `log_text`)."""
    lines = [line for line in log_text.splitlines() if line.startswith(SETTINGS_MARKER)]
    assert lines, f"no settings line in the server log:\n{log_text}"
    return dict(field.split("=", 1) for field in shlex.split(lines[-1][len(SETTINGS_MARKER):]))


def sample_ids(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Valid (user, item) id pairs of the tiny model."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, USERS, count).astype(np.int32),
            rng.integers(0, ITEMS, count).astype(np.int32))
