"""Batch jobs and ECS tasks: which image, which secret, which execution role.

Pure helpers plus one bounded cache for job and task definitions, kept across warm invocations:
a storm of failures names the same few definitions thousands of times.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
