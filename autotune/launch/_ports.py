"""A free TCP port for the next server, asked of the kernel."""

import socket


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick for an ephemeral bind).

    The server binds it a moment later; the servers refuse to share a port
    (no SO_REUSEPORT), so a lost race fails the start loudly rather than silently.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
