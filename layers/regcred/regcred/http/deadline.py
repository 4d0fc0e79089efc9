"""One deadline per operation (a pull check, a vendor call, a rotation step).

Every request of the operation gets ``min(its timeout, what is left)``; retries, Retry-After waits and slow
bodies are all checked against the same clock, so nothing stretches an operation past its deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Deadline"]


class Deadline:
    """A point in monotonic time; ``remaining()`` seconds are left until it."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not seconds > 0:
            raise ValueError("a deadline needs a positive number of seconds")
        self._clock = clock
        self._at = clock() + float(seconds)

    @classmethod
    def within(
        cls, seconds: float, parent: Deadline | None, *, clock: Callable[[], float] = time.monotonic
    ) -> Deadline:
        """``seconds`` from now, or the parent's deadline if that comes first."""
        if parent is not None:
            seconds = min(seconds, parent.remaining())
        return cls(max(seconds, 1e-3), clock=clock)

    @classmethod
    def for_lambda(cls, context: object, *, margin_s: float = 5.0, default_s: float = 60.0) -> Deadline:
        """What the Lambda invocation has left, less a margin for reporting the outcome."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        seconds = default_s
        if callable(remaining):
            try:
                seconds = float(remaining()) / 1000.0 - margin_s
            except (TypeError, ValueError):
                seconds = default_s
        return cls(max(seconds, 1.0))

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self._at - self._clock())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.remaining() <= 0.0

    def bound(self, seconds: float) -> float:
        """``seconds``, or what is left if that is less."""
        return min(float(seconds), self.remaining())
