"""The choices of the server-side batching knobs `--mode server` searches.

`enable_batching` is TF Serving's flag; when it is on, the trial also picks the batching
parameters TF Serving reads from `--batching_parameters_file`: `max_batch_size`,
`batch_timeout_micros` (bounded by what a p99 of a few milliseconds leaves room for) and
`num_batch_threads` (up to the physical cores). `max_enqueued_batches` is fixed
generously (autotune.launch.settings.MAX_ENQUEUED_BATCHES), so an overloaded run shows as
latency over the bound rather than as refusals; `allowed_batch_sizes` (padding, which
pays off on accelerators) is not searched. When batching is off, the batching params
are absent from the trial. The knobs themselves (names, labels, how they reach the
server) are rows of `autotune.launch.settings.KNOBS`; this module holds their choices.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator

import optuna

from autotune.launch.settings import BATCHING_PARAMS, BATCHING_SWITCH

ENABLE = BATCHING_SWITCH
#: a batch closes on its timeout long before it is full at these rates, so the cap
#: matters little for latency; it also caps the accuracy gate's requests
MAX_BATCH_SIZE_CHOICES = (32, 128, 512)
BATCH_TIMEOUT_MICROS_CHOICES = (0, 200, 1000, 3000)


@dataclass(frozen=True)
class BatchingChoices:
    """The values each batching knob may take on this host."""

    max_batch_size: tuple[int, ...] = MAX_BATCH_SIZE_CHOICES
    batch_timeout_micros: tuple[int, ...] = BATCH_TIMEOUT_MICROS_CHOICES
    num_batch_threads: tuple[int, ...] = (1,)

    @classmethod
    def for_cores(cls, physical_cores: int) -> "BatchingChoices":
        return cls(num_batch_threads=tuple(range(1, max(1, physical_cores) + 1)))

    def knobs(self) -> dict[str, tuple[int, ...]]:
        """The batching params (besides `enable_batching`) and their values."""
        return {name: getattr(self, name) for name in BATCHING_PARAMS}

    @property
    def size(self) -> int:
        """Configurations per thread setting: batching off, plus every batching combination."""
        return 1 + math.prod(len(values) for values in self.knobs().values())

    def configurations(self) -> Iterator[dict[str, object]]:
        """Batching off, then every combination with batching on."""
        yield {ENABLE: False}
        knobs = self.knobs()
        for values in itertools.product(*knobs.values()):
            yield {ENABLE: True, **dict(zip(knobs, values, strict=True))}

    def suggest(self, trial: optuna.Trial) -> dict[str, object]:
        """`enable_batching`, and the batching params only when it is on."""
        params: dict[str, object] = {ENABLE: trial.suggest_categorical(ENABLE, [False, True])}
        if params[ENABLE]:
            for name, values in self.knobs().items():
                params[name] = trial.suggest_categorical(name, list(values))
        return params
