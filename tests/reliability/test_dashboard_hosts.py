"""`autotune dashboard` answers only requests addressed to it by a name the user gave:
a web page that points a name of its own at 127.0.0.1 (DNS rebinding), or sends
requests there from its own origin, changes nothing (issue 27, item 4)."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna

from trials import online_study

ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)/dashboard/")


@contextmanager
def _dashboard(storage: str, *flags: str) -> Iterator[int]:
    """`autotune dashboard --port 0` on `storage`; its port, while it runs."""
    process = subprocess.Popen([sys.executable, "-m", "autotune", "dashboard", "--storage",
                                storage, "--port", "0", *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_line = process.stdout.readline()
        match = ADDRESS.search(first_line)
        assert match, f"no address in {first_line!r}{process.stdout.read()[-2000:]}"
        yield int(match.group(1))
    finally:
        process.kill()
        process.wait()


def _ask(port: int, method: str, path: str, **headers: str) -> int:
    """The HTTP status of one request to the dashboard, with these headers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers={key.replace("_", "-"): value
                                                  for key, value in headers.items()})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _storage(tmp_path: Path) -> tuple[str, int]:
    storage = f"sqlite:///{tmp_path}/studies.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = online_study(storage, "kept")
    return storage, study._study_id


def test_a_request_for_another_host_or_from_another_origin_is_refused(tmp_path):
    """`curl -X DELETE -H 'Host: attacker.example' .../api/studies/1` deleted the study."""
    storage, study_id = _storage(tmp_path)
    with _dashboard(storage) as port:
        local = f"127.0.0.1:{port}"
        assert _ask(port, "DELETE", f"/api/studies/{study_id}",
                    Host="attacker.example") == 403
        assert _ask(port, "DELETE", f"/api/studies/{study_id}", Host=local,
                    Origin="http://attacker.example") == 403
        assert _ask(port, "DELETE", f"/api/studies/{study_id}", Host=local,
                    Origin="null") == 403
        assert optuna.get_all_study_names(storage) == ["kept"]
        assert _ask(port, "GET", "/api/studies", Host=local) == 200
        assert _ask(port, "GET", "/api/studies", Host=f"localhost:{port}",
                    Origin=f"http://localhost:{port}") == 200


def test_a_name_given_on_purpose_is_answered(tmp_path):
    storage, _ = _storage(tmp_path)
    with _dashboard(storage, "--allow-host", "tunnel.example") as port:
        assert _ask(port, "GET", "/api/studies", Host="tunnel.example:8080") == 200
        assert _ask(port, "GET", "/api/studies", Host="other.example") == 403
