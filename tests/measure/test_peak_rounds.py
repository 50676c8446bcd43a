"""Server-mode racing rounds for real: embedded servers, MLPerf LoadGen, the race's own test.

The first round searches each finalist's peak in full; every later round starts its
LoadGen runs at the peak the finalist's last round found (a short refinement, not a
search). A finalist run under a CFS quota of a fifth of a CPU (the local launcher's
cgroup) is robustly slower than the same threads unlimited, on any host however busy,
so the paired rounds drop it; nothing is asserted about absolute rates.
"""

from __future__ import annotations

import re
from pathlib import Path

from autotune.data.eval_rows import EvalRows
from autotune.host.facts import detect_host
from autotune.launch.base import ModelLocation
from autotune.launch.group import InstanceGroup
from autotune.launch.local import EMBEDDED_SERVER, LocalLauncher
from autotune.launch.settings import ServerSettings
from autotune.measure.blocks import racing_blocks
from autotune.measure.peak import ServerLoad
from autotune.measure.running import running_server
from autotune.measure.side_by_side import SideBySide
from autotune.measure.workload import Workload
from autotune.options import PeakPolicy, RunSettings
from autotune.paths import MODEL_NAME
from autotune.progress import Progress
from autotune.racing import Finalist, race
from autotune.record.schema import TrialAttr
from autotune.search.space import describe_params
from processes import serving_processes

FAST = {"omp_num_threads": 1, "intra_op_parallelism": 1, "inter_op_parallelism": 1}
SLOW = {**FAST, "cpus": 0.2}
#: short LoadGen runs (~500 queries: early stopping's minimum for p99) under a generous
#: bound: the suite shares two busy cores
SHORT_RUNS = RunSettings(bound_ms=250.0, min_duration_s=0.5, min_queries=500,
                         max_duration_s=3.0)
SEARCH = PeakPolicy(start_qps=200, min_qps=20, precision=0.5, max_runs=5)


class Phases(Progress):
    """Keeps, per configuration measured, the rate its refinement started from (None for
    a full search) and the rates of its LoadGen runs."""

    def __init__(self) -> None:
        self.measured: list[tuple[str, str | None, list[str]]] = []

    def phase(self, text: str) -> None:
        if match := re.fullmatch(r"(.*): (?:peak search|refining around ([\d,]+) requests/s)",
                                 text):
            self.measured.append((match[1], match[2], []))
        elif match := re.fullmatch(r"LoadGen run \d+ at ([\d,]+) requests/s", text):
            self.measured[-1][2].append(match[1])


def test_later_rounds_refine_the_last_peak_and_a_slower_finalist_is_dropped(
        small_assets, cgroups, tmp_path):
    model = ModelLocation(Path(small_assets.model_dir), MODEL_NAME)
    load = ServerLoad(SHORT_RUNS, SEARCH, tmp_path / "loadgen")
    workload = Workload.build("server", "mean", 1, 1, EvalRows.load(Path(small_assets.eval_path)),
                              seed=0, server_load=load)
    progress = Phases()
    finalists = [Finalist(0, dict(FAST), True), Finalist(1, dict(SLOW), True)]
    with SideBySide(lambda: InstanceGroup(lambda: LocalLauncher(model, program=EMBEDDED_SERVER),
                                          detect_host()),
                    racing_blocks(workload, progress=progress), start_timeout_s=120,
                    request_timeout_s=15, progress=progress) as rounds:
        record = race(finalists, rounds, direction="maximize", budget_s=600, precision=0.02,
                      progress=progress, metric="qps_at_slo")
    fast, slow = record.finalists
    assert record.stopped == "one left" and fast.alive
    assert slow.dropped_reason.startswith("slower than") and slow.dropped_round >= 3
    assert all(len(finalist.measured) >= 3 for finalist in finalists)
    # the first round searched each in full; each later one started at its last peak
    values = {describe_params(f.params): iter(f.measured) for f in finalists}
    last: dict[str, float] = {}
    for label, around, rates in progress.measured:
        assert around == (None if label not in last else f"{last[label]:,.0f}")
        assert rates and (around is None or rates[0] == around)
        last[label] = next(values[label])
    assert not serving_processes()


def test_a_fresh_servers_first_judged_run_finds_it_warm(small_assets, tmp_path):
    """A fresh embedded server's first concurrent requests wait on its worker threads'
    first calls (~100 ms): the first judged LoadGen run of a search once had a tail 8-20x
    its next run's at the same rate, and so a racing round's refinement, which takes a
    miss as it comes, stepped down every round. The search's warm-up run takes that."""
    model = ModelLocation(Path(small_assets.model_dir), MODEL_NAME)
    two_runs = PeakPolicy(start_qps=400, step=1.001, max_runs=2, confirm_misses=False)
    load = ServerLoad(RunSettings(bound_ms=1000.0, min_duration_s=1.0, min_queries=500,
                                  max_duration_s=3.0), two_runs, tmp_path / "loadgen")
    rows = Workload.build("server", "mean", 1, 1, EvalRows.load(Path(small_assets.eval_path)),
                          seed=0).rows
    launcher = LocalLauncher(model, program=EMBEDDED_SERVER)
    with running_server(launcher, ServerSettings(1, 1, 1), MODEL_NAME, 120) as server:
        peak, attrs = load.search(server.clients, rows)
    first, second = peak.runs
    assert first.p99_ms < 4 * second.p99_ms + 5, (first.p99_ms, second.p99_ms)
    assert (Path(str(attrs[TrialAttr.LOADGEN_LOGS])) / "warm-up" / "mlperf_log_detail.txt"
            ).exists()
    assert not serving_processes()
