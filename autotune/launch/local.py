"""Run the model server as a child process of the tuner.

The program is TF Serving's `tensorflow_model_server` when one is on PATH, else the
embedded server (`python -m autotune.serving`). Both get the flags TF Serving's image
passes (port, model name and path, the two parallelism flags, REST off unless `rest`, the
batching flags with the file written beside the log) and the settings as environment, so
OpenMP reads `OMP_NUM_THREADS` and `KMP_*` at start.

The child runs in its own session (process group), so a Ctrl-C in the terminal reaches
only the tuner, and `stop()` ends the whole group: SIGTERM, then SIGKILL after a grace
period. Its output goes to a log file that `logs()` reads; closing the launcher ends
it (its watchdog removes the log's folder; the last lines stay readable). If the tuner
dies without stopping it, the launcher's watchdog (autotune.launch.watchdog, a process
of the tuner's) kills the group, whatever binary runs there: TF Serving's own does not
watch its parent. The embedded server is also told the tuner's pid (it stops by itself
then, too), and every server is asked to listen on 127.0.0.1 only.

A server with a CPU or memory limit (`ServerSettings.cpus`, `memory_mb`: `--cpus`,
`--memory`, right-sizing) runs in a cgroup of its own with that quota, made before it
starts and removed once it stopped (autotune.launch.server_cgroup).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import psutil

from autotune.launch._ports import free_port
from autotune.launch.base import (
    KEPT_LOG_LINES,
    Launcher,
    LauncherUnavailableError,
    ModelLocation,
    last_lines,
)
from autotune.launch.batching_file import batching_args, write_batching_file
from autotune.launch.server_cgroup import ServerCgroup
from autotune.launch.settings import ServerSettings
from autotune.launch.watchdog import Watchdog, local_line
from autotune.serving.options import BIND_ADDRESS_ENV, LOOPBACK, PARENT_PID_ENV

TF_SERVING_BINARY = "tensorflow_model_server"
EMBEDDED_SERVER = (sys.executable, "-m", "autotune.serving")


def default_program() -> tuple[str, ...]:
    """`tensorflow_model_server` from PATH when present, else the embedded server."""
    binary = shutil.which(TF_SERVING_BINARY)
    return (binary,) if binary else EMBEDDED_SERVER


def _read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


class LocalLauncher(Launcher):
    """A server process on this host, on a free port of 127.0.0.1."""

    kind = "local"

    def __init__(self, model: ModelLocation, program: Sequence[str] | None = None,
                 stop_grace_s: float = 10.0, rest: bool = False) -> None:
        super().__init__(model, rest)
        self.program = tuple(program) if program else default_program()
        self.stop_grace_s = stop_grace_s
        self._process: subprocess.Popen[bytes] | None = None
        #: the running server's cgroup, when it runs under a limit
        self._cgroup: ServerCgroup | None = None
        self._watchdog = Watchdog("local", "autotune-local-server-")
        self.log_path = self._watchdog.folder / "server.log"
        #: the log's tail once the launcher closed (its watchdog removes the folder then)
        self._kept_logs: str | None = None

    def describe(self) -> str:
        name = "embedded server" if self.program == EMBEDDED_SERVER else self.program[0]
        return f"local ({name})"

    def command(self, settings: ServerSettings, port: int, rest_port: int = 0) -> list[str]:
        """The command line of one start, pinned with `taskset` when a cpuset is asked."""
        command = [
            *self.program,
            f"--port={port}",
            f"--rest_api_port={rest_port}",
            f"--model_name={self.model.name}",
            f"--model_base_path={Path(self.model.base_path).resolve()}",
            *settings.server_args(),
        ]
        if settings.batching is not None:
            path = write_batching_file(settings.batching, self.log_path.parent)
            command += batching_args(str(path))
        if settings.cpuset:
            taskset = shutil.which("taskset")
            if not taskset:
                raise LauncherUnavailableError(
                    "pinning a local server to CPUs needs `taskset` (util-linux); install it "
                    "or drop the cpuset")
            command = [taskset, "--cpu-list", settings.cpuset, *command]
        return command

    def start(self, settings: ServerSettings) -> str:
        self.stop()
        port = free_port()
        command = self.command(settings, port, self._rest_port(port))
        if settings.cpus is not None or settings.memory_mb is not None:
            self._cgroup = ServerCgroup.create(settings.cpus, settings.memory_mb)
            command = self._cgroup.wrap(command)
        try:
            with open(self.log_path, "wb") as log:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, **settings.env(), "MODEL_NAME": self.model.name,
                         PARENT_PID_ENV: str(os.getpid()), BIND_ADDRESS_ENV: LOOPBACK},
                    start_new_session=True)
        except BaseException:
            self.stop()  # no cgroup left behind by a start that never ran
            raise
        try:
            self._watchdog.watch(local_line(self._process.pid))
        except psutil.NoSuchProcess:  # it failed at once: waiting says why
            pass
        self._address = f"{LOOPBACK}:{port}"
        return self._address

    @property
    def pid(self) -> int | None:
        """The server's process id (its process group id too), while one was started."""
        return self._process.pid if self._process else None

    def server_pids(self) -> list[int]:
        return [self._process.pid] if self._process else []

    def rss_mb(self) -> float | None:
        """The resident memory of the server process and anything it spawned (psutil)."""
        if self._process is None:
            return None
        try:
            server = psutil.Process(self._process.pid)
            processes = [server, *server.children(recursive=True)]
            return sum(process.memory_info().rss for process in processes) / 2**20
        except psutil.Error:
            return None

    def _exit_reason(self) -> str | None:
        if self._process is None:
            return "was stopped"
        code = self._process.poll()
        return None if code is None else f"exited with code {code}"

    def stop(self) -> None:
        try:
            self._stop_process()
        finally:
            cgroup, self._cgroup = self._cgroup, None
            if cgroup is not None:
                cgroup.remove()

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        self._address = None
        if process is None:
            return
        self._signal_group(process.pid, signal.SIGTERM)
        self._signal_group(process.pid, signal.SIGCONT)  # a paused server handles it too
        try:
            process.wait(self.stop_grace_s)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (the server itself past the grace period, or
        # anything it spawned) is killed.
        self._signal_group(process.pid, signal.SIGKILL)
        process.wait()
        self._watchdog.watch()  # nothing of ours runs now

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server and keep its log's tail, then let the watchdog go: it finds
        nothing left to kill, and removes the log's folder."""
        self.stop()
        self._kept_logs = last_lines(_read_log(self.log_path), KEPT_LOG_LINES)
        self._watchdog.close()

    @staticmethod
    def _signal_group(group_id: int, signum: int) -> None:
        try:
            os.killpg(group_id, signum)
        except ProcessLookupError:
            pass

    def logs(self, lines: int = 50) -> str:
        text = self._kept_logs if self._kept_logs is not None else _read_log(self.log_path)
        return last_lines(text, lines)
