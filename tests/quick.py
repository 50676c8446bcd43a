"""Tuning options for short studies in tests: real servers, little work per trial.

Every server is real (the embedded server through the local launcher); what is made
small is the work per trial (short latency windows, small batches, a user sample for
the gate, a racing of ten seconds), so a study of a few trials takes seconds.
"""

from __future__ import annotations

from pathlib import Path

from autotune.options import LatencyPolicy, TuningOptions

QUICK_LATENCY = LatencyPolicy(warmup_requests=20, window=50, max_requests=1000, max_seconds=3.0)


def quick_options(folder: Path, mode: str = "online", **overrides: object) -> TuningOptions:
    """Options for a short local study with its storage and reports in `folder`."""
    quick = dict(mode=mode, server="local", storage=f"sqlite:///{folder}/studies.db",
                 report_dir=folder / "reports", batch_size=2000, iterations=5,
                 accuracy_users=100, confirm_top=1, confirm_budget=10, quiet=True,
                 latency_policy=QUICK_LATENCY)
    return TuningOptions(**{**quick, **overrides})
