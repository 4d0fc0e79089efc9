"""Diagnose, step 1: gather. Every AWS and registry call ``regcred diagnose`` makes, in one place, returning
one typed `Facts` object; the checks (`regcred.diagnose.checks`) only read it.

Strictly read-only: DescribeJobs, DescribeJobDefinitions, DescribeSecret, GetSecretValue (AWSCURRENT),
GetResourcePolicy, iam:SimulatePrincipalPolicy, kms:DescribeKey / GetKeyPolicy, and the registry's
``GET /v2/`` challenge, token request and manifest ``HEAD``. Nothing is written, tagged or rotated. A call
that fails is recorded as its AWS error code (never its message, which may quote request content); a
gathering step that an earlier failure makes impossible is not attempted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..access import RoleAccess, check_role
from ..aws import aws_error_code
from ..config import SecretConfig
from ..errors import RegcredError, SecretFormatError
from ..jobs import batch_container, credentials_parameter
from ..providers import spec_for
from ..registry import Credential, ImageCheck, ImageRef, PullCheck
from ..routing import Deployment, Routing, route_of, route_unmanaged
from ..secret import SecretValue, parse
from ..store import CURRENT, SecretNotFound, SecretState, SecretStore

__all__ = ["Facts", "PullChecker", "gather", "registry_checker"]

PullChecker = Callable[[Routing, Credential, Sequence[str]], PullCheck]


@dataclass
class Facts:
    """What the AWS APIs and the registry said about one job's image pull. ``*_error`` fields hold an AWS
    error code or a regcred message; None means the call was not made or succeeded."""

    job_id: str
    region: str | None = None
    # the job
    job: Mapping[str, Any] | None = None
    job_error: str | None = None
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
