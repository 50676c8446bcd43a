"""`autotune image build`: build the serving image (`DEFAULT_IMAGE`, autotune/serving:mkl).

The recipe is `docker/` of the source tree (Dockerfile, entrypoint, requirements); the
build context gets it, the embedded server's sources (`autotune/__init__.py` and
`autotune/serving/`, nothing of the tuner) and the wheels of the requirements, which pip
downloads on the host: the build itself then needs no network and its package layer is
cached for as long as the wheels stay the same.

`offline=True` is for hosts that reach no container registry: instead of pulling
`python:3.11-slim-bookworm`, it makes an equivalent base (Debian bookworm with Python
3.11) with `debootstrap` from the Debian mirror and `docker import`s it, once; later
builds reuse it.

The image's ENV defaults are the `image-defaults` baseline: `image_env` reads them from
a built image through the engine, `image_default_env` from the recipe's Dockerfile (or
TF Serving's Dockerfile.mkl values, for an installed package without the recipe).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable

import docker
import docker.errors

import autotune
from autotune.errors import UsageError
from autotune.paths import DEFAULT_IMAGE

ONLINE_BASE = "python:3.11-slim-bookworm"
OFFLINE_BASE = "autotune/base:bookworm-python3.11"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: what the offline base holds beyond debootstrap's minbase: Python with venv (for the
#: image's virtual environment), CA certificates, and the GNU OpenMP runtime
OFFLINE_BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1")
#: wheels are picked for the image's platform (bookworm: glibc 2.36, CPython 3.11),
#: whatever the host runs
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_31_x86_64",
                   "manylinux_2_34_x86_64", "manylinux_2_36_x86_64")
RECIPE_FILES = ("Dockerfile", "entrypoint.sh", "requirements.txt", "requirements-nodeps.txt")
PACKAGE_DIR = Path(autotune.__file__).resolve().parent
RECIPE_DIR = PACKAGE_DIR.parent / "docker"
#: the env of the project's image, where the source tree has it
IMAGE_DOCKERFILE = RECIPE_DIR / "Dockerfile"
#: TF Serving's tensorflow_serving/tools/docker/Dockerfile.mkl, for an installed package
UPSTREAM_MKL_ENV = {
    "OMP_NUM_THREADS": "2",
    "KMP_BLOCKTIME": "1",
    "KMP_AFFINITY": "granularity=fine,verbose,compact,1,0",
    "TENSORFLOW_INTRA_OP_PARALLELISM": "0",
    "TENSORFLOW_INTER_OP_PARALLELISM": "0",
}


class ImageBuildError(UsageError):
    """The image cannot be built here; the message says why and what to do."""


def _say(message: str) -> None:
    print(f"autotune image: {message}", flush=True)


def _run_streamed(command: list[str], what: str) -> None:
    """Run `command`, echoing its output lines as progress; `ImageBuildError` on failure."""
    _say(f"{what}: {' '.join(command)}")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, errors="replace")
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        print(f"  {line.rstrip()}", flush=True)
        tail = (tail + [line.rstrip()])[-5:]
    if process.wait() != 0:
        raise ImageBuildError(f"{what} failed (exit {process.returncode}): {' | '.join(tail)}")


def _connect() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as error:
        raise ImageBuildError(f"cannot reach the Docker engine ({error}): "
                              "start dockerd first") from None
    return client


def _image_present(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_offline_base(client: docker.DockerClient) -> str:
    """The debootstrapped base image, made and imported unless it is already there."""
    if _image_present(client, OFFLINE_BASE):
        _say(f"reusing base image {OFFLINE_BASE}")
        return OFFLINE_BASE
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise ImageBuildError("--offline needs debootstrap: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise ImageBuildError("--offline runs debootstrap, which needs root: run it as root")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="autotune-base-") as workdir:
        rootfs = Path(workdir) / "rootfs"
        _run_streamed([debootstrap, "--variant=minbase",
                       f"--include={','.join(OFFLINE_BASE_PACKAGES)}",
                       DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR], "debootstrap")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        archive = Path(workdir) / "rootfs.tar"
        _run_streamed(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."],
                      "packing the base")
        repository, tag = OFFLINE_BASE.split(":")
        client.api.import_image_from_file(
            str(archive), repository=repository, tag=tag,
            changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     'CMD ["python3"]'])
    _say(f"made base image {OFFLINE_BASE} in {time.monotonic() - started:.0f}s")
    return OFFLINE_BASE


def _pip_download(requirements: Path, wheels: Path, *extra: str) -> None:
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    _run_streamed([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels),
                   "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                   *platforms, *extra, "-r", str(requirements)], f"downloading {requirements.name}")


def _ignore_caches(_directory: str, names: Iterable[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


def prepare_context(context: Path) -> None:
    """Fill `context` with the recipe, the server's sources and the wheels."""
    if not (RECIPE_DIR / "Dockerfile").is_file():
        raise ImageBuildError(f"the image recipe is not at {RECIPE_DIR}: "
                              "build from a source checkout")
    for name in RECIPE_FILES:
        shutil.copy2(RECIPE_DIR / name, context / name)
    sources = context / "autotune"
    sources.mkdir()
    shutil.copy2(PACKAGE_DIR / "__init__.py", sources / "__init__.py")
    shutil.copytree(PACKAGE_DIR / "serving", sources / "serving", ignore=_ignore_caches)
    wheels = context / "wheels"
    _pip_download(context / "requirements.txt", wheels)
    _pip_download(context / "requirements-nodeps.txt", wheels, "--no-deps")


def _docker_build(client: docker.DockerClient, context: Path, tag: str, base: str) -> None:
    _say(f"building {tag} on {base}")
    for chunk in client.api.build(path=str(context), tag=tag, buildargs={"BASE": base},
                                  network_mode="host", rm=True, forcerm=True, pull=False,
                                  decode=True):
        if "stream" in chunk:
            for line in chunk["stream"].splitlines():
                if line.strip():
                    print(f"  {line}", flush=True)
        if "error" in chunk:
            hint = "" if base != ONLINE_BASE else " (no registry reachable? use --offline)"
            raise ImageBuildError(f"docker build failed: {chunk['error'].strip()}{hint}")


def build_image(tag: str = DEFAULT_IMAGE, offline: bool = False) -> None:
    """Build the serving image as `tag`, printing progress; `ImageBuildError` on failure."""
    started = time.monotonic()
    client = _connect()
    base = ensure_offline_base(client) if offline else ONLINE_BASE
    with tempfile.TemporaryDirectory(prefix="autotune-image-") as context:
        prepare_context(Path(context))
        _docker_build(client, Path(context), tag, base)
    _say(f"built {tag} in {time.monotonic() - started:.0f}s")


def image_default_env(dockerfile: Path = IMAGE_DOCKERFILE) -> dict[str, str]:
    """The serving image's ENV defaults: from `dockerfile` when present, else TF Serving's."""
    if not dockerfile.is_file():
        return dict(UPSTREAM_MKL_ENV)
    parsed = _dockerfile_env(dockerfile.read_text())
    return {name: parsed.get(name, value) for name, value in UPSTREAM_MKL_ENV.items()}


def _dockerfile_env(text: str) -> dict[str, str]:
    """Every `ENV` of a Dockerfile (both `ENV K=V K2=V2` and `ENV K V`), later ones winning."""
    env: dict[str, str] = {}
    for line in text.replace("\\\n", " ").splitlines():
        words = line.strip().split(None, 1)
        if len(words) != 2 or words[0].upper() != "ENV":
            continue
        tokens = shlex.split(words[1], comments=True)
        if tokens and "=" not in tokens[0]:
            env[tokens[0]] = " ".join(tokens[1:])
            continue
        env.update(token.split("=", 1) for token in tokens if "=" in token)
    return env


def image_env(client: docker.DockerClient, image: str) -> dict[str, str]:
    """The ENV an image's containers start with (its `Config.Env`), read from the engine."""
    entries = client.images.get(image).attrs["Config"].get("Env") or []
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)
