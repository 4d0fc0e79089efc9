"""Remediation of image-pull failures (Batch job FAILED, ECS task failed to start), and of what Secrets
Manager's rotation events say (RotationSucceeded: resubmit the jobs held for the secret; RotationFailed,
RotationAbandoned: the SecretsManagerRotationFailed metric and one notification).

One handler, two shapes of event:

- an SQS batch from RemediationQueue, where the EventBridge rules put every event (the event source
  mapping invokes at most RemediationMaxConcurrency of these at once). Each message's body is one
  EventBridge event; each is handled on its own and the ones that failed are reported (Powertools batch
  utility, ReportBatchItemFailures): only those are delivered again and, after the queue's maxReceiveCount,
  kept in RemediationDeadLetterQueue. A poison message (not JSON, not an event regcred handles) fails
  alone; so does an event whose AWS call (a throttled TagResource, say) still fails after botocore's retries
  (regcred.aws), and its job is tagged on the redelivery.
- one EventBridge event, as `sam local invoke -e events/remediate_batch_*.json` sends it: handled, and its
  result returned; an event that cannot be parsed or handled raises.

Parse, delegate, return. The parser models (pydantic) load on the first event, not at init: a cold start
that the benchmark in bench/coldstart.py keeps within 1.2x of boto3's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from regcred import aws, sqs
from regcred.config import parse_duration
from regcred.errors import RegcredError
from regcred.failures import FailureClass
from regcred.held_jobs import HeldJobs, HoldResult
from regcred.http.deadline import Deadline
from regcred.observability import count_alone, logger, metrics, tracer
from regcred.remediation import Action, Remediator, Settings
from regcred.remediation_batch import START_BY_S, EventClaims, event_of, event_scope

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from regcred.events import RotationNotice

_remediator: Remediator | None = None
# Log keys one event of a batch sets, removed before the next.
_EVENT_KEYS = ("resource", "secret", "event_id", "message_id")


def settings_from_env() -> Settings:
    """The function's settings, validated once per execution environment."""
    return Settings(
        cooldown_s=parse_duration(os.environ.get("REGCRED_COOLDOWN", "15m"), "REGCRED_COOLDOWN"),
        resubmit=os.environ.get("REGCRED_RESUBMIT", "false").lower() == "true",
        topic_arn=os.environ.get("REGCRED_TOPIC_ARN") or None,
    )


def build_remediator(start_rotation: Callable[[str], object] | None = None) -> Remediator:
    """The remediator with clients from the environment; ``start_rotation`` defaults to RotateSecret."""
    settings = settings_from_env()
    table = os.environ.get("REGCRED_COALESCE_TABLE") or None
    ddb = aws.client("dynamodb") if table else None
    return Remediator(
        sm=aws.client("secretsmanager"),
        batch=aws.client("batch"),
        iam=aws.client("iam"),
        kms=aws.client("kms"),
        ecs=aws.client("ecs"),
        sns=aws.client("sns") if settings.topic_arn else None,
        # Gives back the probe claim of an event that fails, for its redelivery (regcred.remediation_batch).
        coalescer=EventClaims(ddb, table, settings.cooldown_s),
        # Held jobs live in the coalesce table too (pk held#<secret ARN>), so that whichever container gets
        # the RotationSucceeded event finds them.
        held=HeldJobs(ddb, table),
        settings=settings,
        start_rotation=start_rotation,
    )


def _get_remediator() -> Remediator:
    """Clients and caches live as long as the execution environment: a storm hits warm containers."""
    global _remediator
    if _remediator is None:
        _remediator = build_remediator()
    return _remediator


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A batch of the remediation queue (returns the partial batch response), or one event (returns what
    was done, for tests and sam local invoke)."""
    if sqs.is_batch(event):
        return _batch(event, context)
    return _event(event, context)


def _batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Each message's event on its own, in order; the failed ones are reported, the others deleted."""
    # One processor per invocation: it keeps the batch's state.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    invocation = Deadline.for_lambda(context, margin_s=10.0)

    def handle(record: SQSRecord) -> None:
        logger.append_keys(message_id=record.message_id)
        try:
            if invocation.remaining() < START_BY_S:
                raise RegcredError("not started: too little time left in the invocation")
            _event(event_of(record.body), context)
        finally:
            logger.remove_keys(list(_EVENT_KEYS))

    response = process_partial_response(
        event=event, record_handler=handle, processor=processor, context=context
    )
    failures = response.get("batchItemFailures", [])
    if failures:
        metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=len(failures))
        for record, (_kind, exc, _tb) in zip(processor.fail_messages, processor.exceptions, strict=True):
            attributes = record.raw_event.get("attributes") or {}
            # The error's type or AWS code only: a validation error quotes the event.
            logger.warning(
                "event failed: delivered again, then kept in the dead-letter queue",
                extra={
                    "message_id": record.message_id,
                    "receive_count": attributes.get("ApproximateReceiveCount"),
                    "error": aws.aws_error_code(exc) if exc is not None else "unknown",
                    "reason": str(exc) if isinstance(exc, RegcredError) else None,
                },
            )
    # Exactly the partial batch response the event source mapping reads.
    return dict(response)


def _event(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Handle one state-change or rotation event; returns what was done."""
    from pydantic import ValidationError

    from regcred.events import SecretRotationEvent, failure_of, parse_event, rotation_of

    try:
        parsed = parse_event(event)
    except ValidationError as exc:
        # Raised on purpose: the message is delivered again, then kept in the dead-letter queue.
        metrics.add_metric(name="EventsUnparseable", unit=MetricUnit.Count, value=1)
        logger.error(
            "event is not a Batch or ECS state change or a Secrets Manager rotation event",
            extra={"errors": exc.error_count()},
        )
        raise
    if isinstance(parsed, SecretRotationEvent):
        return _rotation_event(rotation_of(parsed), context)
    failure = failure_of(parsed)
    logger.append_keys(resource=failure.resource_id, event_id=failure.event_id)
    metrics.add_metric(name="EventsReceived", unit=MetricUnit.Count, value=1)
    if failure.kind == "batch" and failure.status != "FAILED":
        return {"ignored": f"status {failure.status}"}
    remediator = _get_remediator()
    with event_scope(remediator.coalescer):
        outcome = remediator.handle(failure, deadline=Deadline.for_lambda(context, margin_s=10.0))
    if outcome.failure_class is not FailureClass.OTHER and not outcome.duplicate:
        count_alone(
            "PullFailure", {"class": outcome.failure_class.value, "registry": outcome.registry or "unknown"}
        )
        for action in outcome.actions:
            count_alone("RemediationAction", {"action": action})
        if Action.ROLLED_BACK in outcome.actions:
            metrics.add_metric(name="Rollback", unit=MetricUnit.Count, value=1)
        if outcome.hold is HoldResult.FULL:
            metrics.add_metric(name="HeldJobsRefused", unit=MetricUnit.Count, value=1)
        logger.info(
            "pull failure handled",
            extra={
                "class": outcome.failure_class.value,
                "diagnosis": outcome.diagnosis,
                "actions": outcome.actions,
                "tagged": outcome.tagged,
            },
        )
    return {
        "class": outcome.failure_class.value,
        "diagnosis": outcome.diagnosis,
        "secret": outcome.secret,
        "actions": outcome.actions,
        "tagged": outcome.tagged,
        "duplicate": outcome.duplicate,
        "hold": outcome.hold.value if outcome.hold else None,
    }


def _rotation_event(notice: RotationNotice, context: LambdaContext) -> dict[str, Any]:
    """RotationSucceeded / RotationFailed / RotationAbandoned of a secret (`Remediator.handle_rotation`)."""
    logger.append_keys(secret=notice.secret_arn, event_id=notice.event_id)
    metrics.add_metric(name="EventsReceived", unit=MetricUnit.Count, value=1)
    remediator = _get_remediator()
    with event_scope(remediator.coalescer):
        outcome = remediator.handle_rotation(notice, deadline=Deadline.for_lambda(context, margin_s=10.0))
    if outcome.rotation_failed:
        # One metric, dimension service only (what Powertools adds from POWERTOOLS_SERVICE_NAME): the alarm
        # on rotation failures matches exactly that.
        count_alone("SecretsManagerRotationFailed")
    if outcome.resubmitted:
        metrics.add_metric(name="HeldJobsResubmitted", unit=MetricUnit.Count, value=len(outcome.resubmitted))
    logger.info(
        "rotation event handled",
        extra={
            "rotation_event": outcome.event,
            "result": outcome.result,
            "resubmitted": len(outcome.resubmitted),
            "skipped": len(outcome.skipped),
            "held": outcome.held,
        },
    )
    return outcome.as_dict()
