"""What an SQS event source mapping hands a function (the remediation and sweep queues)."""

from __future__ import annotations

from typing import Any

__all__ = ["is_batch"]


def is_batch(event: Any) -> bool:
    """Whether ``event`` is a batch of SQS messages: a non-empty ``Records`` list, every record from
    ``aws:sqs`` (Lambda developer guide, "Using Lambda with Amazon SQS", the example event)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )
