"""A study storage that stops answering mid-trial ends the run in one line, exit 2, with
its server stopped (issue 27, item 8: PostgreSQL stopped mid-trial printed six
tracebacks and Optuna's "exceeding max length")."""

from __future__ import annotations

import pytest

from postgres import available_cluster

from .faults import WhenMeasuring, local_server
from .leftovers import serving_processes_of, wait_until
from .test_killed_tuner import CLEANUP_S, FIND_SERVER_S, _tuner


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test's own (it is stopped mid-run): as the session's,
    skipped where none can start, failed instead under CI=true."""
    with available_cluster() as server:
        yield server


def test_postgresql_stopped_mid_trial_is_one_line_and_leaves_no_server(own_postgres,
                                                                        small_assets):
    url = own_postgres.url()
    tuner = _tuner(url, small_assets, "--measure-seconds", "3")
    fault = WhenMeasuring(lambda: local_server(tuner.pid), lambda _server: own_postgres.stop())
    fault.start()
    try:
        fault.wait_acted(FIND_SERVER_S)
        _, stderr = tuner.communicate(timeout=FIND_SERVER_S)
    finally:
        fault.cancel()
        tuner.kill()
    lines = stderr.strip().splitlines()
    assert tuner.returncode == 2, stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith("autotune: error: lost the study storage postgresql://")
    assert "max length" not in stderr and own_postgres.password not in stderr
    wait_until(lambda: not serving_processes_of(tuner.pid), CLEANUP_S)
