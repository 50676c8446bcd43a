"""What a predict request is built from: named input arrays sharing their first dimension.

Every request the tuner sends, of any model, is some rows of `RequestRows`: the arrays
of a signature's inputs (one row of each per example), the signature they are for and
the outputs to ask for. The NCF workload's rows are (user, item) eval pairs; a records
workload's are the rows of the recorded requests (autotune.measure.records). Online
requests are single rows (`split`), batch requests many rows joined (`cycled`), and both
clients build their request from rows alike (autotune.measure.grpc_client, rest_client).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class RequestRows:
    """Named input arrays with the same first dimension, for `signature`; `outputs` are
    the outputs to ask for (empty: all of the signature's)."""

    arrays: Mapping[str, np.ndarray]
    signature: str = DEFAULT_SIGNATURE
    outputs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        arrays = {name: np.asarray(array) for name, array in self.arrays.items()}
        if not arrays or any(array.ndim == 0 for array in arrays.values()):
            raise ValueError("request rows need at least one input, each with a first dimension")
        lengths = {name: len(array) for name, array in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"inputs of one request need the same first dimension: {lengths}")
        object.__setattr__(self, "arrays", arrays)

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def take(self, rows: slice | Sequence[int] | np.ndarray) -> "RequestRows":
        """These rows (a slice or indexes), for the same signature and outputs."""
        return replace(self, arrays={name: array[rows] for name, array in self.arrays.items()})

    def split(self) -> list["RequestRows"]:
        """One `RequestRows` per row: what batch-1 requests are built from."""
        return [self.take(slice(index, index + 1)) for index in range(len(self))]

    def cycled(self, count: int) -> "RequestRows":
        """`count` rows: these rows in order, again from the first as often as needed (a
        batch made by joining requests along the first dimension)."""
        return self.take(np.arange(count) % len(self))

    def sample(self, count: int, seed: int) -> "RequestRows":
        """A seeded sample of `count` distinct rows in their order (all of them when fewer)."""
        return self.take(sample_indexes(len(self), count, seed))

    @staticmethod
    def join(parts: Sequence["RequestRows"]) -> "RequestRows":
        """The rows of `parts` one after another (the same signature and outputs as the first)."""
        first = parts[0]
        return replace(first, arrays={name: np.concatenate([part.arrays[name] for part in parts])
                                      for name in first.arrays})


def sample_indexes(total: int, count: int, seed: int) -> np.ndarray:
    """`count` distinct indexes below `total`, seeded, ascending (all of them when fewer)."""
    if count >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))


class Sender(Protocol):
    """What the measurements and the gates drive: the gRPC `ServingClient` or the REST
    client, which build a request of rows once and send it again and again."""

    def request(self, rows: RequestRows) -> Any: ...

    def send(self, request: Any) -> dict[str, np.ndarray]: ...

    def send_async(self, request: Any) -> Any: ...

    def receive(self, future: Any) -> dict[str, np.ndarray]: ...

    def predict(self, rows: RequestRows, batch_size: int = ...,
                in_flight: int = ...) -> dict[str, np.ndarray]: ...
