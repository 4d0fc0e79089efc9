"""Remediation from its queue: EventBridge puts each Batch, ECS and Secrets Manager event in
RemediationQueue, and the event source mapping hands the function batches of them, at most
RemediationMaxConcurrency invocations at a time. What the batch path needs beyond one event:

- `event_of`: the EventBridge event an SQS message carries, or InvalidEvent (the body is not JSON, not an
  object). Such a poison message fails alone; after the queue's maxReceiveCount it waits in the
  dead-letter queue.
- `EventClaims`: the coalescer of the remediation function. A probe or role-simulation claim whose work did
  not finish (an AWS call that still failed after botocore's retries, so the event fails and is delivered
  again) is given back, so that the redelivered event does that work, instead of finding a claim with no
  diagnosis and tagging its job ``coalesced`` for the rest of the cooldown.
- `START_BY_S`: an event is not started with less than this left in the invocation; it fails, unstarted,
  and is delivered again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .aws import aws_error_code
from .coalesce import Claim, Coalescer
from .errors import InvalidEvent
from .observability import logger

__all__ = ["MAX_BODY_BYTES", "RETRYABLE_CLAIMS", "START_BY_S", "EventClaims", "event_of", "event_scope"]

# EventBridge's largest event (256 KB); nothing bigger comes from a rule.
MAX_BODY_BYTES = 256 * 1024
# Time an event may need: a registry probe, a rotation started, tags; less than this left, and it waits
# for its redelivery (the invocation's own margin for reporting comes on top).
START_BY_S = 30.0
# The claims whose owner records a diagnosis once its work is done (Remediator: probe#<secret>,
# role#<role>#<secret>). Notification (notify#...) and resubmission (resubmit#<job>) claims are taken right
# before their one action: given back after it, they would notify or resubmit twice.
RETRYABLE_CLAIMS = ("probe#", "role#")


def event_of(body: str) -> dict[str, Any]:
    """The EventBridge event a message of the remediation queue carries (the whole event, as JSON, is the
    body). InvalidEvent for anything else; the message never quotes the body."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidEvent(f"message body larger than {MAX_BODY_BYTES} bytes: not an EventBridge event")
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidEvent("message body is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidEvent(f"message body is a JSON {type(event).__name__}, not an event")
    return event


class EventClaims(Coalescer):
    """A `Coalescer` that gives back, when an event fails, the probe and role claims it took and did not
    record a diagnosis for. One event at a time (a remediator handles one event at a time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unfinished: list[str] = []

    def start_event(self) -> None:
        self._unfinished.clear()

    def claim(self, key: str) -> Claim:
        claim = super().claim(key)
        if claim.owner and key.startswith(RETRYABLE_CLAIMS):
            self._unfinished.append(key)
        return claim

    def record(self, key: str, diagnosis: str) -> None:
        # Finished once there is a diagnosis, even if writing it to DynamoDB fails: the work was done
        # (this container knows the diagnosis; the others read none and tag ``coalesced``).
        if key in self._unfinished:
            self._unfinished.remove(key)
        super().record(key, diagnosis)

    def event_failed(self) -> list[str]:
        """Give back this event's unfinished claims; returns their keys."""
        released, self._unfinished = self._unfinished, []
        for key in released:
            try:
                self.release(key)
            except Exception as exc:
                # The claim then ends with its window; this container forgot it already.
                logger.warning(
                    "could not give back a claim", extra={"claim": key, "error": aws_error_code(exc)}
                )
        return released


@contextmanager
def event_scope(coalescer: Coalescer) -> Iterator[None]:
    """Around the handling of one event: an `EventClaims` gives back its unfinished claims if it fails."""
    if not isinstance(coalescer, EventClaims):
        yield
        return
    coalescer.start_event()
    try:
        yield
    except BaseException:
        released = coalescer.event_failed()
        if released:
            logger.info("claims given back for the redelivery", extra={"claims": released})
        raise
