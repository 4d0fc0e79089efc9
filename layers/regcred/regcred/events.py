"""Parser models of the EventBridge events remediation takes, and the pull failure each one reports.

Only the fields regcred reads are declared; AWS adds fields to its events, so unknown fields are
always allowed (pydantic's default, kept on purpose).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import BaseModel, Field
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import TypeAdapter


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


class BatchJobStateChange(EventBridgeModel):
    source: Literal["aws.batch"]
    detail_type: Literal["Batch Job State Change"] = Field(alias="detail-type")
    detail: BatchJobDetail


class EcsContainer(BaseModel):
    name: str | None = None
    image: str | None = None
    reason: str | None = None
    lastStatus: str | None = None


class EcsTaskDetail(BaseModel):
    taskArn: str
    clusterArn: str | None = None
    taskDefinitionArn: str | None = None
    lastStatus: str | None = None
    stopCode: str | None = None
    stoppedReason: str | None = None
    containers: list[EcsContainer] = Field(default_factory=list)
    group: str | None = None


class EcsTaskStateChange(EventBridgeModel):
    source: Literal["aws.ecs"]
    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    detail: EcsTaskDetail


RemediationEvent = BatchJobStateChange | EcsTaskStateChange
_ADAPTER: TypeAdapter[RemediationEvent] = TypeAdapter(RemediationEvent)


def parse_event(raw: Any) -> RemediationEvent:
    """A Batch or ECS state-change event; pydantic's ValidationError for anything else."""
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


def _batch_reason(detail: BatchJobDetail) -> str:
    # The pull error is in the last attempt's container reason; statusReason is usually just
    # "Task failed to start".
    for attempt in reversed(detail.attempts):
        if attempt.container and attempt.container.reason:
            return attempt.container.reason
    if detail.container and detail.container.reason:
        return detail.container.reason
    return detail.statusReason or ""


def failure_of(event: RemediationEvent) -> PullFailure:
    """The pull failure an event reports: reason, image, definition and any secret it names."""
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
        execution_role=None,
        attempts=1,
        region=event.region,
    )
