"""The reliability suite (issue 8): every fault and bad input reproduced for real.

Every test here is marked `reliability` (`pytest -m reliability` runs the suite alone);
RELIABILITY.md lists the cases and their outcomes. Servers, containers and storages are
real; afterwards no process or container of a test may be left.
"""

from __future__ import annotations

import pytest

from serving.fixtures import serving_image, tiny_model  # noqa: F401 (fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)
