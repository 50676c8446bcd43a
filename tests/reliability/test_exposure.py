"""Every server a launcher starts listens on loopback only; one that does not is named.

The listening address is read from the kernel's socket table (psutil), as `ss -ltn`
shows it: a `0.0.0.0` or `::` listener is reachable from other hosts.
"""

from __future__ import annotations

import json
import logging
import uuid
from io import BytesIO

import docker
import psutil
import pytest

from autotune.launch import ServerSettings
from autotune.launch._listening import listening_addresses
from autotune.launch.docker import DockerLauncher
from autotune.launch.local import LocalLauncher
from autotune.serving.options import BIND_ADDRESS_ENV, parse_options
from autotune.tuning.run import run_tuning

START_S = 120


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_the_local_server_listens_on_loopback_only_grpc_and_rest(tiny_model):
    with LocalLauncher(tiny_model, rest=True) as launcher:
        address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_S)
        server_sockets = [c for c in psutil.Process(launcher.pid).net_connections(kind="inet")
                          if c.status == psutil.CONN_LISTEN]
        assert {c.laddr.ip for c in server_sockets} <= {"127.0.0.1", "::ffff:127.0.0.1"}
        assert {c.laddr.port for c in server_sockets} == {_port(address),
                                                          _port(launcher.rest_address)}
        assert listening_addresses(_port(address)) == ["127.0.0.1"]
        assert listening_addresses(_port(launcher.rest_address)) == ["127.0.0.1"]
        assert launcher.exposure is None


@pytest.mark.docker
def test_the_container_listens_on_loopback_only_grpc_and_rest(serving_image, tiny_model):
    with DockerLauncher(tiny_model, image=serving_image, rest=True) as launcher:
        address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_S)
        assert listening_addresses(_port(address)) == ["127.0.0.1"]
        assert listening_addresses(_port(launcher.rest_address)) == ["127.0.0.1"]
        assert launcher.exposure is None


@pytest.fixture
def foreign_image(serving_image):
    """An image that listens on every interface whatever it is asked, as TF Serving's
    own images do (built FROM the serving image, with the address forced by a flag)."""
    client = docker.from_env()
    tag = f"autotune-test/foreign:{uuid.uuid4().hex[:8]}"
    recipe = (f"FROM {serving_image}\n"
              'ENTRYPOINT ["/usr/bin/tf_serving_entrypoint.sh", "--bind_address=0.0.0.0"]\n')
    client.images.build(fileobj=BytesIO(recipe.encode()), tag=tag, rm=True)
    yield tag
    client.images.remove(tag, force=True)


@pytest.mark.docker
def test_a_foreign_image_listening_everywhere_is_named_in_the_log(foreign_image, tiny_model,
                                                                  caplog):
    with caplog.at_level(logging.WARNING, logger="autotune.launch"), \
            DockerLauncher(tiny_model, image=foreign_image) as launcher:
        address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(START_S)
        assert set(listening_addresses(_port(address))) & {"0.0.0.0", "::"}
    assert launcher.exposure and "reachable from other hosts" in launcher.exposure
    assert foreign_image in launcher.exposure
    assert launcher.exposure in caplog.text


@pytest.mark.docker
def test_a_foreign_image_listening_everywhere_is_named_in_the_report(foreign_image, small_assets,
                                                                     tuning_options):
    options = tuning_options("online", server="docker", image=foreign_image, trials=1,
                             confirm_budget=0)
    assert run_tuning(options, assets=small_assets) == 0
    (report,) = options.report_dir.glob("*.json")
    exposure = json.loads(report.read_text())["exposure"]
    assert exposure and foreign_image in exposure and "reachable from other hosts" in exposure
    assert exposure in report.with_suffix(".md").read_text()


def test_run_by_hand_the_server_listens_everywhere_as_tf_serving_does():
    assert parse_options([], environ={}).bind_address == "0.0.0.0"
    assert parse_options([], environ={BIND_ADDRESS_ENV: "127.0.0.1"}).bind_address == "127.0.0.1"
    assert parse_options(["--bind_address=::1"], environ={}).listen_target == "[::1]:8500"
