"""Host and origin syntax shared by image references, routing and the outbound transport.

Pure functions, no I/O: ``host[:port]`` parsing, IP literals, loopback, origins of URLs, and URLs
described for messages without user info or query strings.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT_RE = re.compile(r"[0-9]{1,5}")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def split_host_port(text: str) -> tuple[str, int | None] | None:
    """'host', 'host:port', '[v6]' or '[v6]:port' -> (lower-case host, port); None if invalid.

    IPv6 literals are returned compressed and without brackets; zone ids (``%eth0``) are refused, as
    URLs (RFC 3986) and Docker's reference grammar refuse them."""
    if not isinstance(text, str) or len(text) > 260:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        if "%" in host or not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
            return None
        try:
            host = ipv6_text(host)
        except ValueError:
            return None
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
        if HOSTNAME_RE.fullmatch(host) is None:
            return None
        host = host.lower()
    if port_text is None:
        return host, None
    if _PORT_RE.fullmatch(port_text) is None or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def ipv6_text(host: str) -> str:
    """RFC 5952 text of an IPv6 address, IPv4-mapped ones in hex as well (Python 3.13 prints them dotted),
    so that a host's spelling does not depend on the Python version."""
    ip = ipaddress.IPv6Address(host)
    if ip.ipv4_mapped is None:
        return ip.compressed
    low = int(ip) & 0xFFFFFFFF
    return f"::ffff:{low >> 16:x}:{low & 0xFFFF:x}"


def ip_literal(host: str) -> IPAddress | None:
    """The address if ``host`` is a canonical IP literal (dotted-quad IPv4 or IPv6), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback_literal(host: str) -> bool:
    """A loopback IP literal (127.0.0.0/8 or ::1): the only hosts plain http may be configured for."""
    ip = ip_literal(host)
    return ip is not None and ip.is_loopback


def is_loopback_name(host: str) -> bool:
    """A loopback IP literal or ``localhost``."""
    return host == "localhost" or is_loopback_literal(host)


def netloc(host: str, port: int | None) -> str:
    """``host[:port]`` with IPv6 literals bracketed."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


@dataclass(frozen=True)
class Origin:
    """scheme://host:port of a URL (RFC 6454): what credentials are bound to."""

    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        """host[:port], the port omitted when it is the scheme's default."""
        return netloc(self.host, None if self.port == DEFAULT_PORTS[self.scheme] else self.port)

    @property
    def host_port(self) -> str:
        """host:port, always with the port."""
        return netloc(self.host, self.port)

    def url(self, path: str = "") -> str:
        """An absolute URL on this origin."""
        return f"{self.scheme}://{self.netloc}{path}"

    def __str__(self) -> str:
        return self.url()


def origin_of(url: str) -> Origin | None:
    """The origin of an absolute http(s) URL without user info; None for anything else."""
    if not isinstance(url, str) or len(url) > 8192:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    hp = split_host_port(parts.netloc)
    if hp is None:
        return None
    host, port = hp
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def describe_url(url: str) -> str:
    """scheme://host[:port]/path of a URL for messages: no user info, no query, printable ASCII only."""
    try:
        parts = urlsplit(url)
        host_part = parts.netloc.rpartition("@")[2]
        text = f"{parts.scheme}://{host_part}{parts.path}"
    except ValueError:
        text = "<unparseable URL>"
    text = "".join(c if 0x20 < ord(c) < 0x7F else "?" for c in text)
    return text[:160] + ("..." if len(text) > 160 else "")
