"""The scheduled sweep (EventBridge Scheduler) and its workers (SQS): parse, delegate, report.

One function, two events:

- the schedule's event: sweep every managed secret here, or, above REGCRED_SWEEP_FANOUT_THRESHOLD secrets,
  send one message per secret to the sweep queue;
- an SQS batch from that queue: sweep each secret named, reporting the messages that failed
  (Powertools batch utility, ReportBatchItemFailures), so that only those are delivered again and, after
  the queue's maxReceiveCount, kept in its dead-letter queue.

Metrics (namespace regcred): per run SecretsSwept, InvalidCredentials, ExpiringSoon, SweepErrors,
SecretsUnchecked (registries that could not be asked: unreachable, rate limited), RotationsStarted, Retired
and OrphansRevoked (dimension service); per secret, unless REGCRED_PER_SECRET_METRICS=false,
CredentialValid, SecondsToExpiry and RateLimitRemaining (dimensions service and secret).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from regcred import aws, sqs
from regcred.coalesce import Coalescer
from regcred.errors import InvalidEvent, RegcredError
from regcred.http.deadline import Deadline
from regcred.observability import logger, metrics, tracer
from regcred.sweep import Failure, SecretReport, Sweeper, SweepSettings, SweepSummary

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

_sweeper: Sweeper | None = None
# A batch whose every message failed is reported as such (every message delivered again), not raised: the
# run's metrics and logs still go out.
_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# The result lists at most this many secrets (a Lambda response is at most 6 MB; the logs have them all).
RESULT_SECRETS = 50


def build_sweeper() -> Sweeper:
    """The sweeper with clients from the environment."""
    settings = SweepSettings.from_env()
    table = os.environ.get("REGCRED_COALESCE_TABLE") or None
    return Sweeper(
        aws.client("secretsmanager"),
        batch=aws.client("batch"),
        coalescer=Coalescer(aws.client("dynamodb") if table else None, table, settings.lease_s),
        settings=settings,
        sqs=aws.client("sqs") if settings.queue_url else None,
    )


def _get_sweeper() -> Sweeper:
    global _sweeper
    if _sweeper is None:
        _sweeper = build_sweeper()
    return _sweeper


def publish(summary: SweepSummary, per_secret: bool) -> None:
    """The run's counters (dimension service), and each secret's health (dimensions service and secret)."""
    counts = summary.counts()
    for name, key in (
        ("SecretsSwept", "swept"),
        ("InvalidCredentials", "invalid"),
        ("ExpiringSoon", "expiring_soon"),
        ("SweepErrors", "errors"),
        ("SecretsUnchecked", "unchecked"),
        ("RotationsStarted", "rotations_started"),
        ("Retired", "retired"),
        ("OrphansRevoked", "orphans_revoked"),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[key])
    if per_secret:
        for report in summary.reports:
            _publish_secret(report)


def _publish_secret(report: SecretReport) -> None:
    if not report.swept or (report.valid is None and report.seconds_to_expiry is None):
        return
    one = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    one.add_dimension(name="secret", value=report.secret[:250])
    if report.valid is not None:
        one.add_metric(name="CredentialValid", unit=MetricUnit.Count, value=int(report.valid))
    if report.seconds_to_expiry is not None:
        one.add_metric(name="SecondsToExpiry", unit=MetricUnit.Seconds, value=report.seconds_to_expiry)
    if report.ratelimit_remaining is not None:
        one.add_metric(name="RateLimitRemaining", unit=MetricUnit.Count, value=report.ratelimit_remaining)
    one.flush_metrics()


def _result(summary: SweepSummary) -> dict[str, Any]:
    listed = sorted(summary.reports, key=lambda r: (not r.error, r.valid is not False, r.secret))
    return {
        **summary.counts(),
        "reports": [r.as_dict() for r in listed[:RESULT_SECRETS]],
    }


def _log(summary: SweepSummary) -> None:
    for report in summary.reports:
        if report.error or report.valid is False or report.unchecked:
            logger.warning("secret needs attention", extra=report.as_dict())
    logger.info("sweep done", extra=summary.counts())


def _secret_of(body: str) -> str:
    """The secret a sweep message names; InvalidEvent for a message the sweep did not send."""
    try:
        secret = json.loads(body)["secret"]
        if not isinstance(secret, str) or not secret.startswith("arn:") or len(secret) > 2048:
            raise ValueError("secret is not an ARN")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidEvent(f"not a sweep message ({type(exc).__name__})") from None
    return secret


def _worker(sweeper: Sweeper, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Sweep a batch's secrets in parallel (the sweeper's pool), then report per message through the batch
    utility: a message the sweep did not send, a secret that failed on an unexpected error, or one the
    invocation had no time left for is a failed item, delivered again and, after the queue's
    maxReceiveCount, kept in its dead-letter queue."""
    secrets: list[str] = []
    for record in event["Records"]:
        try:
            secrets.append(_secret_of(str(record.get("body", ""))))
        except InvalidEvent:
            continue  # reported as a failed item below
    summary = sweeper.sweep(
        list(dict.fromkeys(secrets)), deadline=Deadline.for_lambda(context, margin_s=20.0)
    )
    by_secret: dict[str, SecretReport] = {}
    for report in summary.reports:
        by_secret[report.arn] = report
        by_secret.setdefault(report.secret, report)

    def handle(record: SQSRecord) -> None:
        secret = _secret_of(record.body)
        report = by_secret.get(secret)
        if report is None:
            raise RegcredError(f"{secret} was not swept: the invocation ran out of time")
        if report.failure is Failure.ERROR:
            # Unexpected trouble (an AWS error): delivered again, then kept in the dead-letter queue.
            raise RegcredError(f"sweep of {report.secret} failed: {report.detail}")

    response = process_partial_response(
        event=event, record_handler=handle, processor=_processor, context=context
    )
    publish(summary, sweeper.settings.per_secret_metrics)
    _log(summary)
    # Exactly the partial batch response the event source mapping reads.
    return dict(response)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A scheduled sweep, or a batch of the sweep queue's messages."""
    sweeper = _get_sweeper()
    if sqs.is_batch(event):
        return _worker(sweeper, event, context)
    if not isinstance(event, dict) or event.get("source") not in ("aws.scheduler", "aws.events", "regcred"):
        metrics.add_metric(name="SweepEventInvalid", unit=MetricUnit.Count, value=1)
        raise InvalidEvent("not a schedule event or a batch of sweep messages")
    summary = sweeper.run(deadline=Deadline.for_lambda(context, margin_s=20.0))
    publish(summary, sweeper.settings.per_secret_metrics)
    _log(summary)
    return _result(summary)
