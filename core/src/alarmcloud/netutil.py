"""Network helpers: truncated client addresses (privacy) and the camera network allow-list (SSRF guard)."""

from __future__ import annotations

import ipaddress
import socket

from starlette.requests import Request


def truncate_ip(ip: str | None) -> str:
    """IPv4 to /24, IPv6 to /48: what is kept can no longer be tied to a person."""
    if not ip:
        return "unknown"
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "invalid"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.ip_network(f"{addr}/24", strict=False))
    return str(ipaddress.ip_network(f"{addr}/48", strict=False))


def client_prefix(request: Request) -> str:
    return truncate_ip(request.client.host if request.client else None)


class AddressNotAllowed(Exception):
    """The camera address is outside the operator's allowed networks."""


def check_camera_address(host: str, networks: list[str]) -> str:
    """Resolve ``host`` once and return the IP if every address lies in an allowed network.

    The resolved IP (not the name) is what the adapter connects to, so DNS rebinding cannot move it.
    """
    allowed = [ipaddress.ip_network(n, strict=False) for n in networks]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise AddressNotAllowed(f"cannot resolve camera host {host!r}") from None
    ips = sorted({info[4][0] for info in infos})
    if not ips:
        raise AddressNotAllowed(f"cannot resolve camera host {host!r}")
    for ip in ips:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
        if not any(addr in net for net in allowed):
            raise AddressNotAllowed(
                f"camera address {ip} is outside the allowed camera networks (setting camera_networks)")
    return ips[0]
