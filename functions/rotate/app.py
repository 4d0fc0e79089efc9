"""Secrets Manager rotation function for registry credentials: parse, delegate, return.

The event (SecretId, ClientRequestToken, Step) is never logged: the request token is the
correlation id instead. Tracer never captures responses.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from regcred import aws
from regcred.aws import aws_error_code
from regcred.config import LAST_FAILURE
from regcred.errors import InvalidEvent, RegcredError, RotationError
from regcred.http.deadline import Deadline
from regcred.observability import count_alone, logger, metrics, tracer
from regcred.rotation import Rotator
from regcred.rotation_event import rotation_event
from regcred.rotation_rules import StepFailure

_rotator: Rotator | None = None


def _get_rotator() -> Rotator:
    """Clients are built once per execution environment, on first use."""
    global _rotator
    if _rotator is None:
        _rotator = Rotator(aws.client("secretsmanager"), batch=aws.client("batch"))
    return _rotator


def _record_failure(secret_id: str, failure: StepFailure) -> None:
    """The failed step, for `regcred rotate --wait` (a bookkeeping tag). Best effort: the step's own error is
    what Secrets Manager sees."""
    try:
        _get_rotator().store.write_bookkeeping(secret_id, {LAST_FAILURE: failure.tag_text()})
    except Exception as exc:
        logger.warning("could not record the failed step", extra={"error": aws_error_code(exc)})


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    """Run one rotation step. Raising fails the step, which Secrets Manager reports and retries."""
    try:
        secret_id, token, step = rotation_event(event)
    except InvalidEvent as exc:
        metrics.add_metric(name="RotationEventInvalid", unit=MetricUnit.Count, value=1)
        logger.error("not a rotation event", extra={"reason": str(exc)})
        raise
    logger.set_correlation_id(token)
    logger.append_keys(step=step.value, secret_id=secret_id)
    metrics.add_dimension(name="step", value=step.value)
    started = time.monotonic()
    try:
        result = _get_rotator().run(secret_id, token, step, deadline=Deadline.for_lambda(context))
    except Exception as exc:
        metrics.add_dimension(name="outcome", value=type(exc).__name__)
        metrics.add_metric(name="RotationStepFailed", unit=MetricUnit.Count, value=1)
        # The alarm's metric: the service dimension alone (an alarm matches exact dimensions).
        count_alone("RotationFailed")
        # regcred's messages never carry a secret; other errors (botocore's) are named, not echoed: what
        # reaches the log and Lambda's error response is the AWS error code.
        reason = str(exc) if isinstance(exc, RegcredError) else aws_error_code(exc)
        logger.error("rotation step failed", extra={"error": type(exc).__name__, "reason": reason})
        _record_failure(secret_id, StepFailure(token, step.value, type(exc).__name__, reason))
        if isinstance(exc, RegcredError):
            raise
        raise RotationError(f"{step.value} failed: {type(exc).__name__} ({reason})") from None
    metrics.add_dimension(name="provider", value=result.provider)
    metrics.add_dimension(name="outcome", value=result.outcome.value)
    metrics.add_metric(name="RotationStepSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RotationStepDuration", unit=MetricUnit.Seconds, value=time.monotonic() - started)
    if result.rotation_seconds is not None:
        metrics.add_metric(name="RotationDuration", unit=MetricUnit.Seconds, value=result.rotation_seconds)
    if result.skipped_images:
        metrics.add_metric(name="ProbeImagesSkipped", unit=MetricUnit.Count, value=len(result.skipped_images))
    logger.info("rotation step done", extra={"outcome": result.outcome.value})
