"""The settings deployed now, from the `.env` file a tuning run wrote (autotune.report.env_file).

The file carries what the server's environment carries: the thread settings and, from
an extended study, the OpenMP knobs (each knob's `env` in autotune.launch.settings.KNOBS
is how a variable is read back). A thread setting that is 0 or unset means every usable
logical CPU, as TensorFlow reads it. What the environment cannot carry (instances, CPU
pinning, batching) is not in the file: the deployed settings are measured as one
unpinned server without batching.
"""

from __future__ import annotations

from pathlib import Path

from autotune.errors import UsageError
from autotune.host.facts import HostFacts
from autotune.launch.settings import KNOBS, env_params
from autotune.report.env_file import read_env_file
from autotune.search.space import THREAD_PARAMS


def deployed_params(path: Path, host: HostFacts) -> dict[str, object]:
    """The params of the settings in the env file at `path` (`UsageError` when it cannot
    be read, or sets no thread setting: not a settings file)."""
    env = read_env_file(path)
    threads = [knob.env for knob in KNOBS if knob.param in THREAD_PARAMS]
    if not any(env.get(name, "").strip() for name in threads):
        raise UsageError(f"--env-file {path} sets none of {', '.join(map(str, threads))}: "
                         "give the .env file a tuning run wrote in its report folder "
                         "(<study>.env), or the environment the server is deployed with")
    try:
        given = env_params(env)
    except ValueError as error:
        raise UsageError(f"--env-file {path}: {error}; a thread setting is a whole "
                         "number") from None
    params: dict[str, object] = {name: int(str(given.get(name, 0))) or host.logical_cpus
                                 for name in THREAD_PARAMS}
    return {**params, **{name: value for name, value in given.items() if name not in params}}
