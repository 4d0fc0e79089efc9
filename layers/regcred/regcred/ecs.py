"""ECS tasks: what a task ARN names, and the ``regcred:*`` tags remediation puts on a task where ECS allows
it.

What this module relies on, from the AWS documentation:

- Task ARNs come in two formats: the long one, ``arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID``, and
  the old one, ``arn:aws:ecs:REGION:ACCOUNT:task/TASK_ID``, which names no cluster ("Amazon Resource Names
  (ARNs) and IDs", https://docs.aws.amazon.com/AmazonECS/latest/userguide/ecs-resource-ids.html). A task
  gets its format when it is created, from the ``taskLongArnFormat`` account setting of the user or role
  that created it, and resource tagging needs the long one ("Account settings",
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-account-settings.html, and
  PutAccountSettingDefault, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PutAccountSettingDefault.html).
  A task in the old format is therefore never sent to TagResource.
- TagResource takes tasks ("the supported resources are Amazon ECS capacity providers, tasks, services,
  task definitions, clusters, and container instances") and these rules: at most 50 tags per resource,
  keys of at most 128 and values of at most 256 Unicode characters, letters, numbers, spaces and
  ``+ - = . _ : / @``, and no ``aws:`` prefix in either (TagResource,
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TagResource.html; the SDK's model gives the
  pattern ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``). Its errors: ClientException, ClusterNotFoundException,
  InvalidParameterException (what a service with a short ARN gets), ResourceNotFoundException, and
  ServerException.
- Nothing in the documentation says whether a STOPPED task can still be tagged; StopTask says "any tags
  associated with the task will be deleted" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html),
  and DescribeTasks lists stopped tasks "for at least one hour"
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html). Remediation tries
  once; a refusal is logged and counted (``EcsTaskNotTagged``, dimension ``reason``) and never fails the
  event. Throttling and server errors are raised, so that the event is delivered again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import RegcredError

__all__ = [
    "NOT_TAGGED_METRIC",
    "MalformedTaskArn",
    "TagResult",
    "TaskRef",
    "ecs_tag_value",
    "ecs_tags",
    "is_task_arn",
    "parse_task",
    "tag_task",
]

NOT_TAGGED_METRIC = "EcsTaskNotTagged"
MAX_TAGS = 50
_MAX_KEY, _MAX_VALUE = 128, 256
OLD_ARN_FORMAT = "old_arn_format"
FOREIGN_TASK = "foreign_task"

# A task id is 32 hex digits (long format) or a UUID (old format; moto uses UUIDs in both). Cluster names
# are up to 255 letters, digits, hyphens and underscores.
_ID = r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_CLUSTER = r"[A-Za-z0-9_-]{1,255}"
TASK_ARN_RE = re.compile(
    r"arn:(aws(?:-[a-z]+)*):ecs:([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):([0-9]{12}):task/"
    rf"(?:({_CLUSTER})/)?({_ID})",
    re.ASCII,
)
_CLUSTER_ARN_RE = re.compile(
    rf"arn:aws(?:-[a-z]+)*:ecs:[a-z]{{2}}(?:-[a-z]+)+-[0-9]{{1,2}}:[0-9]{{12}}:cluster/({_CLUSTER})", re.ASCII
)
_TASK_ID_RE = re.compile(_ID, re.ASCII)
_CLUSTER_RE = re.compile(_CLUSTER, re.ASCII)
# Refusals: the task cannot be tagged, and asking again would not change that.
_REFUSALS = frozenset(
    {
        "InvalidParameterException",
        "ResourceNotFoundException",
        "ClientException",
        "ClusterNotFoundException",
        "AccessDeniedException",
        "LimitExceededException",
    }
)


class MalformedTaskArn(RegcredError):
    """Not an ECS task ARN (or task id with a cluster); the message shows the formats."""


@dataclass(frozen=True)
class TaskRef:
    """One ECS task: its id and cluster, and what its ARN says (None for a bare id given with a cluster)."""

    task_id: str
    cluster: str  # a name, or a cluster ARN as given to --cluster
    arn: str | None = None
    partition: str | None = None
    region: str | None = None
    account: str | None = None
    cluster_assumed: bool = False  # an old-format ARN without --cluster: DescribeTasks's default cluster

    @property
    def task(self) -> str:
        """What DescribeTasks is asked for: the ARN when there is one, else the id."""
        return self.arn or self.task_id

    @property
    def long_format(self) -> bool:
        """Whether the ARN has the cluster in it (the format TagResource needs)."""
        return self.arn is not None and self.arn.count("/") == 2


_FORMATS = (
    "an ECS task is arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID, or "
    "arn:aws:ecs:REGION:ACCOUNT:task/TASK_ID or a task id with --cluster"
)


def _cluster_name(cluster: str) -> str:
    match = _CLUSTER_ARN_RE.fullmatch(cluster)
    if match:
        return match.group(1)
    if _CLUSTER_RE.fullmatch(cluster):
        return cluster
    raise MalformedTaskArn(f"--cluster {cluster[:80]!r} is neither a cluster name nor a cluster ARN")


def parse_task(text: str, cluster: str | None = None) -> TaskRef:
    """The task a command line names: a task ARN in either format, or a bare task id with ``cluster``.

    An old-format ARN without ``cluster`` is looked up in the ``default`` cluster, as DescribeTasks does
    when it is given no cluster; a long-format ARN naming another cluster than ``cluster`` is refused."""
    text = text.strip()
    wanted = _cluster_name(cluster) if cluster else None
    match = TASK_ARN_RE.fullmatch(text)
    if match is not None:
        partition, region, account, in_arn, task_id = match.groups()
        if in_arn and wanted and in_arn != wanted:
            raise MalformedTaskArn(f"the task ARN names cluster {in_arn}, --cluster says {wanted}")
        return TaskRef(
            task_id=task_id,
            cluster=in_arn or cluster or "default",
            arn=text,
            partition=partition,
            region=region,
            account=account,
            cluster_assumed=not in_arn and not cluster,
        )
    if text.startswith("arn:"):
        shown = text if len(text) <= 160 else text[:157] + "..."
        raise MalformedTaskArn(f"{shown!r} is not an ECS task ARN: {_FORMATS}")
    if cluster and _TASK_ID_RE.fullmatch(text):
        return TaskRef(task_id=text, cluster=cluster)
    raise MalformedTaskArn(f"{text[:80]!r} is not an ECS task id: {_FORMATS}")


def is_task_arn(text: str) -> bool:
    """Whether ``text`` looks like an ECS task ARN (well formed or not): what ``regcred diagnose`` takes
    for a task rather than a Batch job id."""
    return text.strip().startswith("arn:") and ":ecs:" in text


# -- tags --------------------------------------------------------------------------------------------


def _allowed(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNZ" or ch in "_.:/=+-@"


def ecs_tag_value(text: str) -> str:
    """A value within ECS's tag rules: disallowed characters become ``_``, at most 256 characters, and never
    the reserved ``aws:`` prefix."""
    value = "".join(ch if _allowed(ch) else "_" for ch in text)
    if value[:4].lower() == "aws:":
        value = "_" + value
    return value[:_MAX_VALUE]


def ecs_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """TagResource's ``tags``: regcred's own keys only (the function's IAM allows nothing else)."""
    out = []
    for key, value in tags.items():
        if not key.startswith("regcred:") or len(key) > _MAX_KEY or not all(map(_allowed, key)):
            raise ValueError(f"not a regcred tag key: {key!r}")
        out.append({"key": key, "value": ecs_tag_value(str(value))})
    if len(out) > MAX_TAGS:
        raise ValueError(f"{len(out)} tags: ECS takes at most {MAX_TAGS} per resource")
    return out


@dataclass(frozen=True)
class TagResult:
    """Whether the task was tagged; ``reason`` (an AWS error code or a regcred word) when it was not."""

    tagged: bool
    reason: str | None = None


def _not_tagged(task_arn: str, reason: str) -> TagResult:
    from .observability import count_alone, logger

    logger.warning("ECS task not tagged", extra={"task": task_arn, "reason": reason})
    count_alone(NOT_TAGGED_METRIC, {"reason": reason})
    return TagResult(False, reason)


def tag_task(ecs: Any, task_arn: str, tags: Mapping[str, str], *, region: str) -> TagResult:
    """Tag a failed task with ``tags`` (regcred:* only) where ECS allows it.

    Not asked: a task ARN in the old format, or in another region than the ECS client's (else the event's
    ``region``): a client tags only its own region's resources. Refused
    (InvalidParameterException and the other client errors): logged and counted, never raised. Throttling,
    server and connection errors are raised, so that the event is delivered again."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .aws import aws_error_code

    match = TASK_ARN_RE.fullmatch(task_arn)
    if match is None or match.group(4) is None:
        return _not_tagged(task_arn, OLD_ARN_FORMAT if match is not None else "malformed_arn")
    if match.group(2) != (getattr(getattr(ecs, "meta", None), "region_name", None) or region):
        return _not_tagged(task_arn, FOREIGN_TASK)
    try:
        ecs.tag_resource(resourceArn=task_arn, tags=ecs_tags(tags))
    except ClientError as exc:
        code = aws_error_code(exc)
        if code not in _REFUSALS:
            raise  # ThrottlingException, ServerException...: the event comes back and tries again
        return _not_tagged(task_arn, code)
    except BotoCoreError:
        raise  # connection and timeout errors: asked again with the event
    except Exception as exc:  # the tag is the last, best-effort step of an event: it never fails it
        return _not_tagged(task_arn, type(exc).__name__)
    return TagResult(True)
