"""The `.env` file of the best settings: written for `docker run --env-file`, read back
by `autotune check` as the settings deployed.

One `KEY=value` line per variable, as Docker reads an env file: the model's name and
every knob carried by the environment (autotune.launch.settings.KNOBS: the thread
settings, and the OpenMP knobs in the extended space). Reading it accepts what Docker
accepts besides: blank lines and `#` comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autotune.errors import UsageError


def env_file_text(report: dict[str, Any]) -> str:
    """`KEY=value` lines of the best settings, for `docker run --env-file`."""
    return "".join(f"{name}={value}\n" for name, value in report["best"]["env"].items())


def read_env_file(path: Path, flag: str = "--env-file") -> dict[str, str]:
    """The variables of an env file (`UsageError` naming `flag` when it cannot be read or
    a line is not `KEY=value`)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"{flag} {path}: cannot read it ({reason}); give the .env file a "
                         "tuning run wrote in its report folder (<study>.env)") from None
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, equals, value = stripped.partition("=")
        if not equals or not name.strip().isidentifier():
            raise UsageError(f"{flag} {path}: line {number} is not KEY=value ({line[:60]!r}); "
                             "give the .env file a tuning run wrote (<study>.env)")
        env[name.strip()] = value.strip()
    return env
