"""Batch jobs and ECS tasks: which image, which secret, which execution role.

Pure helpers plus one bounded cache for job and task definitions, kept across warm invocations:
a storm of failures names the same few definitions thousands of times.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .events import PullFailure
    from .registry.reference import ImageRef


def is_child_job(job_id: str) -> bool:
    """Array children are ``<parent>:<index>``, multi-node ones ``<parent>#<node>``: Batch cannot tag them."""
    return ":" in job_id or "#" in job_id


def parse_image(image: str) -> ImageRef | None:
    """An image a job or task definition names, parsed as Docker parses it; None (logged) when Docker itself
    would refuse it: one bad image never stops the handling of an event."""
    from .errors import RegcredError
    from .observability import logger
    from .registry.reference import ImageRef

    try:
        return ImageRef.parse(image)
    except RegcredError as exc:
        logger.warning("unparseable image skipped", extra={"reason": str(exc)})
        return None


def secret_name_from_arn(parameter: str) -> str:
    """A short name for tags and messages: the secret's name without the ARN prefix and random suffix."""
    if not parameter.startswith("arn:"):
        return parameter
    name = parameter.split(":secret:", 1)[-1]
    head, _, suffix = name.rpartition("-")
    return head if head and len(suffix) == 6 else name


class DefinitionCache:
    """A bounded LRU of definitions by ARN; misses call ``fetch``. ``None`` results are cached too."""

    def __init__(self, fetch: Callable[[str], Mapping[str, Any] | None], size: int = 256) -> None:
        self._fetch = fetch
        self._size = size
        self._items: OrderedDict[str, Mapping[str, Any] | None] = OrderedDict()
        self.misses = 0

    def get(self, arn: str) -> Mapping[str, Any] | None:
        """The definition, fetched once while it stays among the ``size`` most recently used."""
        if arn in self._items:
            self._items.move_to_end(arn)
            return self._items[arn]
        self.misses += 1
        value = self._fetch(arn)
        self._items[arn] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


def batch_job_definition_fetcher(batch: Any) -> Callable[[str], Mapping[str, Any] | None]:
    """DescribeJobDefinitions for one ARN (or name:revision)."""

    def fetch(arn: str) -> Mapping[str, Any] | None:
        found = batch.describe_job_definitions(jobDefinitions=[arn]).get("jobDefinitions") or []
        return found[0] if found else None

    return fetch


def ecs_task_definition_fetcher(ecs: Any) -> Callable[[str], Mapping[str, Any] | None]:
    """DescribeTaskDefinition for one ARN."""

    def fetch(arn: str) -> Mapping[str, Any] | None:
        try:
            return ecs.describe_task_definition(taskDefinition=arn).get("taskDefinition")  # type: ignore[no-any-return]
        except ecs.exceptions.ClientException:
            return None

    return fetch


def batch_container(definition: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The container properties of a Batch job definition (the main node's for multi-node jobs)."""
    if not definition:
        return {}
    container = definition.get("containerProperties")
    if container:
        return container  # type: ignore[no-any-return]
    nodes = definition.get("nodeProperties") or {}
    main = nodes.get("mainNode", 0)
    for node_range in nodes.get("nodeRangeProperties") or []:
        target = str(node_range.get("targetNodes", ""))
        start = target.split(":", 1)[0]
        if start in ("", str(main)):
            return node_range.get("container") or {}
    return {}


def credentials_parameter(*containers: Mapping[str, Any] | None) -> str | None:
    """The first ``repositoryCredentials.credentialsParameter`` among the containers given, in order."""
    for container in containers:
        parameter = ((container or {}).get("repositoryCredentials") or {}).get("credentialsParameter")
        if parameter:
            return str(parameter)
    return None


def ecs_container_definition(definition: Mapping[str, Any] | None, name: str | None) -> Mapping[str, Any]:
    """The container definition called ``name`` in an ECS task definition."""
    for container in (definition or {}).get("containerDefinitions") or []:
        if container.get("name") == name:
            return container  # type: ignore[no-any-return]
    return {}


def ecs_task_container(
    task: Mapping[str, Any], definition: Mapping[str, Any] | None, name: str | None = None
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(the task's container, its container definition) that a diagnosis is about: the one called ``name``
    when given; else the first whose reason is a pull failure (`regcred.failures.classify`), else the first
    with a reason, else the first whose definition sets repositoryCredentials, else the first."""
    from .failures import FailureClass, classify

    containers: list[Mapping[str, Any]] = list(task.get("containers") or [])
    defined: list[Mapping[str, Any]] = list((definition or {}).get("containerDefinitions") or [])

    def pair(container: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        return container, ecs_container_definition(definition, container.get("name"))

    if name is not None:
        return pair(next((c for c in containers if c.get("name") == name), {"name": name}))
    with_reason = [c for c in containers if c.get("reason")]
    pulls = [c for c in with_reason if classify(str(c["reason"])) is not FailureClass.OTHER]
    if pulls or with_reason:
        return pair((pulls or with_reason)[0])
    for container in defined:
        if credentials_parameter(container):
            found = next((c for c in containers if c.get("name") == container.get("name")), None)
            return found or {"name": container.get("name")}, container
    if containers:
        return pair(containers[0])
    return {}, defined[0] if defined else {}


def ecs_execution_role(task: Mapping[str, Any], definition: Mapping[str, Any] | None) -> str | None:
    """The task's execution role: its override (RunTask's ``overrides.executionRoleArn``), else the task
    definition's."""
    role = (task.get("overrides") or {}).get("executionRoleArn") or (definition or {}).get("executionRoleArn")
    return str(role) if role else None


class Link(NamedTuple):
    """What a failure's event and its definition say: image, secret, execution role, container."""

    image: str | None
    secret_id: str | None
    role: str | None
    container: Mapping[str, Any]


def link(
    failure: PullFailure, job_definitions: DefinitionCache, task_definitions: DefinitionCache | None
) -> Link:
    """Image, secret, execution role and container definition of a failed Batch job or ECS task, from the
    event else its (cached) definition."""
    if failure.kind == "ecs":
        definition = (
            task_definitions.get(failure.definition) if task_definitions and failure.definition else None
        )
        container = ecs_container_definition(definition, failure.container_name)
        # The task's override (in the event) first, as ECS uses it; else the definition's.
        role = failure.execution_role or (definition or {}).get("executionRoleArn")
        return Link(
            failure.image or container.get("image"), credentials_parameter(container), role, container
        )
    definition = job_definitions.get(failure.definition) if failure.definition else None
    container = batch_container(definition)
    secret_id = failure.credentials_parameter or credentials_parameter(container)
    role = failure.execution_role or container.get("executionRoleArn")
    return Link(failure.image or container.get("image"), secret_id, role, container)
