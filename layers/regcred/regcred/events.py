"""Parser models of the EventBridge events remediation takes: the pull failure a Batch or ECS state change
reports, and the outcome of a Secrets Manager rotation.

Only the fields regcred reads are declared; AWS adds fields to its events, so unknown fields are
always allowed (pydantic's default, kept on purpose).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import BaseModel, Field
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import TypeAdapter, model_validator


class RepositoryCredentials(BaseModel):
    credentialsParameter: str | None = None


class BatchContainer(BaseModel):
    image: str | None = None
    command: list[str] | None = None
    reason: str | None = None
    executionRoleArn: str | None = None
    repositoryCredentials: RepositoryCredentials | None = None


class BatchAttemptContainer(BaseModel):
    reason: str | None = None
    exitCode: int | None = None
    taskArn: str | None = None


class BatchAttempt(BaseModel):
    container: BatchAttemptContainer | None = None
    statusReason: str | None = None
    stoppedAt: int | None = None


class BatchArrayProperties(BaseModel):
    size: int | None = None


class BatchJobDetail(BaseModel):
    jobArn: str | None = None
    jobName: str | None = None
    jobId: str
    jobQueue: str | None = None
    status: str
    statusReason: str | None = None
    attempts: list[BatchAttempt] = Field(default_factory=list)
    jobDefinition: str | None = None
    container: BatchContainer | None = None
    parameters: dict[str, str] | None = None
    tags: dict[str, str] | None = None
    arrayProperties: BatchArrayProperties | None = None
    shareIdentifier: str | None = None
    schedulingPriority: int | None = None


class BatchJobStateChange(EventBridgeModel):
    source: Literal["aws.batch"]
    detail_type: Literal["Batch Job State Change"] = Field(alias="detail-type")
    detail: BatchJobDetail


class EcsContainer(BaseModel):
    name: str | None = None
    image: str | None = None
    reason: str | None = None
    lastStatus: str | None = None


class EcsOverrides(BaseModel):
    # RunTask's TaskOverride: a task may run with another execution role than its definition's.
    executionRoleArn: str | None = None


class EcsTaskDetail(BaseModel):
    taskArn: str
    clusterArn: str | None = None
    taskDefinitionArn: str | None = None
    lastStatus: str | None = None
    stopCode: str | None = None
    stoppedReason: str | None = None
    containers: list[EcsContainer] = Field(default_factory=list)
    group: str | None = None
    overrides: EcsOverrides | None = None


class EcsTaskStateChange(EventBridgeModel):
    source: Literal["aws.ecs"]
    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    detail: EcsTaskDetail


# -- Secrets Manager's rotation outcomes -------------------------------------------------------------
#
# Secrets Manager logs RotationSucceeded, RotationFailed and RotationAbandoned to CloudTrail as service events
# (eventType AwsServiceEvent); EventBridge delivers them with detail-type "AWS Service Event via CloudTrail"
# and the CloudTrail record as the detail, which names the secret's ARN in additionalEventData.SecretId
# (the RotationFailed example of "AWS CloudTrail entries for Secrets Manager",
# https://docs.aws.amazon.com/secretsmanager/latest/userguide/cloudtrail_log_entries.html, and a delivered
# RotationSucceeded in https://aws.amazon.com/blogs/database/multi-user-secrets-rotation-for-amazon-rds/).
# Some deliveries have been reported with the ARN under serviceEventDetails.secretId instead: both are read,
# and when both are present they must agree.

ROTATION_SUCCEEDED = "RotationSucceeded"
RotationEventName = Literal["RotationSucceeded", "RotationFailed", "RotationAbandoned"]

# arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>. Names are ASCII
# letters, digits and /_+=.@- (and "!" in the names of secrets other services manage, such as rds!db-...).
SECRET_ARN_RE = re.compile(
    r"arn:(aws(?:-[a-z]+)*):secretsmanager:([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):([0-9]{12}):secret:"
    r"[A-Za-z0-9/_+=.@!-]{1,512}-[A-Za-z0-9]{6}",
    re.ASCII,
)


class SecretsManagerServiceEvent(BaseModel):
    """The CloudTrail record of a rotation outcome (the ``detail`` of the EventBridge event)."""

    eventSource: Literal["secretsmanager.amazonaws.com"]
    eventName: RotationEventName
    eventID: str | None = None
    eventTime: str | None = None
    errorMessage: str | None = None
    additionalEventData: dict[str, Any] | None = None
    serviceEventDetails: dict[str, Any] | None = None

    @property
    def secret_arn(self) -> str:
        """The secret the rotation was of (validated when the event was parsed)."""
        return str(_secret_arns(self)[0])

    @model_validator(mode="after")
    def _names_one_secret(self) -> SecretsManagerServiceEvent:
        arns = _secret_arns(self)
        if not arns:
            raise ValueError("the event names no secret (additionalEventData.SecretId)")
        for arn in arns:
            if not isinstance(arn, str) or SECRET_ARN_RE.fullmatch(arn) is None:
                raise ValueError("the secret the event names is not a Secrets Manager secret ARN")
        if len(set(arns)) > 1:
            raise ValueError("the event names two different secrets")
        return self


def _secret_arns(detail: SecretsManagerServiceEvent) -> list[Any]:
    """Every secret id the record carries, where CloudTrail puts it."""
    found = []
    for where, keys in (
        (detail.additionalEventData, ("SecretId",)),
        (detail.serviceEventDetails, ("secretId", "SecretId")),
    ):
        for key in keys:
            if where and where.get(key) is not None:
                found.append(where[key])
    return found


class SecretRotationEvent(EventBridgeModel):
    """RotationSucceeded, RotationFailed or RotationAbandoned, as the rotation-events rule delivers it."""

    source: Literal["aws.secretsmanager"]
    detail_type: Literal["AWS Service Event via CloudTrail"] = Field(alias="detail-type")
    detail: SecretsManagerServiceEvent

    @model_validator(mode="after")
    def _secret_of_this_account(self) -> SecretRotationEvent:
        # The rule sees this account's and region's events: a secret of another one is not ours to act on.
        match = SECRET_ARN_RE.fullmatch(self.detail.secret_arn)
        assert match is not None  # checked by the detail's own validator
        if match.group(2) != self.region or match.group(3) != self.account:
            raise ValueError("the secret is not in the event's account and region")
        return self


@dataclass(frozen=True)
class RotationNotice:
    """What a rotation event says: which secret, which outcome, and Secrets Manager's error if it failed."""

    event_id: str
    name: RotationEventName
    secret_arn: str
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """RotationSucceeded (the others are failures: RotationFailed, RotationAbandoned)."""
        return self.name == ROTATION_SUCCEEDED


def rotation_of(event: SecretRotationEvent) -> RotationNotice:
    """The rotation outcome an event reports."""
    detail = event.detail
    return RotationNotice(
        event_id=event.id, name=detail.eventName, secret_arn=detail.secret_arn, error=detail.errorMessage
    )


RemediationEvent = BatchJobStateChange | EcsTaskStateChange | SecretRotationEvent
_ADAPTER: TypeAdapter[RemediationEvent] = TypeAdapter(RemediationEvent)


def parse_event(raw: Any) -> RemediationEvent:
    """A Batch or ECS state-change event or a rotation outcome; pydantic's ValidationError for anything
    else (including a rotation event whose secret is not a valid ARN of the event's account and region)."""
    return _ADAPTER.validate_python(raw)


@dataclass(frozen=True)
class PullFailure:
    """What one event says about a failed pull, before classification."""

    kind: Literal["batch", "ecs"]
    event_id: str
    resource_id: str  # Batch job id, or ECS task ARN
    resource_arn: str | None
    status: str
    reason: str
    image: str | None
    definition: str | None  # job definition ARN, or task definition ARN
    container_name: str | None
    credentials_parameter: str | None  # from the event itself, when it carries one
    execution_role: str | None
    attempts: int
    region: str
    job_name: str | None = None
    job_queue: str | None = None
    command: tuple[str, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    failed_at: float | None = None  # the event's time, in seconds since the epoch
    array_size: int | None = None  # an array job's size (its children are not resubmitted, the parent is)
    share_identifier: str | None = None  # fair-share scheduling
    scheduling_priority: int | None = None


def _batch_reason(detail: BatchJobDetail) -> str:
    # The pull error is in the last attempt's container reason; statusReason is usually just
    # "Task failed to start".
    for attempt in reversed(detail.attempts):
        if attempt.container and attempt.container.reason:
            return attempt.container.reason
    if detail.container and detail.container.reason:
        return detail.container.reason
    return detail.statusReason or ""


def _epoch(event: EventBridgeModel) -> float:
    time = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
    return time.timestamp()


def failure_of(event: RemediationEvent) -> PullFailure:
    """The pull failure a Batch or ECS event reports: reason, image, definition and any secret it names."""
    if isinstance(event, SecretRotationEvent):
        raise TypeError("a rotation event reports no pull failure (regcred.events.rotation_of)")
    if isinstance(event, BatchJobStateChange):
        detail = event.detail
        container = detail.container or BatchContainer()
        credentials = container.repositoryCredentials
        return PullFailure(
            kind="batch",
            event_id=event.id,
            resource_id=detail.jobId,
            resource_arn=detail.jobArn,
            status=detail.status,
            reason=_batch_reason(detail),
            image=container.image,
            definition=detail.jobDefinition,
            container_name=None,
            credentials_parameter=credentials.credentialsParameter if credentials else None,
            execution_role=container.executionRoleArn,
            attempts=len(detail.attempts),
            region=event.region,
            job_name=detail.jobName,
            job_queue=detail.jobQueue,
            command=tuple(container.command or ()),
            parameters=dict(detail.parameters or {}),
            tags=dict(detail.tags or {}),
            failed_at=_epoch(event),
            array_size=detail.arrayProperties.size if detail.arrayProperties else None,
            share_identifier=detail.shareIdentifier,
            scheduling_priority=detail.schedulingPriority,
        )
    task = event.detail
    failed = next((c for c in task.containers if c.reason), None)
    chosen = failed or (task.containers[0] if task.containers else EcsContainer())
    return PullFailure(
        kind="ecs",
        event_id=event.id,
        resource_id=task.taskArn,
        resource_arn=task.taskArn,
        status=task.lastStatus or "",
        reason=(failed.reason if failed and failed.reason else task.stoppedReason) or "",
        image=chosen.image,
        definition=task.taskDefinitionArn,
        container_name=chosen.name,
        credentials_parameter=None,
        execution_role=task.overrides.executionRoleArn if task.overrides else None,
        attempts=1,
        region=event.region,
        failed_at=_epoch(event),
    )
