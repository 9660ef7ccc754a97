"""The SSRF guard: a webhook endpoint may only reach the public internet.

A URL's host is resolved and every address it resolves to must be public: private, loopback,
link-local (cloud metadata at 169.254.169.254 among them), multicast, reserved, unspecified,
shared (carrier-grade NAT) and other non-global ranges are refused, IPv4-mapped and other
embedded IPv4 forms of IPv6 included. The check runs when an endpoint is registered and again
when a delivery connects, on the addresses it will use (so a DNS answer that changes in between
cannot steer a delivery inside). Networks listed in the allow-list (``FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS``
in the plugin: tests, development) are let through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class GuardError(ValueError):
    """The URL may not be called; ``reason`` says why in words a user can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolves ``host`` to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise GuardError(f"the host {host!r} does not resolve ({exc.strerror})") from None
    return sorted({str(info[4][0]) for info in infos})


def parse_networks(text: str) -> list[Network]:
    """The allow-list setting: comma-separated CIDRs (an address alone is its own /32 or /128)."""
    out: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise GuardError(
                    f"{part!r} in the allowed networks is not a CIDR, e.g. 127.0.0.0/8"
                ) from None
    return out


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64: the last 32 bits are an IPv4 address
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def why_forbidden(ip: Address) -> str | None:
    """Why an address is not public, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = why_forbidden(inner)
            return f"{why} (inside the IPv6 address {ip})" if why else None
    for test, name in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address (cloud metadata lives there)"),
        (ip.is_private, "a private address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_reserved, "a reserved address"),
    ):
        if test:
            return name
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Guard:
    allowed: Sequence[Network] = ()
    https_only: bool = True
    resolve: Resolver = system_resolver

    def check(self, url: str) -> list[str]:
        """The addresses ``url`` may be reached at; GuardError if it may not be called at all."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http"):
            raise GuardError("a webhook URL must start with https://")
        if parts.scheme != "https" and self.https_only:
            raise GuardError("webhook URLs must use https:// in production")
        if not parts.hostname:
            raise GuardError("a webhook URL needs a host")
        if parts.username or parts.password:
            raise GuardError("a webhook URL must not carry a user or password; the signature authenticates")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal: Address | None = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        addresses = [str(literal)] if literal is not None else self.resolve(parts.hostname, port)
        if not addresses:
            raise GuardError(f"the host {parts.hostname!r} resolves to no address")
        for text in addresses:
            ip = ipaddress.ip_address(text)
            if any(ip in net for net in self.allowed):
                continue
            why = why_forbidden(ip)
            if why:
                shown = parts.hostname if literal is not None else f"{parts.hostname} ({ip})"
                raise GuardError(
                    f"{shown} is {why}; webhooks may only reach public addresses "
                    "(list a network in FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS to allow it)"
                )
        return addresses
