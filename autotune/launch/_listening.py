"""Which addresses a server listens on: how a launcher proves its server is loopback-only.

Read from the kernel's socket table (psutil), so the answer holds for any server, ours
or a foreign image's. IPv4-mapped IPv6 addresses (gRPC's dual-stack sockets show
`::ffff:127.0.0.1`) are reported as IPv4. Any listener not on a loopback address
(`0.0.0.0`, `::`, an interface's address) is reachable from other hosts.
"""

from __future__ import annotations

import ipaddress

import psutil


def _plain(address: str) -> str:
    parsed = ipaddress.ip_address(address)
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped or parsed)


def listening_addresses(port: int) -> list[str]:
    """The local addresses with a TCP listener on `port` in this network namespace."""
    return sorted({_plain(connection.laddr.ip)
                   for connection in psutil.net_connections(kind="inet")
                   if connection.status == psutil.CONN_LISTEN and connection.laddr
                   and connection.laddr.port == port})


def exposed_addresses(port: int) -> list[str]:
    """The listeners on `port` reachable from other hosts (empty: this host only)."""
    return [address for address in listening_addresses(port)
            if not ipaddress.ip_address(address).is_loopback]
