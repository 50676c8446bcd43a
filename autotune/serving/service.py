"""The gRPC servicers: TF Serving's PredictionService (Predict, GetModelMetadata) and
ModelService (GetModelStatus), over one loaded model.

Each RPC turns a `RequestError` into its status and message; the server keeps serving
after every refused request. The metadata and status answers are built here for the
REST API too (`autotune.serving.rest`), so both protocols say the same.
"""

from __future__ import annotations

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from autotune.serving import tensors
from autotune.serving.batching import Runner, unbatched
from autotune.serving.model import ServedModel
from autotune.serving.validation import (
    RequestError,
    check_model_spec,
    decode_inputs,
    resolve_signature,
    select_outputs,
)

SIGNATURE_DEF_FIELD = "signature_def"


def graph_refusal(message: str) -> str:
    """TensorFlow's refusal without its graph text, for a model that states no input
    ranges (autotune.serving.ranges): the reason line (`indices[1] = 500 is not in [0,
    200)`), not the node, the op and the stack around it."""
    before_graph = message.split("[[", 1)[0].strip().splitlines()
    reason = before_graph[-1].strip() if before_graph else "no reason given"
    return f"the model refused the inputs: {reason}"


def _fill_model_spec(spec: model_pb2.ModelSpec, model: ServedModel,
                     signature_name: str = "") -> None:
    spec.name = model.name
    spec.version.value = model.version
    if signature_name:
        spec.signature_name = signature_name


def metadata_response(model: ServedModel) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadata's answer: the model spec and its SignatureDefMap."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    _fill_model_spec(response.model_spec, model)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(model.signature_def_map)
    return response


def status_response(model: ServedModel) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatus's answer: the one loaded version, AVAILABLE, status OK (the server
    listens only once the model is loaded)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    status = response.model_version_status.add()
    status.version = model.version
    status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    status.status.SetInParent()  # error_code OK, as TF Serving reports it
    return response


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; the other PredictionService RPCs stay UNIMPLEMENTED.

    `run` runs each Predict's model call (directly, or through the batching scheduler).
    Output tensors go in their typed value fields, as TF Serving writes them by default,
    or packed in `tensor_content` when `packed` (its
    `--enable_serialization_as_tensor_content`).
    """

    def __init__(self, model: ServedModel, max_batch_size: int, run: Runner = unbatched,
                 packed: bool = False) -> None:
        self._model = model
        self._max_batch_size = max_batch_size
        self._run = run
        self._packed = packed

    def Predict(self, request: predict_pb2.PredictRequest,
                context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        try:
            return self._predict(request)
        except RequestError as error:
            context.abort(error.code, error.message)
        except tf.errors.InvalidArgumentError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, graph_refusal(error.message))

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        signature = resolve_signature(self._model, request.model_spec)
        wanted = select_outputs(signature, request.output_filter)
        outputs = self._run(signature,
                            decode_inputs(signature, request.inputs, self._max_batch_size))
        response = predict_pb2.PredictResponse()
        _fill_model_spec(response.model_spec, self._model, signature.key)
        for name in wanted:
            tensors.encode_into(response.outputs[name], outputs[name], self._packed)
        return response

    def GetModelMetadata(
            self, request: get_model_metadata_pb2.GetModelMetadataRequest,
            context: grpc.ServicerContext) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            check_model_spec(self._model, request.model_spec)
            fields = set(request.metadata_field)
            if fields != {SIGNATURE_DEF_FIELD}:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"metadata_field must be ['{SIGNATURE_DEF_FIELD}'], "
                                   f"got {sorted(fields)}")
        except RequestError as error:
            context.abort(error.code, error.message)
        return metadata_response(self._model)


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: `status_response`."""

    def __init__(self, model: ServedModel) -> None:
        self._model = model

    def GetModelStatus(
            self, request: get_model_status_pb2.GetModelStatusRequest,
            context: grpc.ServicerContext) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            check_model_spec(self._model, request.model_spec)
        except RequestError as error:
            context.abort(error.code, error.message)
        return status_response(self._model)


def add_servicers(server: grpc.Server, model: ServedModel, max_batch_size: int,
                  run: Runner = unbatched, packed: bool = False) -> None:
    """Register both services for `model` on `server`; `run` runs each Predict's model
    call (`packed`: see PredictionServicer)."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(model, max_batch_size, run, packed), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusServicer(model), server)
