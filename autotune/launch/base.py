"""The one interface every way of running a model server implements.

A launcher starts a TF-Serving-compatible server with a set of thread settings, waits
until the model is AVAILABLE, and stops it with nothing left behind. The tuner sees
only this interface; it never knows whether a trial ran in a container or a process.

Waiting is the same for every launcher (poll `GetModelStatus`, give up early when the
server has exited, stop it on any failure or interrupt), so it lives here; a launcher
supplies only how to start, stop, read logs and tell whether its server has exited.

Every launcher asks its server to listen on loopback only. Once the model is AVAILABLE
the socket table is read: a server that listens on every interface anyway (a foreign
image in host networking, which does not know the request) is named in the log and in
`exposure`, which the study stores for the report.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass
from pathlib import Path

from autotune.errors import ServerStartError, UsageError
from autotune.launch._ports import free_port
from autotune.launch.settings import ServerSettings
from autotune.paths import MODEL_NAME
from autotune.serving.options import LOOPBACK

#: log lines quoted in a `ServerStartError`
ERROR_LOG_LINES = 25
#: log lines a launcher keeps from a server it stopped, for `logs()` after `stop()`
KEPT_LOG_LINES = 200
LOG = logging.getLogger("autotune.launch")


def last_lines(text: str, lines: int) -> str:
    """The last `lines` lines of a server's log `text`."""
    return "\n".join(text.splitlines()[-lines:])


class LauncherUnavailableError(UsageError):
    """This way of launching cannot work on this host (no engine, no image, ...); the
    message says what to do instead. Exit code 2."""


@dataclass(frozen=True)
class ModelLocation:
    """A model on the host: `base_path` holds numeric version folders."""

    base_path: Path
    name: str = MODEL_NAME


class Launcher(abc.ABC):
    """Start, wait, stop: one running server at a time per launcher.

    Use as a context manager, or call `stop()` in a `finally`: a launcher always
    removes what it started, also after a failed start or an interrupt.
    """

    #: short name shown in reports and stored in the study (`docker`, `local`)
    kind: str = ""

    def __init__(self, model: ModelLocation, rest: bool = False) -> None:
        """`rest`: the server also serves TF Serving's REST API, on a port of its own
        (else it is started with `--rest_api_port=0`)."""
        self.model = model
        self.rest = rest
        self._address: str | None = None
        #: set when a started server listened on every interface (module docstring)
        self.exposure: str | None = None
        self._rest_address: str | None = None

    @property
    def address(self) -> str | None:
        """The gRPC address (`host:port`) of the started server, None when stopped."""
        return self._address

    @property
    def rest_address(self) -> str | None:
        """The REST address (`host:port`) of the started server when `rest`, else None."""
        return self._rest_address if self._address else None

    def _rest_port(self, grpc_port: int) -> int:
        """The `--rest_api_port` of the next start: a free port other than `grpc_port`
        when `rest`, else 0 (off)."""
        port = 0
        while self.rest and port in (0, grpc_port):
            port = free_port()
        self._rest_address = f"{LOOPBACK}:{port}" if port else None
        return port

    @property
    def addresses(self) -> list[str]:
        """Every started server's gRPC address (one here; several for an `InstanceGroup`)."""
        return [self._address] if self._address else []

    @property
    def rest_addresses(self) -> list[str]:
        """Every started server's REST address when `rest` (one here; several for a group)."""
        return [self.rest_address] if self.rest_address else []

    def rss_mb(self) -> float | None:
        """Resident memory of the running server(s) in MiB; None when unknown or stopped."""
        return None

    def server_pids(self) -> list[int]:
        """The host pids of the running server(s), their process trees included by whoever
        reads them (what else ran during a measurement: autotune.host.load)."""
        return []

    def stopped_cpu_s(self) -> float:
        """CPU seconds the servers this launcher stopped spent, where no process of the
        tuner's holds them (a container's); a local server, reaped by the tuner, is in
        the tuner's own reaped-children times already."""
        return 0.0

    @abc.abstractmethod
    def start(self, settings: ServerSettings) -> str:
        """Start a server with `settings` (stopping any running one); return its gRPC address."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the server and remove it; safe to call when nothing runs."""

    @abc.abstractmethod
    def logs(self, lines: int = 50) -> str:
        """The last `lines` lines the server wrote (the last `KEPT_LOG_LINES` are kept after
        `stop()` and after the launcher closed, until the next start)."""

    @abc.abstractmethod
    def _exit_reason(self) -> str | None:
        """None while the server runs; else how it ended (`exited with code 1`)."""

    def wait_until_available(self, deadline_s: float) -> None:
        """Block until the model is AVAILABLE, else raise `ServerStartError` with the log tail.

        Fails as soon as the server exits, not at the deadline. On any failure or
        interrupt (KeyboardInterrupt) the server is stopped before the error propagates.
        """
        # Imported here: the serving protos pull in TensorFlow, which `import
        # autotune.launch` should not.
        from autotune.launch._model_status import ServerNotAvailable, poll_until_available

        if self._address is None:
            raise RuntimeError("wait_until_available() called before start()")
        try:
            poll_until_available(self._address, self.model.name, deadline_s, self._exit_reason)
        except ServerNotAvailable as failure:
            message = (f"{self.describe()}: model '{self.model.name}' did not become AVAILABLE: "
                       f"{failure}\n--- last server log lines ---\n{self.logs(ERROR_LOG_LINES)}")
            self.stop()
            raise ServerStartError(message) from None
        except BaseException:
            self.stop()
            raise
        self._check_listening()

    def _check_listening(self) -> None:
        """Record (and log, once) a server that listens beyond this host, on its gRPC
        port or its REST port."""
        from autotune.launch._listening import exposed_addresses

        for address in filter(None, (self._address, self.rest_address)):
            port = int(address.rsplit(":", 1)[1])
            exposed = exposed_addresses(port)
            if exposed and self.exposure is None:
                self.exposure = (f"{self.describe()} listens on {', '.join(exposed)} port "
                                 f"{port}, reachable from other hosts while it runs (the "
                                 "image does not honour the loopback request)")
                LOG.warning("warning: %s", self.exposure)

    def describe(self) -> str:
        """One line for reports: the launcher and what it runs."""
        return self.kind

    def image_env(self) -> dict[str, str]:
        """The environment its servers start with before any setting (`image-defaults`).

        By default the project image's ENV (autotune.launch.image.image_default_env); a launcher
        that runs an image reads that image's own.
        """
        from autotune.launch.image import image_default_env

        return image_default_env()

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
