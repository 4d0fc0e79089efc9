"""Guards for tests that run hostile servers: connections to anything but loopback are blocked at the socket
layer (pytest-socket), and name lookups are recorded, so "refused before any connection" is checked, not
assumed. The fixtures are registered by tests/integration/conftest.py; a module that runs hostile servers
is marked ``[pytest.mark.allow_hosts(ALLOWED_HOSTS), pytest.mark.usefixtures("loopback_only")]``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_socket import socket_allow_hosts

ALLOWED_HOSTS = ["127.0.0.1", "127.0.0.2", "localhost", "::1"]


@pytest.fixture
def loopback_only() -> Iterator[None]:
    """The marker already blocks other hosts; this keeps the guarantee even when the plugin is told
    otherwise on the command line (e.g. --force-enable-socket)."""
    original = socket.socket.connect
    socket_allow_hosts(ALLOWED_HOSTS)
    try:
        yield
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Host names anything tried to resolve through the system resolver."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return seen
