"""The host class: parts -> digest and study name; a study refuses a worker of another class."""

import optuna
import pytest

from autotune.errors import UsageError
from autotune.fleet import check_host_class, hardware_parts, make_host_class, model_fingerprint
from autotune.host.facts import detect_host

STUDY = {"mode": "online", "objective": "mean", "space": "default", "dataset": "synthetic"}
HARDWARE = {"cpu_model": "Xeon 8175M", "physical_cores": 8, "sockets": 2, "numa_layout": [8, 8],
            "memory_gib": 64}


def test_the_name_is_readable_and_the_digest_follows_every_part():
    host_class = make_host_class(HARDWARE, "local intel-tensorflow==2.14.0", "abc", STUDY)
    assert host_class.study_name().startswith("online-synthetic-8c2s-")
    assert len(host_class.digest) == 10
    same = make_host_class(dict(HARDWARE), "local intel-tensorflow==2.14.0", "abc", dict(STUDY))
    assert same == host_class  # another host of the class: the same study
    for changed in ({**HARDWARE, "memory_gib": 32}, {**HARDWARE, "numa_layout": [16]}):
        assert make_host_class(changed, "local intel-tensorflow==2.14.0", "abc", STUDY).digest \
            != host_class.digest
    assert make_host_class(HARDWARE, "sha256:1", "abc", STUDY).digest != host_class.digest
    assert make_host_class(HARDWARE, "local", "abc", {**STUDY, "objective": "p99"}).digest \
        != make_host_class(HARDWARE, "local", "abc", STUDY).digest


def test_a_manual_class_stands_for_the_hardware():
    rack = make_host_class(HARDWARE, "local", "abc", STUDY, manual_name="rack a")
    other_hardware = make_host_class({**HARDWARE, "physical_cores": 4}, "local", "abc", STUDY,
                                     manual_name="rack a")
    assert rack == other_hardware and rack.name == "online-synthetic-rack-a"
    assert "cpu_model" not in rack.parts and rack.parts["host_class"] == "rack a"


def test_a_study_refuses_another_class_naming_the_differing_parts():
    study = optuna.create_study()
    ours = make_host_class(HARDWARE, "local", "abc", STUDY)
    check_host_class(study, ours)  # a new study takes the first worker's class
    assert study.user_attrs["host_class"]["parts"]["sockets"] == 2
    check_host_class(study, ours)
    smaller = make_host_class({**HARDWARE, "physical_cores": 4, "sockets": 1}, "local", "abc",
                              STUDY)
    with pytest.raises(UsageError) as raised:
        check_host_class(study, smaller)
    message = str(raised.value)
    assert "physical_cores 4 (study: 8)" in message and "sockets 1 (study: 2)" in message
    assert "memory_gib" not in message and "\n" not in message and raised.value.exit_code == 2


def test_this_hosts_parts_and_the_model_fingerprint(small_assets, tmp_path):
    parts = hardware_parts(detect_host())
    assert parts["physical_cores"] >= 1 and sum(parts["numa_layout"]) >= parts["physical_cores"]
    assert parts["memory_gib"] >= 0
    fingerprint = model_fingerprint(small_assets.model_dir)
    assert len(fingerprint) == 16 and fingerprint == model_fingerprint(small_assets.model_dir)
    assert model_fingerprint(tmp_path) == "none"
