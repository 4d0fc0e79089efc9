"""A registry credential: what a secret version holds for ECS and Batch."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import redact

__all__ = ["Credential"]


@dataclass(frozen=True)
class Credential:
    """A registry username and password (or token); the password never appears in repr/str, and is
    remembered for scrubbing the moment it exists."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        redact.remember(self.password)
