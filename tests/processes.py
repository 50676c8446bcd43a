"""Which model servers a test's processes have running, and waiting until one answers."""

import time

import psutil


def serving_processes(parent: psutil.Process | None = None) -> list[psutil.Process]:
    """Model servers started by `parent` (default: this test process) that are still
    alive; a child that ended since it was listed (gone, or a zombie not yet reaped) is
    not one."""
    alive = []
    for child in (parent or psutil.Process()).children(recursive=True):
        try:
            if "autotune.serving" in " ".join(child.cmdline()) and child.is_running():
                alive.append(child)
        except psutil.NoSuchProcess:  # ZombieProcess included
            continue
    return alive


def wait_for_answering_server(parent: psutil.Process, timeout_s: float) -> list[psutil.Process]:
    """`parent`'s model servers, once one of them has an established connection."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        servers = serving_processes(parent)
        if any(_connected(server) for server in servers):
            return servers
        time.sleep(0.2)
    raise AssertionError(f"process {parent.pid} never had a server answering")


def _connected(server: psutil.Process) -> bool:
    try:
        return any(c.status == psutil.CONN_ESTABLISHED
                   for c in server.net_connections(kind="tcp"))
    except psutil.NoSuchProcess:
        return False
