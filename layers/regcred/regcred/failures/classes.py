"""The failure classes (kept apart so the patterns, rules and CLI modules share them without cycles)."""

from __future__ import annotations

from enum import StrEnum


class FailureClass(StrEnum):
    """What a pull failure means for the credential behind it (see docs/ARCHITECTURE.md, "Pull failures")."""

    AUTH = "auth"
    AUTH_OR_NOT_FOUND = "auth_or_not_found"
    SECRET_RETRIEVAL = "secret_retrieval"  # noqa: S105 - a class name
    SECRET_FORMAT = "secret_format"  # noqa: S105 - a class name
    RATE_LIMIT = "rate_limit"
    NOT_FOUND = "not_found"
    NETWORK = "network"
    PLATFORM_MISMATCH = "platform_mismatch"
    OTHER = "other"


PULL_CLASSES: frozenset[FailureClass] = frozenset(c for c in FailureClass if c is not FailureClass.OTHER)
