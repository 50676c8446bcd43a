"""A free TCP port for the next server, chosen so that servers started together never collide.

Asking the kernel for an ephemeral port (bind to 0, close, hand the number on) loses a
race when many servers start at once, as a side-by-side round of 24 does: after the probe
closes, the same number can come back from another thread's probe, or become the source
port of one of the client's own outgoing connections, which draw from the same ephemeral
range. The server then fails to bind it (one such loss ended a two-hour benchmark).

So ports are taken from below the kernel's ephemeral range (outgoing connections never
use those), in turn from a random starting point (this process never hands out the same
port twice until it has gone round the whole range, and two processes rarely meet), and
each is checked to be free right now. The servers refuse to share a port (no
SO_REUSEPORT), so a race still lost against another program fails the start loudly.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

#: The lowest port handed out: above the well-known and most registered services' ports.
LOWEST_PORT = 10_000
#: Where the kernel's ephemeral range starts when /proc does not say (Linux's default).
DEFAULT_EPHEMERAL_START = 32_768
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_start(range_file: Path = EPHEMERAL_RANGE_FILE) -> int:
    """The first port of the kernel's ephemeral range (what outgoing connections draw from)."""
    try:
        return int(range_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_START


class PortRotation:
    """Ports from `lowest` up to the ephemeral range, in turn from a random start."""

    def __init__(self, lowest: int = LOWEST_PORT, end: int | None = None) -> None:
        self.ports = range(lowest, max(end or ephemeral_start(), lowest + 1))
        self._next = random.randrange(len(self.ports))
        self._lock = threading.Lock()

    def take(self) -> int:
        """The next port of the rotation that is free right now (thread-safe)."""
        with self._lock:
            for _ in self.ports:
                port = self.ports[self._next]
                self._next = (self._next + 1) % len(self.ports)
                if is_free(port):
                    return port
        raise OSError(f"no free TCP port on 127.0.0.1 between {self.ports.start} and "
                      f"{self.ports.stop - 1}; stop some servers and try again")


def is_free(port: int) -> bool:
    """Whether a listening socket could bind `port` on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_ROTATION = PortRotation()


def free_port() -> int:
    """The next free port for a server started by this process."""
    return _ROTATION.take()
