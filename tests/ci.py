"""A component a test needs that this host lacks: the test skips with the reason, except
under CI=true, whose `.ci/run` promises every component: there it fails, saying so."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(promise: str, reason: str) -> NoReturn:
    """Skip with `reason`; under CI=true fail instead: "CI promises `promise`: reason"."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI promises {promise}: {reason}")
    pytest.skip(reason)
