"""JSON from untrusted sources (secret values, vendor and registry responses) with bounds.

``json.loads`` recurses once per nesting level: a deeply nested document raises RecursionError, which is
not a ValueError and would escape as a traceback. `loads` first checks size and nesting depth in one
linear pass, then parses; every failure is a `ValueError` with a short reason that quotes nothing.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 32


def _too_deep(text: str, max_depth: int) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: str | bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` as JSON, refusing more than ``max_bytes`` or ``max_depth`` levels of nesting."""
    if isinstance(data, bytes):
        if len(data) > max_bytes:
            raise ValueError(f"larger than {max_bytes} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8") from None
    elif isinstance(data, str):
        text = data
        if len(text) > max_bytes:
            raise ValueError(f"larger than {max_bytes} characters")
    else:
        raise ValueError("not text")
    if _too_deep(text, max_depth):
        raise ValueError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise ValueError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({type(exc).__name__})") from None
