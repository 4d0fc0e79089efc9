"""Keeping secret values out of every text regcred produces.

Every credential regcred reads, mints or receives (secret passwords, admin passwords, minted tokens,
vendor bearers, registry bearers) is remembered here, in memory, for the life of the process; `scrub`
replaces each of them, and their common encodings, in any text before it reaches a log line, an
exception, CLI output, a metric, a tag or a notification. `ScrubFilter` applies it to log records.

This is the second line of defence: messages are written not to contain secrets in the first place.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["REDACTED", "ScrubFilter", "known", "remember", "scrub"]

REDACTED = "<redacted>"
# Shorter values would redact ordinary words; no credential regcred handles is this short.
MIN_LENGTH = 6
_CAPACITY = 4096

_lock = threading.Lock()
_known: OrderedDict[str, None] = OrderedDict()
# The remembered forms, longest first (a secret that contains another is replaced whole); rebuilt after a
# change. A substring scan, not one alternation regex: compiling a regex of thousands of alternatives after
# every new secret cost ~100 ms each time (and Python's re cache kept every one), while the scan of a message
# is well under a millisecond even at full capacity (measured: 0.47 ms against the regex's 3.3 ms).
_ordered: tuple[str, ...] | None = None


def _forms(value: str) -> set[str]:
    forms = {value, json.dumps(value)[1:-1], quote(value, safe="")}
    with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: nothing Base64 would carry
        forms.add(base64.b64encode(value.encode()).decode("ascii"))
    return {f for f in forms if len(f) >= MIN_LENGTH}


def remember(*values: str | None) -> None:
    """Remember secret values (and their JSON-escaped, percent-encoded and Base64 forms) for `scrub`."""
    global _ordered
    added = False
    with _lock:
        for value in values:
            if not isinstance(value, str) or len(value) < MIN_LENGTH:
                continue
            for form in _forms(value):
                if form in _known:
                    _known.move_to_end(form)
                    continue
                _known[form] = None
                added = True
        while len(_known) > _CAPACITY:
            _known.popitem(last=False)
            added = True
        if added:
            _ordered = None


def known() -> tuple[str, ...]:
    """Every value remembered so far (for tests that prove none of them leaked)."""
    with _lock:
        return tuple(_known)


def _longest_first() -> tuple[str, ...]:
    global _ordered
    with _lock:
        if _ordered is None:
            _ordered = tuple(sorted(_known, key=len, reverse=True))
        return _ordered


def scrub(text: str, also: Iterable[str | None] = ()) -> str:
    """``text`` with every remembered secret, and every value of ``also``, replaced by ``<redacted>``."""
    if not isinstance(text, str):
        text = str(text)
    extra = sorted({f for v in also if isinstance(v, str) for f in _forms(v)}, key=len, reverse=True)
    for value in extra:
        text = text.replace(value, REDACTED)
    for value in _longest_first():
        if value in text:
            text = text.replace(value, REDACTED)
    return text


class ScrubFilter(logging.Filter):
    """Scrubs a log record's message, arguments and string ``extra`` fields in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the template only
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in ("msg", "name", "levelname", "pathname", "filename"):
                record.__dict__[key] = scrub(value)
            elif isinstance(value, (list, tuple, dict)) and key not in ("args",):
                record.__dict__[key] = _scrub_structure(value)
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def _scrub_structure(value: object, depth: int = 0) -> object:
    if depth > 8:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrub_structure(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub_structure(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: _scrub_structure(v, depth + 1) for k, v in value.items()}
    return value
