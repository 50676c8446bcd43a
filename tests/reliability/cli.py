"""`autotune` run as a user runs it, and what a refusal must look like: one line, exit 2.

`autotune(...)` runs the command in a child process (the test's environment, with a
home of the test's own when given); `modes_obeyed=True` runs it without the power to
override file modes (root drops CAP_DAC_OVERRIDE, DAC_READ_SEARCH and FOWNER with
`setpriv`), so a folder of mode 0555 is read-only for it as it is for any user.
`dashboard(...)` runs `autotune dashboard` on a free port while a test asks it questions
(`http_status`).
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: TensorFlow's import on a busy host, and nothing else
REFUSAL_S = 90
#: what lets root write where the modes say no
_OVERRIDES = "-dac_override,-dac_read_search,-fowner"
#: the address `autotune dashboard` prints first
ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)/dashboard/")


def autotune(*args: str, home: Path | None = None, env: dict[str, str] | None = None,
             modes_obeyed: bool = False,
             timeout: float = REFUSAL_S) -> subprocess.CompletedProcess:
    """`python -m autotune ARGS`; its result (stdout and stderr as text)."""
    command = [sys.executable, "-m", "autotune", *args]
    if modes_obeyed and os.geteuid() == 0:
        command = ["setpriv", f"--inh-caps={_OVERRIDES}", f"--bounding-set={_OVERRIDES}",
                   "--", *command]
    environment = {**os.environ, **(env or {})}
    if home is not None:
        environment["AUTOTUNE_HOME"] = str(home)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=environment)


def refused(run: subprocess.CompletedProcess, *words: str) -> str:
    """The one line of an exit-2 refusal, after checking that it is one line (no
    traceback) and holds every one of `words`."""
    assert run.returncode == 2, run.stderr[-3000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autotune: error: "), run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@contextmanager
def dashboard(storage: str, *flags: str) -> Iterator[int]:
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


def http_status(port: int, method: str, path: str, **headers: str) -> int:
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
