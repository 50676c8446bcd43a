"""One client process of the LoadGen adapter, in Python: sends the Predicts LoadGen issues.

`autotune.measure.loadgen.PredictSUT` spreads its calls over a few client processes and keeps
only LoadGen and the bookkeeping in its own. It prefers their native twin
(`autotune/measure/loadgen_client.cc`, about half the CPU a call); this one runs where that
cannot be built. A Python gRPC call costs a few hundred microseconds of CPU under the
GIL, so one such process tops out near 2,500 calls/s on this kind of host.

The pipes, the same for both kinds:

- argv: `ISSUE_FD DONE_FD TIMEOUT_MS ADDRESS...`, one address per server instance, each
  query sent to the next in turn;
- stdin: the requests, each a `REQUEST_LENGTH` and that many bytes of a serialized
  `PredictRequest`, up to end of file; the worker then answers `ready` on stdout;
- issue pipe (in): `ISSUE` records, `(query id, request index)`; end of file ends the worker;
- done pipe (out): a `DONE` record per finished call, `(query id, status code, length)`,
  followed by that many bytes of the error's details when the call failed. Each record is
  one `write` of less than `PIPE_BUF`, so records from the gRPC threads never interleave.

This module imports only gRPC, so a worker starts in a fraction of a second.

    python -m autotune.measure.loadgen_worker ISSUE_FD DONE_FD TIMEOUT_MS ADDRESS...
"""

from __future__ import annotations

import itertools
import os
import struct
import sys

import grpc

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
ISSUE = struct.Struct("<QI")
DONE = struct.Struct("<QBH")
REQUEST_LENGTH = struct.Struct("<I")
#: an error's details are cut to this many bytes (keeps each record one atomic write)
MAX_DETAILS = 1024
READ_SIZE = 1 << 16


def serve(issue_fd: int, done_fd: int, timeout_s: float, addresses: list[str]) -> None:
    """Send every issued query as an asynchronous Predict; report each when it finishes."""
    requests = read_requests(sys.stdin.buffer.read())
    channels = [grpc.insecure_channel(address) for address in addresses]
    predicts = itertools.cycle([channel.unary_unary(PREDICT_METHOD, _registered_method=True)
                                .future for channel in channels])
    # gRPC cancels a call whose future is garbage: hold each until it completes.
    in_flight: dict[int, grpc.Future] = {}

    def finished(query_id: int, future: grpc.Future) -> None:
        in_flight.pop(query_id, None)
        code = future.code()
        if code == grpc.StatusCode.OK:
            os.write(done_fd, DONE.pack(query_id, 0, 0))
        else:
            details = (future.details() or "").encode()[:MAX_DETAILS]
            os.write(done_fd, DONE.pack(query_id, code.value[0], len(details)) + details)

    print("ready", flush=True)
    pending = b""
    while chunk := os.read(issue_fd, READ_SIZE):
        pending += chunk
        whole = len(pending) - len(pending) % ISSUE.size
        for query_id, index in ISSUE.iter_unpack(pending[:whole]):
            future = next(predicts)(requests[index], timeout=timeout_s)
            in_flight[query_id] = future
            future.add_done_callback(lambda done, query_id=query_id: finished(query_id, done))
        pending = pending[whole:]
    for channel in channels:
        channel.close()


def frame_requests(requests: list[bytes]) -> bytes:
    """The requests as a worker reads them on stdin."""
    return b"".join(REQUEST_LENGTH.pack(len(request)) + request for request in requests)


def read_requests(framed: bytes) -> list[bytes]:
    """The inverse of `frame_requests`."""
    requests, offset = [], 0
    while offset < len(framed):
        (length,), offset = REQUEST_LENGTH.unpack_from(framed, offset), offset + REQUEST_LENGTH.size
        requests.append(framed[offset:offset + length])
        offset += length
    return requests


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000, sys.argv[4:])
