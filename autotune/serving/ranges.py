"""The valid id range of each model input, stored beside the SavedModel it belongs to.

An embedding lookup with an id outside its table fails deep inside the graph, and the
client would get TensorFlow's graph text (`indices[0] = 3706 is not in [0, 3706)
[[{{node GatherV2}}]]`). A model that states its ranges lets the server refuse such a
request before the graph runs, naming the input, the value and the range.

The ranges live in `<version>/assets.extra/autotune_input_ranges.json` (`{"item_id":
[0, 3705], ...}`, inclusive): `assets.extra/` is where TF Serving looks for extra files
of a version (its warm-up requests) and which every loader otherwise ignores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

RANGES_FILE = Path("assets.extra") / "autotune_input_ranges.json"


def write_input_ranges(version_dir: Path, ranges: Mapping[str, tuple[int, int]]) -> None:
    """Store the inclusive `(low, high)` id range of each input in a version folder."""
    path = version_dir / RANGES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: list(bounds) for name, bounds in ranges.items()}) + "\n")


def read_input_ranges(version_dir: Path) -> dict[str, tuple[int, int]]:
    """The ranges a version states; empty when it states none (any model not autotune's)."""
    try:
        stored = json.loads((version_dir / RANGES_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {name: (int(low), int(high)) for name, (low, high) in stored.items()}
