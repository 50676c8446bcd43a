#!/bin/sh
# Turns the container environment into server flags, as TF Serving's MKL image does, and
# appends the container's arguments ("$@"), so a later `--port=...` or
# `--tensorflow_intra_op_parallelism=...` wins. `exec` makes the server PID 1, so
# `docker stop` (SIGTERM) reaches it and it shuts down gracefully.
exec python3 -m autotune.serving \
    --port=8500 \
    --rest_api_port=8501 \
    --model_name="${MODEL_NAME}" \
    --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" \
    --tensorflow_intra_op_parallelism="${TENSORFLOW_INTRA_OP_PARALLELISM}" \
    --tensorflow_inter_op_parallelism="${TENSORFLOW_INTER_OP_PARALLELISM}" \
    "$@"
