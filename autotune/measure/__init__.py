"""How a trial measures a running server: its objective, its accuracy, a racing round.

    running        one server's life for one measurement (start, AVAILABLE, connect, stop)
    workload       what a trial measures per mode (`MEASUREMENTS`), and one racing block
    latency        online: batch-1 latency until precise
    throughput     batch: throughput of large requests on every instance at once
    peak           server: the most requests/s under the p99 bound (`ServerLoad`)
    loadgen        MLPerf LoadGen's Server scenario, its client processes
                   (loadgen_worker.py, or loadgen_client.cc built by native.py)
    side_by_side   one racing round with every finalist's server up at once
    blocks         what such a round measures of each server, by mode (`racing_blocks`)
    peak_rounds    server mode's rounds: a peak refined around the last one found
    accuracy       the NCF model's gate (HR/NDCG through the server, against the floors)
    agreement      any model's gate: its outputs through the server against a reference
    records        recorded requests (TF Serving's PredictionLog TFRecords) read and
                   checked against the model's signature
    rows           what a request is built from: named input arrays (`RequestRows`)
    grpc_client    the gRPC client; rest_client the REST one; signature what both read
                   of the model's metadata (and the NCF model's user and item inputs)

The public names load on first use (lazy_loader): `loadgen_worker` runs as a client
process of its own and must start without TensorFlow, which the clients import.
"""

import os

import lazy_loader

# The serving protos import TensorFlow; its C++ banner is noise in the tuner's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "accuracy": ["AccuracyGate", "AccuracyResult"],
    "agreement": ["AgreementGate", "AgreementResult", "build_agreement_gate", "compare"],
    "blocks": ["PreciseBlocks", "RoundBlocks", "racing_blocks"],
    "grpc_client": ["ServingClient"],
    "latency": ["LatencyResult", "measure_latency"],
    "peak": ["ServerLoad", "find_peak"],
    "peak_rounds": ["PeakRounds"],
    "records": ["Records", "check_records", "read_records"],
    "rest_client": ["RestClient", "RestError"],
    "rows": ["RequestRows"],
    "running": ["CLIENT_ERRORS", "RunningServer", "connect", "running_server"],
    "side_by_side": ["SideBySide"],
    "signature": ["NCF_INPUTS", "PairInputs", "Signature", "model_signatures", "pair_rows"],
    "throughput": ["ThroughputResult", "measure_throughput"],
    "workload": ["MEASUREMENTS", "Workload"],
})
