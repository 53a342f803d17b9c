"""Which URLs a webhook may call (server-side request forgery): http(s) only, and every address
the host resolves to must be public (not private, loopback, link-local, the cloud metadata
address, multicast, reserved or unspecified) unless the host or a CIDR holding the address is in
``WEBHOOK_ALLOWED_HOSTS``. Checked at registration and again before every attempt; the attempt
then connects to the address that was checked (no second lookup), and follows no redirect."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeTarget(ValueError):
    pass


@dataclass(frozen=True)
class Allowed:
    hosts: frozenset[str]
    networks: tuple[Net, ...]

    @classmethod
    def parse(cls, value: str) -> Allowed:
        hosts: set[str] = set()
        nets: list[Net] = []
        for item in (p.strip() for p in value.split(",")):
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(nets))

    def address(self, ip: IP) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]  # every address checked, in resolver order


def _public(ip: IP) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_url(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("url: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("url: only http and https URLs can be webhook targets")
    if not parts.hostname:
        raise UnsafeTarget("url: the URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("url: credentials in the URL are not accepted; the signature authenticates")
    return parts.scheme, parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


def check(url: str, allowed: Allowed) -> Target:
    """Resolve the URL's host and check every address; the target to connect to."""
    scheme, host, port = parse_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeTarget(f"url: the host {host} does not resolve") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise UnsafeTarget(f"url: the host {host} does not resolve")
    if host not in allowed.hosts:
        for text in addresses:
            ip = ipaddress.ip_address(text)
            if not _public(ip) and not allowed.address(ip):
                raise UnsafeTarget(
                    f"url: {host} resolves to {text}, a private, loopback or link-local address;"
                    " allow it in WEBHOOK_ALLOWED_HOSTS to use it"
                )
    return Target(scheme, host, port, tuple(addresses))
