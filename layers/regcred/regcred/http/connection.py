"""Connections that go only where the destination policy allows: the name is resolved once per connection,
every address it resolves to is checked (`policy.address_refusal`), and the socket connects to a checked
address; every read on these sockets, plain or TLS, is also bounded by the operation's deadline
(`ACTIVE_DEADLINE`). Used by `regcred.http.transport` only.
"""

from __future__ import annotations

import contextvars
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ..errors import DestinationRefused
from ..hosts import ip_literal
from . import policy
from .deadline import Deadline

__all__ = ["ACTIVE_DEADLINE", "Guard", "HTTPPool", "HTTPSPool", "Resolver", "system_resolver", "tls_context"]

Resolver = Callable[[str, int], Sequence[tuple[int, tuple[Any, ...]]]]


def system_resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
    """(family, sockaddr) of every TCP address ``host`` resolves to."""
    return [
        (family, sockaddr)
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if family in (socket.AF_INET, socket.AF_INET6)
    ]


@dataclass(frozen=True)
class Guard:
    """What a connection needs to pick and check its addresses."""

    resolver: Resolver
    loopback_ok: bool


def _checked_addresses(host: str, port: int, guard: Guard) -> list[tuple[int, tuple[Any, ...]]]:
    ip = ip_literal(host)
    if ip is not None:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        addresses: Sequence[tuple[int, tuple[Any, ...]]] = [(family, (str(ip), port))]
    else:
        try:
            addresses = guard.resolver(host, port)
        except OSError as exc:
            raise NewConnectionError(None, f"name resolution failed ({type(exc).__name__})") from None  # type: ignore[arg-type]
    if not addresses:
        raise NewConnectionError(None, "name resolved to no address")  # type: ignore[arg-type]
    for _, sockaddr in addresses:
        address = ip_literal(str(sockaddr[0]).split("%", 1)[0])
        why = (
            "not an IP address"
            if address is None
            else policy.address_refusal(address, loopback_ok=guard.loopback_ok)
        )
        if why is not None:
            # Every address is checked: one bad answer refuses the name, whatever the others are.
            raise DestinationRefused(f"refusing {host}: it resolves to {why}")
        if guard.loopback_ok and address is not None and not address.is_loopback:
            raise DestinationRefused(f"refusing {host}: configured as loopback, it resolves elsewhere")
    return list(addresses)


# The deadline of the operation this thread (or task) is sending: every read on a connection this module
# made is bounded by it, not only by the per-read timeout, so that a server dripping its headers or body a
# byte at a time cannot stretch an operation past its deadline.
ACTIVE_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "regcred_http_deadline", default=None
)


def _bound_by_deadline(sock: socket.socket) -> None:
    deadline = ACTIVE_DEADLINE.get()
    if deadline is None:
        return
    remaining = deadline.remaining()
    if remaining <= 0:
        raise TimeoutError("the operation's deadline passed")
    current = sock.gettimeout()
    if current is None or current > remaining:
        sock.settimeout(remaining)


class _DeadlineSocket(socket.socket):
    """A TCP socket whose reads never outlast the active deadline; `_DeadlineSSLSocket` adds TLS's own."""

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        _bound_by_deadline(self)
        return super().recv(*args, **kwargs)

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        _bound_by_deadline(self)
        return super().recv_into(*args, **kwargs)


class _DeadlineSSLSocket(_DeadlineSocket, ssl.SSLSocket):
    """A TLS socket whose reads (``recv``, ``recv_into`` and ``read``) never outlast the active deadline."""

    def read(self, *args: Any, **kwargs: Any) -> Any:
        _bound_by_deadline(self)
        return super().read(*args, **kwargs)


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """urllib3's TLS defaults (certificate and host name verified), sockets bounded by the deadline."""
    from urllib3.util.ssl_ import create_urllib3_context

    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    else:  # pragma: no cover - certifi ships with the layer
        context.load_default_certs()
    context.sslsocket_class = _DeadlineSSLSocket
    return context


class _PinnedMixin:
    """Connects to the addresses checked for the host, never to a second resolution of it."""

    _regcred_guard: Guard
    host: str
    port: int
    timeout: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        last: OSError | None = None
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else 10.0
        for family, sockaddr in _checked_addresses(self.host, self.port, self._regcred_guard):
            sock = _DeadlineSocket(family, socket.SOCK_STREAM)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(timeout)
                sock.connect(sockaddr[:2] if family == socket.AF_INET else sockaddr)
                return sock
            except TimeoutError:
                sock.close()
                raise ConnectTimeoutError(self, f"connect to {self.host} timed out") from None
            except OSError as exc:
                sock.close()
                last = exc
        failure = type(last).__name__ if last else "no address"
        raise NewConnectionError(self, f"connection failed ({failure})")  # type: ignore[arg-type]


class _PinnedHTTPConnection(_PinnedMixin, HTTPConnection):
    def __init__(self, *args: Any, regcred_guard: Guard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._regcred_guard = regcred_guard


class _PinnedHTTPSConnection(_PinnedMixin, HTTPSConnection):
    def __init__(self, *args: Any, regcred_guard: Guard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._regcred_guard = regcred_guard


class HTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection
