"""The embedded TF-Serving-compatible gRPC model server.

It answers `PredictionService.Predict`, `PredictionService.GetModelMetadata` and
`ModelService.GetModelStatus` with TF Serving's own protos (from
`tensorflow-serving-api`), for the highest numeric version under
`$MODEL_BASE_PATH/$MODEL_NAME`, and takes the same flags and environment as
`tensorflow_model_server` in TF Serving's MKL image. So the tuner, its client and the
launchers drive it exactly like TF Serving, on hosts where no TF Serving binary or image
can be had.

This package imports nothing from the tuner (only the light `autotune/__init__.py`), so
the serving image ships just TensorFlow, grpcio, the serving protos and these files.

    python -m autotune.serving --model_name=ncf --model_base_path=/models/ncf

Modules: `options` (flags and environment), `tensors` (TensorProto <-> numpy),
`model` (the loaded SavedModel and its signatures), `validation` (checking and decoding a
request against a signature), `service` (the gRPC servicers), `warmup` (TF Serving's
warmup records, replayed before the version is AVAILABLE), `server` (the process).
"""
