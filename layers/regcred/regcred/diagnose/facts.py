"""Diagnose, step 1: gather. Every AWS and registry call ``regcred diagnose`` makes, in one place, returning
one typed `Facts` object; the checks (`regcred.diagnose.checks`) only read it.

Strictly read-only: DescribeJobs and DescribeJobDefinitions for a Batch job, or sts:GetCallerIdentity,
ecs:DescribeTasks and ecs:DescribeTaskDefinition for an ECS task; then, for both, DescribeSecret,
GetSecretValue (AWSCURRENT), GetResourcePolicy, iam:SimulatePrincipalPolicy, kms:DescribeKey /
GetKeyPolicy, and the registry's ``GET /v2/`` challenge, token request and manifest ``HEAD``. Nothing is
written, tagged or rotated. A call that fails is recorded as its AWS error code (never its message, which
may quote request content); a gathering step that an earlier failure makes impossible is not attempted.

For a task (`gather_task`), what ECS documents: DescribeTasks (cluster from the ARN) answers ``tasks`` and
``failures`` (``arn``, ``reason``: ``MISSING`` for a task it does not know) and lists stopped tasks for at
least an hour; a task has ``stoppedReason``, ``stopCode``, ``overrides.executionRoleArn`` and
``containers[]`` with ``name``, ``image`` and ``reason`` (the pull error, up to 1024 characters); the task
definition (DescribeTaskDefinition) has ``executionRoleArn`` and ``containerDefinitions[]`` with
``repositoryCredentials.credentialsParameter``
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html, API_Task.html,
API_Container.html, API_TaskOverride.html, API_Failure.html, API_DescribeTaskDefinition.html and
API_RepositoryCredentials.html). Only the container and secret checks after that are shared with Batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..access import RoleAccess, check_role
from ..aws import aws_error_code
from ..config import SecretConfig
from ..ecs import TaskRef
from ..errors import RegcredError, SecretFormatError
from ..failures import classify
from ..jobs import batch_container, credentials_parameter, ecs_execution_role, ecs_task_container
from ..providers import spec_for
from ..registry import Credential, ImageCheck, ImageRef, PullCheck
from ..routing import Deployment, Routing, route_of, route_unmanaged
from ..secret import SecretValue, parse
from ..store import CURRENT, SecretNotFound, SecretState, SecretStore

__all__ = ["Facts", "PullChecker", "gather", "gather_task", "registry_checker"]

PullChecker = Callable[[Routing, Credential, Sequence[str]], PullCheck]


@dataclass
class Facts:
    """What the AWS APIs and the registry said about one job's image pull. ``*_error`` fields hold an AWS
    error code or a regcred message; None means the call was not made or succeeded."""

    job_id: str  # the Batch job id, or the ECS task (its ARN, or its id with a cluster)
    region: str | None = None
    kind: str = "batch"  # or "ecs"
    # the job or task
    job: Mapping[str, Any] | None = None
    job_error: str | None = None
    job_refused: tuple[str, str] | None = None  # why the task was not read (another account...), what to do
    cluster: str | None = None
    cluster_assumed: bool = False  # an old-format task ARN given without --cluster
    container_name: str | None = None
    definition_arn: str = ""
    definition: Mapping[str, Any] | None = None
    definition_error: str | None = None
    image: str | None = None
    role: str | None = None
    reason: str = ""
    parameter: str | None = None
    # the secret
    secret: SecretState | None = None
    secret_error: str | None = None
    cfg: SecretConfig | None = None
    cfg_error: str | None = None
    value: SecretValue | None = None
    value_version: str | None = None
    value_error: str | None = None  # an AWS error code
    value_format_error: str | None = None  # SecretFormatError's message (names fields, never values)
    # the execution role
    access: RoleAccess | None = None
    # the registry
    image_ref: ImageRef | None = None
    image_error: str | None = None
    route: Routing | None = None
    route_error: str | None = None  # the managed secret's tags do not give a routing
    pull: ImageCheck | None = None
    pull_error: str | None = None  # the registry could not be checked (untrusted realm, unsafe redirect...)

    @property
    def managed(self) -> bool:
        return self.secret is not None and self.secret.managed

    @property
    def noun(self) -> str:
        """What the checks call the subject: ``job`` or ``task``."""
        return "task" if self.kind == "ecs" else "job"

    @property
    def definition_word(self) -> str:
        """``job definition`` or ``task definition``, for the actions."""
        return f"{self.noun} definition"

    @property
    def failure_class(self) -> str | None:
        """The class `regcred classify` gives the pull error, when there is one."""
        return classify(self.reason).value if self.reason else None


def _container(job: Mapping[str, Any] | None) -> Mapping[str, Any]:
    job = job or {}
    container = job.get("container")
    return container if container else batch_container(job)


def _reason(job: Mapping[str, Any]) -> str:
    """The pull error: the last attempt's container reason, else the job's, else statusReason."""
    attempts = job.get("attempts") or []
    if attempts:
        reason = (attempts[-1].get("container") or {}).get("reason")
        if reason:
            return str(reason)
    reason = (job.get("container") or {}).get("reason")
    return str(reason or job.get("statusReason") or "")


def _gather_job(f: Facts, batch: Any) -> None:
    try:
        found = batch.describe_jobs(jobs=[f.job_id]).get("jobs") or []
    except Exception as exc:
        f.job_error = aws_error_code(exc)
        return
    if not found:
        return
    f.job = found[0]
    f.definition_arn = str(f.job.get("jobDefinition") or "")
    if f.definition_arn:
        try:
            definitions = batch.describe_job_definitions(jobDefinitions=[f.definition_arn]).get(
                "jobDefinitions"
            )
            f.definition = definitions[0] if definitions else None
            if f.definition is None:
                f.definition_error = f"job definition {f.definition_arn} not found"
        except Exception as exc:
            f.definition_error = f"DescribeJobDefinitions failed ({aws_error_code(exc)})"
    job_container, definition_container = _container(f.job), batch_container(f.definition)
    f.image = job_container.get("image") or definition_container.get("image") or None
    f.role = job_container.get("executionRoleArn") or definition_container.get("executionRoleArn") or None
    f.reason = _reason(f.job)
    f.parameter = credentials_parameter(job_container, definition_container)


def _gather_secret(f: Facts, store: SecretStore) -> None:
    assert f.parameter is not None
    try:
        f.secret = store.describe(f.parameter)
    except SecretNotFound:
        f.secret_error = "ResourceNotFoundException"  # noqa: S105 - an AWS error code
        return
    except Exception as exc:
        f.secret_error = aws_error_code(exc)
        return
    if f.secret.managed:
        try:
            f.cfg = f.secret.config
            spec_for(f.cfg.provider)  # an unknown provider fails here
        except RegcredError as exc:
            f.cfg, f.cfg_error = None, str(exc)
    if f.secret.deleted:
        return
    try:
        reply = store.read_reply(f.secret.arn, stage=CURRENT)
    except SecretNotFound:
        f.value_error = "ResourceNotFoundException"
        return
    except Exception as exc:
        f.value_error = aws_error_code(exc)
        return
    f.value_version = str(reply.get("VersionId") or "?")
    try:
        f.value = parse(reply.get("SecretString"))
    except SecretFormatError as exc:
        f.value_format_error = str(exc)


def _gather_pull(f: Facts, check: PullChecker, deployment: Deployment) -> None:
    assert f.image is not None and f.value is not None
    try:
        f.image_ref = ImageRef.parse(f.image)
    except RegcredError as exc:
        f.image_error = str(exc)
        return
    if f.cfg is not None:
        try:
            f.route = route_of(f.cfg, deployment)
        except RegcredError as exc:
            f.route_error = str(exc)
            return
    elif not f.managed:
        f.route = route_unmanaged(f.image_ref.registry, deployment)
    if f.route is None:
        return
    value_elsewhere = f.value.registry and not f.route.names_registry(f.value.registry)
    if value_elsewhere or not f.route.names_registry(f.image_ref.registry):
        return  # the credential is not sent: the checks say why
    try:
        result = check(f.route, Credential(f.value.username, f.value.password), [str(f.image_ref)])
    except RegcredError as exc:
        f.pull_error = str(exc)
        return
    f.pull = result.images[0]


def gather(
    job_id: str,
    *,
    batch: Any,
    store: SecretStore,
    iam: Any,
    kms: Any | None,
    check: PullChecker,
    deployment: Deployment,
) -> Facts:
    """Everything the checklist needs about one Batch job."""
    f = Facts(job_id, region=store.region)
    _gather_job(f, batch)
    return _gather_secret_side(f, store, iam, kms, check, deployment)


def _caller_account(sts: Any | None) -> str | None:
    """The account of the credentials in use; None when STS cannot say (ECS will answer instead)."""
    if sts is None:
        return None
    try:
        return str(sts.get_caller_identity()["Account"])
    except Exception:  # only a better message is lost
        return None


def _gather_task(f: Facts, ecs: Any, ref: TaskRef, container: str | None) -> None:
    try:
        reply = ecs.describe_tasks(cluster=ref.cluster, tasks=[ref.task])
    except Exception as exc:
        f.job_error = aws_error_code(exc)
        return
    found = reply.get("tasks") or []
    if not found:
        failures = [x.get("reason") for x in reply.get("failures") or [] if x.get("reason") != "MISSING"]
        if failures:
            f.job_error = str(failures[0])  # e.g. a cluster of another account
        return
    f.job = found[0]
    f.definition_arn = str(f.job.get("taskDefinitionArn") or "")
    if f.definition_arn:
        try:
            f.definition = ecs.describe_task_definition(taskDefinition=f.definition_arn).get("taskDefinition")
            if f.definition is None:
                f.definition_error = f"task definition {f.definition_arn} not found"
        except Exception as exc:
            f.definition_error = f"DescribeTaskDefinition failed ({aws_error_code(exc)})"
    task_container, definition_container = ecs_task_container(f.job, f.definition, container)
    if container is not None and not task_container.get("image") and not definition_container:
        names = [str(c.get("name")) for c in f.job.get("containers") or []]
        f.job_refused = (
            f"the task has no container {container} (it has {', '.join(names) or 'none'})",
            "check --container",
        )
        f.job = None
        return
    f.container_name = task_container.get("name") or definition_container.get("name") or container
    f.image = task_container.get("image") or definition_container.get("image") or None
    f.role = ecs_execution_role(f.job, f.definition)
    f.reason = str(task_container.get("reason") or f.job.get("stoppedReason") or "")
    f.parameter = credentials_parameter(definition_container)


def _gather_secret_side(
    f: Facts, store: SecretStore, iam: Any, kms: Any | None, check: PullChecker, deployment: Deployment
) -> Facts:
    """The secret, the execution role's access to it, and the registry: the same for a job and a task."""
    if f.parameter is None:
        return f
    _gather_secret(f, store)
    if f.secret is None:
        return f
    if f.role:
        f.access = check_role(f.role, f.secret, iam=iam, store=store, kms=kms)
    if f.value is not None and f.image is not None and not f.secret.deleted:
        _gather_pull(f, check, deployment)
    return f


def gather_task(
    ref: TaskRef,
    *,
    ecs: Any,
    sts: Any | None,
    store: SecretStore,
    iam: Any,
    kms: Any | None,
    check: PullChecker,
    deployment: Deployment,
    container: str | None = None,
) -> Facts:
    """Everything the checklist needs about one ECS task. A task ARN of another account than the caller's
    is not asked for (ECS could only refuse it); ``container`` picks one container of several."""
    f = Facts(
        ref.task, region=store.region, kind="ecs", cluster=ref.cluster, cluster_assumed=ref.cluster_assumed
    )
    caller = _caller_account(sts) if ref.account else None
    if caller and ref.account != caller:
        f.job_refused = (
            f"the task is in account {ref.account}; these credentials are of account {caller}",
            f"run diagnose with credentials of account {ref.account} (--profile)",
        )
        return f
    _gather_task(f, ecs, ref, container)
    return _gather_secret_side(f, store, iam, kms, check, deployment)


def registry_checker(deployment: Deployment, timeout_s: float = 60.0) -> PullChecker:
    """The real registry check: one transport per diagnosis, on the deployment's local origins, done within
    ``timeout_s``."""

    def check(route: Routing, credential: Credential, images: Sequence[str]) -> PullCheck:
        from ..http.deadline import Deadline
        from ..http.transport import Transport
        from ..registry.client import RegistryClient

        with Transport(local_origins=deployment.local_origins) as transport:
            client = RegistryClient(route.registry, trusted_realms=route.realms, transport=transport)
            return client.check_pull(credential, images, deadline=Deadline(timeout_s))

    return check
