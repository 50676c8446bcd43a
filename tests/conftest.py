"""Shared fixtures: an isolated $AUTOTUNE_HOME for the session, a small trained model, and
each kind of LoadGen client process.

`small_assets` is what integration tests serve: a synthetic dataset of 300 users and
500 items, trained for 5 epochs (5-10 s on 2 busy cores), whose model clears the tuner's default
accuracy floors (HR@10 0.22, NDCG@10 0.11) with margin.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from autotune.data.synthetic import SyntheticShape
from autotune.host.cgroups import SYSTEM
from autotune.host.lock import LOCK_FILE_ENV
from autotune.launch import ModelLocation, ServerSettings, make_launcher
from autotune.launch.server_cgroup import PREFIX, ServerCgroup
from autotune.measure.loadgen import NATIVE, PYTHON, client_program
from autotune.measure.native import NativeUnavailable
from autotune.options import TuningOptions
from ci import unavailable
from quick import quick_options

#: the tiny models and the Docker image gate (serving/fixtures.py), and the throwaway
#: PostgreSQL server (postgres.py), for every test folder
pytest_plugins = ["serving.fixtures", "postgres"]

SMALL_SHAPE = SyntheticShape(users=300, items=500, ratings=30_000)
SMALL_EPOCHS = 5


@pytest.fixture(scope="session", autouse=True)
def autotune_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$AUTOTUNE_HOME set to a fresh folder for the whole session: never ~/.cache/autotune.

    The host lock goes there too ($AUTOTUNE_LOCK_FILE), so test sessions running side by
    side on one host do not refuse each other's tuners; the host-wide default has its
    own test (tests/reliability).
    """
    home = tmp_path_factory.mktemp("autotune-home")
    saved = {name: os.environ.get(name) for name in ("AUTOTUNE_HOME", LOCK_FILE_ENV)}
    os.environ.update({"AUTOTUNE_HOME": str(home), LOCK_FILE_ENV: str(home / "tuner.lock")})
    yield home
    for name, previous in saved.items():
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.fixture
def ctrl_c_after() -> Iterator[Callable[[float], None]]:
    """`ctrl_c_after(seconds)`: a real SIGINT to this process, as a Ctrl-C would send.

    Python's own SIGINT handler is installed for the test: a shell starts a background
    job (`cmd &`, as a CI script or nohup may run the suite) with SIGINT ignored, and a
    Python started so never raises KeyboardInterrupt (four Ctrl-C tests failed so in a
    fresh clone's `.ci/run` started with `&`)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timers: list[threading.Timer] = []

    def arm(seconds: float) -> None:
        timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
        timers.append(timer)
        timer.start()

    yield arm
    for timer in timers:
        timer.cancel()
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def small_assets(tmp_path_factory: pytest.TempPathFactory):
    """A small prepared dataset and exported model (`autotune.assets.prepare.PreparedAssets`)."""
    from autotune.assets.prepare import prepare_assets

    root = tmp_path_factory.mktemp("small-assets")
    return prepare_assets(data_dir=root / "data", model_dir=root / "models" / "ncf",
                          epochs=SMALL_EPOCHS, seed=0, quiet=True, synthetic_shape=SMALL_SHAPE)



def _require_native_client() -> None:
    """Builds the native LoadGen client (g++ and gRPC's C++ headers); where it cannot be
    built the test skips with the reason, except under CI=true, whose `.ci/run` installs
    the toolchain."""
    try:
        client_program(NATIVE)
    except NativeUnavailable as error:
        unavailable("the native LoadGen client (.ci/run installs its toolchain)",
                    f"the native LoadGen client cannot be built here: {error}")


@pytest.fixture(params=[NATIVE, PYTHON])
def loadgen_client(request: pytest.FixtureRequest) -> str:
    """Each kind of LoadGen client process (the native one as `_require_native_client`)."""
    if request.param == NATIVE:
        _require_native_client()
    return request.param


@pytest.fixture
def native_toolchain() -> None:
    """A test of native builds: g++ and gRPC's C++ headers, as `_require_native_client`."""
    _require_native_client()


@pytest.fixture
def tuning_options(tmp_path: Path) -> Callable[..., TuningOptions]:
    """Options for a short study with the local launcher, storage and reports in tmp_path."""
    def make(mode: str = "online", **overrides: object) -> TuningOptions:
        return quick_options(tmp_path, mode, **overrides)
    return make


@pytest.fixture(scope="module")
def server_address(small_assets) -> Iterator[str]:
    """The gRPC address of a local server serving the small model (1/1/1 threads)."""
    with make_launcher("local", ModelLocation(Path(small_assets.model_dir))) as launcher:
        address = launcher.start(ServerSettings(1, 1, 1))
        launcher.wait_until_available(120)
        yield address


@pytest.fixture
def cgroups() -> Iterator[Path]:
    """The tuner's own cpu cgroup folder, where this host lets a test make groups (else
    skip, or fail under CI=true)."""
    try:
        ServerCgroup.create(1.0, None).remove()
    except Exception as error:  # noqa: BLE001 - the reason is the skip's message
        unavailable("a writable cgroup filesystem", f"cannot make cgroups here: {error}")
    parent = SYSTEM.group_dir("cpu")
    assert parent is not None
    yield parent
    assert not list(parent.glob(f"{PREFIX}{os.getpid()}-*")), "a server cgroup was left"
