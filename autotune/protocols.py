"""The protocols a study measures over: TF Serving's gRPC API or its REST API.

Only names live here (this module imports nothing, so `autotune --help`, the modes and
the report read it): each protocol's `--protocol` value, the label a report prints and
the port TF Serving's image serves it on. What connects a client of each protocol to a
started server is autotune.measure.running; a server is asked to serve REST only when
REST is measured (`Launcher(rest=True)`), so a gRPC study runs it exactly as before.
"""

from __future__ import annotations

from enum import StrEnum


class Protocol(StrEnum):
    """A protocol's `--protocol` value (a str: stored in study attrs as it is)."""

    GRPC = "grpc"
    REST = "rest"


GRPC, REST = Protocol.GRPC, Protocol.REST
#: the `--protocol` choices
PROTOCOLS = tuple(Protocol)
#: how a report names each protocol
PROTOCOL_LABELS = {GRPC: "gRPC", REST: "REST"}
#: the port each protocol is served on in the image, as in TF Serving's
PROTOCOL_PORTS = {GRPC: 8500, REST: 8501}
