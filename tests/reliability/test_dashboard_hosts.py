"""`autotune dashboard` answers only requests addressed to it by a name the user gave:
a web page that points a name of its own at 127.0.0.1 (DNS rebinding), or sends
requests there from its own origin, changes nothing (issue 27, item 4)."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna

from trials import online_study

from .cli import dashboard, http_status


def _storage(tmp_path: Path) -> tuple[str, int]:
    storage = f"sqlite:///{tmp_path}/studies.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = online_study(storage, "kept")
    return storage, study._study_id


def test_a_request_for_another_host_or_from_another_origin_is_refused(tmp_path):
    """`curl -X DELETE -H 'Host: attacker.example' .../api/studies/1` deleted the study."""
    storage, study_id = _storage(tmp_path)
    with dashboard(storage) as port:
        local = f"127.0.0.1:{port}"
        assert http_status(port, "DELETE", f"/api/studies/{study_id}",
                    Host="attacker.example") == 403
        assert http_status(port, "DELETE", f"/api/studies/{study_id}", Host=local,
                    Origin="http://attacker.example") == 403
        assert http_status(port, "DELETE", f"/api/studies/{study_id}", Host=local,
                    Origin="null") == 403
        assert optuna.get_all_study_names(storage) == ["kept"]
        assert http_status(port, "GET", "/api/studies", Host=local) == 200
        assert http_status(port, "GET", "/api/studies", Host=f"localhost:{port}",
                    Origin=f"http://localhost:{port}") == 200


def test_a_name_given_on_purpose_is_answered(tmp_path):
    storage, _ = _storage(tmp_path)
    with dashboard(storage, "--allow-host", "tunnel.example") as port:
        assert http_status(port, "GET", "/api/studies", Host="tunnel.example:8080") == 200
        assert http_status(port, "GET", "/api/studies", Host="other.example") == 403
