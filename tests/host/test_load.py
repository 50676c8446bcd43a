"""The load meter against real processes: a detached burner is foreign, a child is the
tuner's own, and the quiet policy measures again once the host calms."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from autotune.host.load import LoadMeter, QuietPolicy, measure_quietly
from burner import cpu_burner

#: the CPU the burners spin on, and the only one metered: one busy CPU of one is a share
#: near 1, whatever the number of CPUs of the host that runs the tests
CPU = min(os.sched_getaffinity(0))


def test_a_detached_burner_is_foreign_and_a_child_burner_is_not() -> None:
    meter = LoadMeter(cpus=[CPU])
    with cpu_burner(CPU):
        foreign = meter.over(2.0)
    child = subprocess.Popen([sys.executable, "-c", "import os, time\n"
                              f"os.sched_setaffinity(0, {{{CPU}}})\n"
                              "end = time.monotonic() + 4\n"
                              "while time.monotonic() < end: pass"])
    try:
        time.sleep(0.5)
        own = meter.over(2.0)
    finally:
        child.kill()
        child.wait()
    assert foreign.foreign_cpu >= 0.5, foreign
    assert own.foreign_cpu <= foreign.foreign_cpu - 0.4, (own, foreign)
    assert 0 <= foreign.steal <= 1 and foreign.seconds >= 2.0


def test_a_busy_measurement_waits_for_calm_and_is_measured_again() -> None:
    meter = LoadMeter(cpus=[CPU])
    with cpu_burner(CPU) as burner:
        calls = []

        def measure() -> int:
            time.sleep(1.0)
            calls.append(len(calls) + 1)
            if len(calls) == 1:
                burner.stop()  # the other job ends while the tuner waits
            return calls[-1]

        measured = measure_quietly(measure, meter, QuietPolicy(0.3, quiet_wait_s=30))
    assert measured.results == [1, 2] and measured.result == 2
    assert measured.loads[0].foreign_cpu > 0.3 >= measured.loads[1].foreign_cpu
    assert not measured.busy


def test_a_host_that_stays_busy_is_marked_busy() -> None:
    meter = LoadMeter(cpus=[CPU])
    with cpu_burner(CPU):
        measured = measure_quietly(lambda: time.sleep(1.0), meter,
                                   QuietPolicy(0.3, quiet_wait_s=2))
    assert len(measured.results) == 1 and measured.busy
    assert measured.load.foreign_cpu > 0.3


def test_without_a_bound_the_load_is_recorded_and_nothing_waits() -> None:
    with cpu_burner(CPU):
        measured = measure_quietly(lambda: time.sleep(1.0), LoadMeter(cpus=[CPU]),
                                   QuietPolicy(None))
    assert len(measured.results) == 1 and not measured.busy
    assert measured.load.foreign_cpu > 0.3
