"""Timestamps as regcred writes and reads them: ISO 8601 / RFC 3339 in UTC, ``2027-01-01T00:00:00Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_time", "from_epoch", "parse_time", "parse_time_or_none"]


def format_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp (naive times are UTC); ValueError when it is not one."""
    if not isinstance(text, str) or not text.isascii() or len(text) > 64:
        raise ValueError("not an ISO 8601 time")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_time_or_none(value: object) -> datetime | None:
    """``parse_time`` for vendor fields: None for anything that is not a usable timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def from_epoch(seconds: int | None) -> datetime | None:
    """A time from epoch seconds a vendor sent; None for none, zero or a negative ("never"), or one out of
    the platform's range."""
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
