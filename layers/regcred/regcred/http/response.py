"""A complete, bounded response of regcred's transport, and the only way a server's error text reaches a
message (`Response.error_text`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import redact, safejson
from ..hosts import Origin

__all__ = ["DEFAULT_MAX_BODY", "Response"]

DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Response:
    """A complete, bounded response. ``url`` is the final URL after redirects."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    url: str
    origin: Origin
    # What the request carried: error texts are scrubbed of these.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def header(self, name: str) -> str | None:
        """A header's value (several occurrences joined with ", "), or None."""
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def header_values(self, name: str) -> list[str]:
        """Every occurrence of a header, in order."""
        lower = name.lower()
        return [v for k, v in self.headers if k.lower() == lower]

    def json(self, *, max_bytes: int = DEFAULT_MAX_BODY) -> Any:
        """The body as JSON; ValueError (quoting nothing) when it is not, or is too large or too deep."""
        return safejson.loads(self.body, max_bytes=max_bytes)

    def error_text(
        self,
        fields: Iterable[str] = ("message", "detail", "details", "error", "error_description", "errors"),
        *,
        limit: int = 200,
    ) -> str:
        """What the server said, reduced to the string values under known fields of a JSON error body,
        printable ASCII, truncated and scrubbed of every credential the request carried; "" when there is
        nothing usable. Nothing else of a server's body ever reaches a message."""
        try:
            data = self.json()
        except ValueError:
            return ""
        found: list[str] = []

        def leaves(value: Any, depth: int) -> None:
            if depth > 3 or len(found) >= 4:
                return
            if isinstance(value, str) and value.strip():
                found.append(value)
            elif isinstance(value, list):
                for item in value[:4]:
                    leaves(item, depth + 1)
            elif isinstance(value, dict):
                for item in list(value.values())[:8]:
                    leaves(item, depth + 1)

        if isinstance(data, dict):
            for key in fields:
                if key in data:
                    leaves(data[key], 0)
        elif isinstance(data, list):
            leaves(data, 0)
        text = "; ".join(dict.fromkeys(found))
        text = "".join(c if 0x20 <= ord(c) < 0x7F else " " for c in text)
        text = " ".join(redact.scrub(text, self.secrets).split())
        return text[:limit] + ("..." if len(text) > limit else "")
