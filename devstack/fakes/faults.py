"""Fault injection shared by the vendor fakes: a test asks a running fake to answer its next matching
requests with an error, a delay or no answer at all. Test double only (never vendor behaviour).

Control endpoints, on every fake that uses this module (loopback only, like the fakes themselves):

- ``POST /_fake/faults`` with JSON ``{"method": "POST", "path": "<regex, matched against the path>",
  "status": 429, "headers": {"Retry-After": "7"}, "body": {...}, "times": 1, "delay_s": 0,
  "drop": false, "after": false}`` -> 201 ``{"id": N}``. The next ``times`` requests whose method and path
  match get that answer instead of the real one:
  - ``body`` omitted: the fake's own error body for ``status`` (each vendor's documented shape);
  - ``delay_s``: sleep that long first (a hanging vendor);
  - ``drop``: close the connection without any answer;
  - ``after``: run the real request first, then answer with the fault (or drop): a mint that succeeded at
    the vendor but whose answer never came.
- ``GET /_fake/faults`` -> 200 ``{"faults": [...]}`` (with ``hits``, how many requests each one took);
- ``DELETE /_fake/faults`` -> 204: every fault removed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

CONTROL_PATH = "/_fake/faults"

Json = dict[str, Any]


@dataclass
class Fault:
    id: int
    method: str
    path: re.Pattern[str]
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int = 1
    delay_s: float = 0.0
    drop: bool = False
    after: bool = False
    hits: int = 0

    def describe(self) -> Json:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path.pattern,
            "status": self.status,
            "times": self.times,
            "hits": self.hits,
            "delay_s": self.delay_s,
            "drop": self.drop,
            "after": self.after,
        }


class Faults:
    """The fake's pending faults (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._seq = 0

    def add(self, spec: Json) -> Fault:
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        with self._lock:
            self._seq += 1
            fault = Fault(
                id=self._seq,
                method=str(spec.get("method", "*")).upper(),
                path=re.compile(str(spec.get("path", ".*"))),
                status=int(spec.get("status", 500)),
                headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
                body=spec.get("body"),
                times=int(spec.get("times", 1)),
                delay_s=float(spec.get("delay_s", 0.0)),
                drop=bool(spec.get("drop", False)),
                after=bool(spec.get("after", False)),
            )
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def listing(self) -> list[Json]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counted as used; None when none matches."""
        if path.startswith("/_fake/"):
            return None
        with self._lock:
            for fault in self._faults:
                if fault.hits >= fault.times:
                    continue
                if fault.method not in ("*", method.upper()) or not fault.path.search(path):
                    continue
                fault.hits += 1
                return fault
        return None

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any] | None:
        """Handle a control request (``/_fake/faults``): (status, JSON body), or None for any other path."""
        if path.rstrip("/") != CONTROL_PATH:
            return None
        if method == "POST":
            try:
                fault = self.add(body)
            except (ValueError, TypeError, re.error) as exc:
                return 400, {"message": f"bad fault: {exc}"}
            return 201, {"id": fault.id}
        if method == "GET":
            return 200, {"faults": self.listing()}
        if method == "DELETE":
            self.clear()
            return 204, None
        return 405, {"message": "use POST, GET or DELETE"}


def drop(handler: Any) -> None:
    """Close a request's connection without any answer (``BaseHTTPRequestHandler``)."""
    import contextlib
    import socket

    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)
