"""The destination and redirect rules every outbound request obeys. Pure functions, no I/O.

- Where: https only; plain http only to a loopback IP literal that configuration names as a destination.
  Host names that are numbers in another spelling (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``,
  ``169.254.43518``) are refused outright.
- Which addresses (checked after name resolution, on every address the name resolves to; the connection
  then goes to an address that was checked): never unspecified (0.0.0.0/8, ::), multicast, broadcast or
  reserved, never link-local (169.254.0.0/16, fe80::/10), never a cloud metadata or credentials endpoint
  (169.254.169.254, 169.254.170.2, 169.254.170.23, fd00:ec2::254, fd00:ec2::23, 100.100.100.200,
  192.0.0.192), including where an IPv6 address embeds one (IPv4-mapped and -compatible, NAT64 64:ff9b::/96
  and 64:ff9b:1::/48, 6to4, Teredo), and loopback only when the destination itself is configured as loopback.
- Redirects: only for requests that may be repeated; never https to http; never from a remote origin into
  loopback; credentials only to the origin they were given for, never restored once dropped.
- Links a server hands out (pagination) must keep the scheme, host and port of the request.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin

from ..errors import DestinationRefused
from ..hosts import IPAddress, Origin, describe_url, ip_literal, is_loopback_name, origin_of

__all__ = [
    "METADATA_ADDRESSES",
    "Redirect",
    "address_refusal",
    "check_destination",
    "embedded_ipv4",
    "numeric_spelling",
    "redirect",
    "same_origin_link",
]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # EC2, ECS on EC2, Azure, GCP, OCI instance metadata (IMDS)
        "169.254.170.2",  # ECS task metadata and task role credentials
        "169.254.170.23",  # EKS Pod Identity agent
        "fd00:ec2::254",  # EC2 IMDS over IPv6
        "fd00:ec2::23",  # EKS Pod Identity agent over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "192.0.0.192",  # Oracle Cloud legacy metadata
    )
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_RESERVED_V4 = ipaddress.ip_network("240.0.0.0/4")
_SITE_LOCAL_V6 = ipaddress.ip_network("fec0::/10")


def numeric_spelling(host: str) -> bool:
    """True for a host name that the system resolver would read as an IPv4 address in a non-canonical
    spelling (decimal, hex, octal, or fewer than four parts): never a real host name."""
    if ip_literal(host) is not None:
        return False
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, translated, NAT64, 6to4, Teredo)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        out.append(low32)
    if ip in _IPV4_TRANSLATED or any(ip in net for net in _NAT64):
        out.append(low32)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    return out


def _v4_refusal(ip: ipaddress.IPv4Address, loopback_ok: bool) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata endpoint"
    if ip in _THIS_NETWORK:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast or ip == _BROADCAST or ip in _RESERVED_V4:
        return "a multicast, broadcast or reserved address"
    if ip.is_loopback and not loopback_ok:
        return "a loopback address, and the destination is not configured as loopback"
    return None


def address_refusal(ip: IPAddress, *, loopback_ok: bool) -> str | None:
    """Why a connection to ``ip`` is refused, or None when it is allowed."""
    if ip.version == 6 and getattr(ip, "scope_id", None):
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_refusal(ip, loopback_ok)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata endpoint"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local or ip in _SITE_LOCAL_V6:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return (
            None if loopback_ok else "a loopback address, and the destination is not configured as loopback"
        )
    for inner in embedded_ipv4(ip):
        # An IPv6 form of an IPv4 address is judged as that address; loopback never hides behind one.
        why = _v4_refusal(inner, loopback_ok=False)
        if why is not None:
            return f"an IPv6 form of {why}"
    return None


def check_destination(url: str, *, local_origins: frozenset[Origin]) -> Origin:
    """The origin of ``url`` if regcred may connect there (before resolution); else DestinationRefused.

    ``local_origins`` are the loopback destinations configuration names (the local stack): only they may be
    plain http, and only they may reach loopback addresses."""
    origin = origin_of(url)
    if origin is None:
        raise DestinationRefused(
            f"refusing {describe_url(url)!r}: not an absolute http(s) URL with a valid host and no user info"
        )
    if numeric_spelling(origin.host):
        raise DestinationRefused(
            f"refusing host {origin.host!r}: a number in a non-canonical spelling is not a host name"
        )
    ip = ip_literal(origin.host)
    if origin.scheme == "http" and not (origin in local_origins and ip is not None and ip.is_loopback):
        raise DestinationRefused(
            f"refusing plain http to {origin.host_port}: credentials would travel in clear text; use https "
            "(http only to a loopback IP address configured as a local destination)"
        )
    if ip is not None:
        why = address_refusal(ip, loopback_ok=origin in local_origins)
        if why is not None:
            raise DestinationRefused(f"refusing {origin.host_port}: {why}")
    return origin


def loopback_allowed(origin: Origin, local_origins: frozenset[Origin]) -> bool:
    """Whether connections for ``origin`` may go to loopback addresses: it is a configured local destination
    (a loopback IP literal, ``localhost``, or a name such as a local stack's TLS registry that configuration
    maps to loopback). Such a destination must then resolve to loopback only."""
    return origin in local_origins


def _is_local(origin: Origin, local_origins: frozenset[Origin]) -> bool:
    return is_loopback_name(origin.host) or origin in local_origins


@dataclass(frozen=True)
class Redirect:
    """Where a redirect goes and whether the request's credentials go with it."""

    url: str
    origin: Origin
    keep_credentials: bool


def redirect(
    current: Origin,
    current_url: str,
    location: str,
    *,
    repeatable: bool,
    credentials_origin: Origin | None,
    local_origins: frozenset[Origin] = frozenset(),
) -> Redirect:
    """Judge a redirect from ``current_url`` to ``location``; DestinationRefused when it is not followed.

    ``credentials_origin`` is the origin the request's credentials belong to (None once dropped).
    ``local_origins`` are the configured loopback destinations: a remote origin never redirects into one of
    them, whatever its name, as it never redirects into a loopback literal or ``localhost``."""
    if not repeatable:
        raise DestinationRefused(
            f"refusing a redirect from {current.host_port}: a request that creates or changes a credential "
            "is never sent again, not even to follow a redirect"
        )
    target_url = urljoin(current_url, location.strip()).split("#", 1)[0]
    target = origin_of(target_url)
    if target is None:
        raise DestinationRefused(f"refusing redirect to {describe_url(target_url)!r}: not an http(s) URL")
    if current.scheme == "https" and target.scheme == "http":
        raise DestinationRefused(f"refusing redirect from https to plain http ({target.host_port})")
    if not _is_local(current, local_origins) and _is_local(target, local_origins):
        raise DestinationRefused(
            f"refusing redirect from {current.host_port} into loopback ({target.host_port})"
        )
    return Redirect(target_url, target, keep_credentials=credentials_origin == target)


def same_origin_link(base: Origin, link: str, *, base_url: str | None = None) -> str:
    """An absolute URL for a server-supplied link (pagination), refused unless it keeps the scheme, host and
    port of ``base``."""
    absolute = urljoin(base_url or base.url("/"), link.strip())
    target = origin_of(absolute)
    if target != base:
        raise DestinationRefused(
            f"refusing link to {describe_url(absolute)!r}: a link from {base.host_port} must stay on it"
        )
    return absolute.split("#", 1)[0]
