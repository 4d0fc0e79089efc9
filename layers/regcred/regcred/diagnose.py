"""``regcred diagnose JOB_ID``: the troubleshooting checklist for a Batch job's image pull, automated.

Strictly read-only: DescribeJobs, DescribeJobDefinitions, DescribeSecret, GetSecretValue (AWSCURRENT),
GetResourcePolicy, iam:SimulatePrincipalPolicy, kms:DescribeKey / GetKeyPolicy, and the registry's
``GET /v2/`` challenge, token request and manifest ``HEAD``. Nothing is written, tagged or rotated.

Each check becomes one `Check`; a check that an earlier one makes impossible is reported as skipped
(``ok=None``) with the reason. AWS errors become checks carrying the AWS error code. No secret value
appears in any check: details name fields, versions and token ids, never a username/password content.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from . import aws, config, providers, routing
from .config import SecretConfig
from .errors import RegcredError, SecretFormatError
from .jobs import batch_container, credentials_parameter, secret_name_from_arn
from .registry import Credential, ImageCheck, ImageRef, PullCheck, PullStatus
from .rotation import CURRENT
from .routing import Deployment, Routing
from .secret import SecretValue, parse

__all__ = [
    "CHECK_NAMES",
    "Check",
    "add_diagnose_parser",
    "cmd_diagnose",
    "diagnose_job",
    "parse_ratelimit",
]

EXIT_OK, EXIT_FAIL, EXIT_NO_JOB = 0, 1, 2

JOB = "job"
SECRET_NAMED = "secret-named"  # noqa: S105 - a check name
SECRET_EXISTS = "secret-exists"  # noqa: S105 - a check name
SECRET_SHAPE = "secret-shape"  # noqa: S105 - a check name
EXECUTION_ROLE = "execution-role"
CREDENTIALS = "credentials"
IMAGE = "image"
RATE_LIMIT = "rate-limit"
CHECK_NAMES = (JOB, SECRET_NAMED, SECRET_EXISTS, SECRET_SHAPE, EXECUTION_ROLE, CREDENTIALS, IMAGE, RATE_LIMIT)

GET_SECRET_VALUE = "secretsmanager:GetSecretValue"  # noqa: S105 - an IAM action
KMS_DECRYPT = "kms:Decrypt"
_AWS_MANAGED_SM_KEY = "alias/aws/secretsmanager"
_NO_SUCH_ROLE = "NoSuchEntity"

PullChecker = Callable[[Routing, Credential, Sequence[str]], PullCheck]

# Errors a boto3 call can raise that are about the call, not about a bug here. ResponseParserError is
# not a BotoCoreError: it is what an endpoint answering HTML (e.g. an emulator's HTTP 500) produces.
_AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)


@dataclass(frozen=True)
class Check:
    """One line of the checklist. ``ok`` is None when the check could not run or does not apply."""

    name: str
    ok: bool | None
    detail: str
    action: str = ""


def _code(exc: BaseException) -> str:
    """The AWS error code of a failed call (never its message, which may quote request content)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


def _arn_parts(arn: str) -> tuple[str, str, str] | None:
    """(partition, region, account) of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    return parts[1], parts[3], parts[4]


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_ratelimit(value: str | None) -> tuple[int, int | None] | None:
    """``"76;w=21600"`` (Docker Hub's RateLimit-* format) -> (76, 21600); a bare ``"76"`` -> (76, None)."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d{1,9})\s*(?:;\s*w\s*=\s*(\d{1,9})\s*)?(?:;.*)?", value)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def _window(seconds: int | None) -> str:
    if not seconds:
        return "an unstated window"
    if seconds % 3600 == 0:
        return f"a {seconds // 3600} h window"
    if seconds % 60 == 0:
        return f"a {seconds // 60} min window"
    return f"a {seconds} s window"


def _normalised_registry(registry: str) -> str:
    """A registry host as ImageRef spells it (docker.io -> registry-1.docker.io), else lower-cased."""
    try:
        return ImageRef.parse(f"{registry}/regcred/probe:latest", default_registry=registry).registry
    except RegcredError:
        return registry.strip().lower()


@dataclass(frozen=True)
class _Key:
    """The customer managed key to check kms:Decrypt on (None: not needed, or ``unknown``)."""

    arn: str | None
    note: str = ""
    unknown: bool = False


@dataclass
class _State:
    """What the checks learned so far; later checks read it."""

    job_id: str
    job: Mapping[str, Any] | None = None
    definition: Mapping[str, Any] | None = None
    definition_error: str | None = None
    image: str | None = None
    role: str | None = None
    parameter: str | None = None
    secret_arn: str | None = None
    secret_name: str | None = None
    kms_key_id: str | None = None
    cfg: SecretConfig | None = None
    value: SecretValue | None = None
    pull: ImageCheck | None = None
    pull_skipped: str = "the registry was not asked"


class _Diagnosis:
    def __init__(
        self,
        state: _State,
        *,
        batch: Any,
        sm: Any,
        iam: Any,
        kms: Any | None,
        check: PullChecker,
        deployment: Deployment,
    ) -> None:
        self.s = state
        self.batch = batch
        self.sm = sm
        self.iam = iam
        self.kms = kms
        self.check = check
        self.deployment = deployment

    # -- 1. the job -------------------------------------------------------------------------------

    def job(self) -> Check:
        s = self.s
        try:
            found = self.batch.describe_jobs(jobs=[s.job_id]).get("jobs") or []
        except _AWS_ERRORS as exc:
            return Check(
                JOB,
                False,
                f"DescribeJobs failed ({_code(exc)})",
                "check the job id, the AWS region and that you may call batch:DescribeJobs",
            )
        if not found:
            return Check(
                JOB,
                False,
                f"no Batch job {s.job_id} (jobs are listed for about 7 days after they finish)",
                "check the job id and the AWS region (AWS_REGION)",
            )
        job: Mapping[str, Any] = found[0]
        s.job = job
        definition_arn = str(job.get("jobDefinition") or "")
        if definition_arn:
            try:
                listed = self.batch.describe_job_definitions(jobDefinitions=[definition_arn])
                definitions = listed.get("jobDefinitions") or []
                s.definition = definitions[0] if definitions else None
                if s.definition is None:
                    s.definition_error = f"job definition {definition_arn} not found"
            except _AWS_ERRORS as exc:
                s.definition_error = f"DescribeJobDefinitions failed ({_code(exc)})"
        job_container = self._job_container()
        definition_container = batch_container(s.definition)
        s.image = job_container.get("image") or definition_container.get("image") or None
        s.role = job_container.get("executionRoleArn") or definition_container.get("executionRoleArn") or None
        parts = [
            f"{job.get('jobName', '?')} is {job.get('status', '?')}",
            f"reason: {_short(self._reason()) or '-'}",
            f"image {s.image or '-'}",
            f"job definition {definition_arn or '-'}",
            f"execution role {s.role or '-'}",
        ]
        if s.definition_error:
            parts.append(s.definition_error)
        return Check(JOB, True, "; ".join(parts))

    def _job_container(self) -> Mapping[str, Any]:
        job = self.s.job or {}
        container = job.get("container")
        return container if container else batch_container(job)

    def _reason(self) -> str:
        """The pull error: the last attempt's container reason, else the job's, else statusReason."""
        job = self.s.job or {}
        attempts = job.get("attempts") or []
        if attempts:
            reason = (attempts[-1].get("container") or {}).get("reason")
            if reason:
                return str(reason)
        reason = (job.get("container") or {}).get("reason")
        return str(reason or job.get("statusReason") or "")

    # -- 2. the secret is named --------------------------------------------------------------------

    def secret_named(self) -> Check:
        s = self.s
        s.parameter = credentials_parameter(self._job_container(), batch_container(s.definition))
        if s.parameter:
            return Check(SECRET_NAMED, True, f"repositoryCredentials.credentialsParameter is {s.parameter}")
        if s.definition is None and s.definition_error:
            return Check(
                SECRET_NAMED,
                None,
                f"the job names no secret and its job definition could not be read: {s.definition_error}",
                "",
            )
        return Check(
            SECRET_NAMED,
            False,
            "neither the job nor its job definition sets repositoryCredentials: the image is pulled "
            "anonymously",
            "add repositoryCredentials.credentialsParameter to the job definition",
        )

    # -- 3. the secret exists (and who manages it) -------------------------------------------------

    def secret_exists(self) -> Check:
        s = self.s
        assert s.parameter is not None
        try:
            meta = self.sm.describe_secret(SecretId=s.parameter)
        except _AWS_ERRORS as exc:
            code = _code(exc)
            if code == "ResourceNotFoundException":
                hint = ""
                parts = _arn_parts(s.parameter)
                region = getattr(getattr(self.sm, "meta", None), "region_name", None)
                if parts and region and parts[1] and parts[1] != region:
                    hint = f" (the ARN is in {parts[1]}, this check looked in {region})"
                return Check(
                    SECRET_EXISTS,
                    False,
                    f"secret {s.parameter} does not exist{hint}",
                    "create the secret or fix repositoryCredentials.credentialsParameter",
                )
            return Check(SECRET_EXISTS, None, f"DescribeSecret failed ({code})", "")
        s.secret_arn = str(meta["ARN"])
        s.secret_name = str(meta.get("Name") or secret_name_from_arn(s.secret_arn))
        s.kms_key_id = meta.get("KmsKeyId") or None
        if meta.get("DeletedDate"):
            return Check(
                SECRET_EXISTS,
                False,
                f"secret {s.secret_name} is scheduled for deletion: ECS cannot read it",
                f"aws secretsmanager restore-secret --secret-id {s.secret_name}",
            )
        tags = config.tags_to_dict(meta.get("Tags"))
        if tags.get(config.MANAGED, "").lower() != "true":
            return Check(
                SECRET_EXISTS,
                True,
                f"secret {s.secret_name} exists but is not managed by regcred (no {config.MANAGED}=true "
                "tag): nothing rotates or repairs it",
            )
        try:
            s.cfg = SecretConfig.from_tags(tags, s.secret_name)
            providers.spec_for(s.cfg.provider)  # an unknown provider fails here
        except RegcredError as exc:
            s.cfg = None
            return Check(
                SECRET_EXISTS,
                False,
                f"secret {s.secret_name} is tagged {config.MANAGED}=true but its tags are invalid: {exc}",
                "fix the regcred:* tags of the secret as the detail says",
            )
        return Check(
            SECRET_EXISTS, True, f"secret {s.secret_name} exists, managed by regcred ({s.cfg.provider})"
        )

    # -- 4. the secret's shape ---------------------------------------------------------------------

    def secret_shape(self) -> Check:
        s = self.s
        assert s.secret_arn is not None
        try:
            reply = self.sm.get_secret_value(SecretId=s.secret_arn, VersionStage=CURRENT)
        except _AWS_ERRORS as exc:
            code = _code(exc)
            if code == "ResourceNotFoundException":
                return Check(
                    SECRET_SHAPE,
                    False,
                    f"secret {s.secret_name} has no {CURRENT} version",
                    'store {"username": ..., "password": ...} as its AWSCURRENT version',
                )
            return Check(SECRET_SHAPE, None, f"GetSecretValue of {CURRENT} failed ({code})", "")
        try:
            s.value = parse(reply.get("SecretString"))
        except SecretFormatError as exc:
            rotate = f" (or regcred rotate {s.secret_name})" if s.cfg is not None else ""
            return Check(
                SECRET_SHAPE,
                False,
                f"{CURRENT} is unusable: {exc}",
                f'store JSON {{"username": ..., "password": ...}} as AWSCURRENT{rotate}',
            )
        token = f", token {s.value.token_id}" if s.value.token_id else ""
        expiry = f", expires {s.value.expires_at.isoformat()}" if s.value.expires_at else ""
        return Check(
            SECRET_SHAPE,
            True,
            f"{CURRENT} (version {reply.get('VersionId', '?')}{token}{expiry}) has a username and password",
        )

    # -- 5. the execution role may read the secret --------------------------------------------------

    def execution_role(self) -> Check:
        s = self.s
        assert s.secret_arn is not None
        role = s.role
        if not role:
            return Check(
                EXECUTION_ROLE,
                False,
                "the job has no execution role: private registry authentication needs one",
                f"set executionRoleArn in the job definition to a role allowed {GET_SECRET_VALUE} on "
                f"{s.secret_arn}",
            )
        failures: list[str] = []
        actions: list[str] = []
        unknowns: list[str] = []
        passes: list[str] = []
        role_missing = False

        def verdict(action: str, resource: str, policy: Callable[[], str | None]) -> None:
            nonlocal role_missing
            decision, note = self._simulate(role, action, resource)
            if decision is None:
                unknowns.append(f"{action} not checked: {note}")
            elif decision == "allowed":
                passes.append(f"{action} on {resource}")
            elif decision == _NO_SUCH_ROLE:
                role_missing = True
                failures.append(f"execution role {role} does not exist")
                actions.append("create the role or fix executionRoleArn in the job definition")
            elif decision == "implicitDeny" and self._policy_names(policy, role):
                unknowns.append(
                    f"{action} on {resource}: no identity policy of the role allows it, but the "
                    "resource policy names the role (IAM cannot simulate resource policies for roles): "
                    "review it"
                )
            else:
                failures.append(f"{action} on {resource} is {decision}{note}")
                if decision == "explicitDeny":
                    actions.append(f"remove the Deny of {action} on {resource} that applies to {role}")
                else:
                    actions.append(f"allow {action} on {resource} in a policy of {role}")

        verdict(GET_SECRET_VALUE, s.secret_arn, self._secret_policy)
        if not role_missing:
            key = self._customer_key()
            if key.arn is not None:
                key_arn = key.arn
                verdict(KMS_DECRYPT, key_arn, lambda: self._key_policy(key_arn))
            elif key.unknown:
                unknowns.append(f"{KMS_DECRYPT} not checked: {key.note}")
            else:
                passes.append(key.note)
        if failures:
            return Check(EXECUTION_ROLE, False, f"{role}: " + "; ".join(failures), "; ".join(actions))
        if unknowns:
            return Check(EXECUTION_ROLE, None, f"{role}: " + "; ".join(unknowns + passes), "")
        return Check(EXECUTION_ROLE, True, f"{role} may {'; '.join(passes)}")

    def _simulate(self, role: str, action: str, resource: str) -> tuple[str | None, str]:
        """(EvalDecision, note); (None, why) when the simulation could not run."""
        try:
            reply = self.iam.simulate_principal_policy(
                PolicySourceArn=role, ActionNames=[action], ResourceArns=[resource]
            )
        except _AWS_ERRORS as exc:
            code = _code(exc)
            if code == "NoSuchEntity":
                return _NO_SUCH_ROLE, ""
            return None, f"iam:SimulatePrincipalPolicy failed ({code})"
        results = reply.get("EvaluationResults") or []
        if not results:
            return None, "iam:SimulatePrincipalPolicy returned no result"
        result = results[0]
        decision = str(result.get("EvalDecision") or "")
        note = ""
        organizations = result.get("OrganizationsDecisionDetail") or {}
        if organizations.get("AllowedByOrganizations") is False:
            note = " (an organization SCP denies it)"
        boundary = result.get("PermissionsBoundaryDecisionDetail") or {}
        if boundary.get("AllowedByPermissionsBoundary") is False:
            note += " (the role's permissions boundary denies it)"
        return decision or None, note or ("" if decision else "no EvalDecision")

    def _secret_policy(self) -> str | None:
        try:
            return self.sm.get_resource_policy(SecretId=self.s.secret_arn).get("ResourcePolicy") or None
        except _AWS_ERRORS:
            return None

    def _key_policy(self, key_arn: str) -> str | None:
        if self.kms is None:
            return None
        try:
            return self.kms.get_key_policy(KeyId=key_arn, PolicyName="default").get("Policy") or None
        except _AWS_ERRORS:
            return None

    @staticmethod
    def _policy_names(policy: Callable[[], str | None], role: str) -> bool:
        text = policy()
        return bool(text) and role in str(text)

    def _customer_key(self) -> _Key:
        """The KMS key whose kms:Decrypt the role needs, if the secret uses a customer managed key."""
        s = self.s
        key = s.kms_key_id
        aws_managed = _Key(
            None, f"the secret uses the AWS managed key ({_AWS_MANAGED_SM_KEY}): no {KMS_DECRYPT} needed"
        )
        if not key or key == _AWS_MANAGED_SM_KEY or key.endswith(":" + _AWS_MANAGED_SM_KEY):
            return aws_managed
        if self.kms is not None:
            try:
                meta = self.kms.describe_key(KeyId=key)["KeyMetadata"]
            except _AWS_ERRORS as exc:
                return _Key(None, f"kms:DescribeKey of {key} failed ({_code(exc)})", unknown=True)
            return aws_managed if meta.get("KeyManager") == "AWS" else _Key(str(meta["Arn"]))
        if key.startswith("arn:") and ":key/" in key:
            return _Key(key)
        if "alias/" in key:
            return _Key(None, f"the key alias {key} cannot be resolved without a KMS client", unknown=True)
        parts = _arn_parts(s.secret_arn or "")
        if parts is None:
            return _Key(None, f"cannot build the ARN of key {key}", unknown=True)
        partition, region, account = parts
        return _Key(f"arn:{partition}:kms:{region}:{account}:key/{key}")

    # -- 6/7/8. the registry -------------------------------------------------------------------------

    def credentials(self) -> Check:
        s = self.s
        assert s.value is not None and s.image is not None and s.secret_name is not None
        try:
            ref = ImageRef.parse(s.image)
        except RegcredError as exc:
            s.pull_skipped = "the job's image reference is invalid"
            return Check(CREDENTIALS, False, str(exc), "fix the image in the job definition")
        route = self._route(ref)
        if isinstance(route, Check):
            s.pull_skipped = "the credential is not sent to that registry"
            return route
        if s.value.registry and not route.names_registry(s.value.registry):
            s.pull_skipped = "the secret's value names another registry"
            return Check(
                CREDENTIALS,
                False,
                f"the secret's value names registry {s.value.registry}, not {route.registry_name}",
                "fix the value's registry field, or the regcred:registry tag",
            )
        if not route.names_registry(ref.registry):
            s.pull_skipped = "the image is not on the secret's registry"
            return Check(
                CREDENTIALS,
                False,
                f"the image's registry {ref.registry} differs from the secret's {route.registry_name}",
                f"point repositoryCredentials at a secret for {ref.registry}, or fix the image",
            )
        try:
            result = self.check(route, Credential(s.value.username, s.value.password), [str(ref)])
        except RegcredError as exc:
            # An untrusted token realm (the credential was not sent), an unsafe redirect, ...
            s.pull_skipped = "the registry could not be checked"
            return Check(CREDENTIALS, None, f"{ref.registry}: {exc}", "")
        pull = result.images[0]
        s.pull = pull
        where = f"{CURRENT} at {ref.registry}"
        if pull.status is PullStatus.OPEN:
            return Check(CREDENTIALS, None, f"{where}: not exercised ({pull.detail})", "")
        if pull.status in (PullStatus.OK, PullStatus.NOT_FOUND):
            return Check(CREDENTIALS, True, f"{where}: accepted ({pull.detail})")
        if pull.status is PullStatus.CREDENTIALS_REJECTED:
            action = (
                f"rotate: regcred rotate {s.secret_name}"
                if s.cfg is not None
                else f"store a working credential in {s.secret_name} (or onboard it with regcred onboard)"
            )
            return Check(CREDENTIALS, False, f"{where}: rejected ({pull.detail})", action)
        if pull.status is PullStatus.NO_ACCESS:
            return Check(
                CREDENTIALS,
                False,
                f"{where}: authenticated but may not pull {ref.repository} ({pull.detail}); on Docker Hub "
                "a repository that does not exist looks the same",
                f"grant the token pull on {ref.repository}",
            )
        return Check(CREDENTIALS, None, f"{where}: could not check ({pull.status.value}: {pull.detail})", "")

    def _route(self, ref: ImageRef) -> Routing | Check:
        """Where this secret's credential may be sent: its routing when managed; for a secret regcred does not
        manage, only a provider's own registry or one the deployment allows, never a host that only the job
        definition names."""
        s = self.s
        if s.cfg is not None:
            try:
                return routing.resolve(providers.spec_for(s.cfg.provider), s.cfg, self.deployment)
            except RegcredError as exc:
                return Check(
                    CREDENTIALS, False, f"the secret's regcred tags do not hold: {exc}", "fix the tags"
                )
        for spec in providers.SPECS.values():
            if spec.default_registry is not None and spec.default_registry.netloc == ref.registry:
                return routing.Routing(spec.name, spec.default_registry, None, spec.realms)
        for origin in self.deployment.registry_hosts:
            if origin.netloc == ref.registry:
                return routing.Routing("unmanaged", origin, None, self.deployment.registry_hosts)
        return Check(
            CREDENTIALS,
            None,
            f"not checked: {ref.registry} is neither a provider's registry nor allowed by the deployment "
            f"({routing.ALLOWED_REGISTRY_HOSTS_ENV}), and the secret is not managed by regcred, so its "
            "credential is not sent there",
            "",
        )

    def image(self) -> Check:
        s = self.s
        pull = s.pull
        assert pull is not None
        if pull.status in (PullStatus.OK, PullStatus.OPEN):
            return Check(IMAGE, True, f"{pull.image}: {pull.detail}")
        if pull.status is PullStatus.NOT_FOUND:
            return Check(
                IMAGE,
                False,
                f"{pull.image}: {pull.detail}",
                f"push {pull.image}, or fix the tag/digest in the job definition",
            )
        return Check(IMAGE, None, f"not looked up: the registry answered {pull.status.value} first", "")

    def rate_limit(self) -> Check:
        # Docker Hub sends RateLimit-Limit / RateLimit-Remaining ("100;w=21600") on manifest GET and HEAD,
        # and a HEAD does not count as a pull ("Docker Hub usage and rate limits",
        # docs.docker.com/docker-hub/usage/pulls/ "View pull rate and limit": "using GET emulates a real
        # pull and will count towards the limit; using HEAD will not"). No headers means the pull does
        # not count towards a limit or the registry is not Docker Hub.
        pull = self.s.pull
        assert pull is not None
        remaining = parse_ratelimit(pull.ratelimit_remaining)
        limit = parse_ratelimit(pull.ratelimit_limit)
        advice = (
            "wait for the window to pass, pull with an account that has a paid Docker subscription, "
            "or mirror the image (e.g. an ECR pull-through cache)"
        )
        if remaining is None:
            if pull.status is PullStatus.RATE_LIMITED:
                return Check(RATE_LIMIT, False, f"{pull.image}: {pull.detail}", advice)
            if pull.status not in (PullStatus.OK, PullStatus.OPEN, PullStatus.NOT_FOUND):
                return Check(
                    RATE_LIMIT, None, f"no manifest answer to read headroom from ({pull.status.value})", ""
                )
            return Check(
                RATE_LIMIT,
                None,
                "the registry sent no RateLimit headers (not Docker Hub, or these pulls are not limited)",
                "",
            )
        window = remaining[1] if remaining[1] is not None else (limit[1] if limit else None)
        of = f" of {limit[0]}" if limit else ""
        text = f"{remaining[0]}{of} pulls left in {_window(window)} (per the manifest HEAD, which is free)"
        if remaining[0] == 0 or pull.status is PullStatus.RATE_LIMITED:
            return Check(RATE_LIMIT, False, text, advice)
        return Check(RATE_LIMIT, True, text)


def diagnose_job(
    job_id: str,
    *,
    batch: Any,
    sm: Any,
    iam: Any,
    kms: Any | None = None,
    check: PullChecker | None = None,
    deployment: Deployment | None = None,
) -> list[Check]:
    """Run the checklist for one Batch job; always returns one Check per name in CHECK_NAMES, in order."""
    deployment = deployment if deployment is not None else Deployment.from_env()
    if check is None:
        check = _registry_check(deployment)
    state = _State(job_id)
    d = _Diagnosis(state, batch=batch, sm=sm, iam=iam, kms=kms, check=check, deployment=deployment)
    out: list[Check] = []

    def run(name: str, step: Callable[[], Check], blocked: str | None) -> None:
        if blocked is not None:
            out.append(Check(name, None, f"skipped: {blocked}", ""))
            return
        try:
            out.append(step())
        except _AWS_ERRORS as exc:
            out.append(Check(name, None, f"could not check ({_code(exc)})", ""))
        except RegcredError as exc:
            out.append(Check(name, None, f"could not check: {exc}", ""))
        except Exception as exc:  # never crash, never echo an unknown exception's text
            out.append(Check(name, None, f"could not check (unexpected {type(exc).__name__})", ""))

    def secret_blocker() -> str | None:
        if state.job is None:
            return "the job could not be read"
        if state.parameter is None:
            return "the job names no secret"
        if state.secret_arn is None:
            return "the secret could not be described"
        return None

    run(JOB, d.job, None)
    run(SECRET_NAMED, d.secret_named, None if state.job is not None else "the job could not be read")
    run(SECRET_EXISTS, d.secret_exists, None if state.parameter else secret_blocker())
    run(SECRET_SHAPE, d.secret_shape, secret_blocker())
    run(EXECUTION_ROLE, d.execution_role, secret_blocker())
    blocked = secret_blocker()
    if blocked is None and state.value is None:
        blocked = f"{CURRENT} could not be read as a username and password"
    if blocked is None and state.image is None:
        blocked = "the job names no image"
    if blocked is not None:
        state.pull_skipped = blocked
    run(CREDENTIALS, d.credentials, blocked)
    run(IMAGE, d.image, None if state.pull is not None else state.pull_skipped)
    run(RATE_LIMIT, d.rate_limit, None if state.pull is not None else state.pull_skipped)
    return out


def _registry_check(deployment: Deployment) -> PullChecker:
    def check(route: Routing, credential: Credential, images: Sequence[str]) -> PullCheck:
        from .http.transport import Transport
        from .registry.client import RegistryClient

        with Transport(local_origins=deployment.local_origins) as transport:
            client = RegistryClient(route.registry, trusted_realms=route.realms, transport=transport)
            return client.check_pull(credential, images)

    return check


# -- CLI ----------------------------------------------------------------------------------------------


def _label(ok: bool | None) -> str:
    return "PASS" if ok is True else "FAIL" if ok is False else "SKIP"


def _exit_code(checks: Sequence[Check]) -> int:
    if not checks or checks[0].name != JOB or checks[0].ok is not True:
        return EXIT_NO_JOB
    return EXIT_FAIL if any(c.ok is False for c in checks) else EXIT_OK


def render_text(checks: Sequence[Check]) -> str:
    """``PASS name: detail`` lines, `` — action`` appended where there is one."""
    lines = []
    for c in checks:
        line = f"{_label(c.ok)} {c.name}: {c.detail}"
        if c.action:
            line += f" — {c.action}"
        lines.append(line)
    return "\n".join(lines)


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Diagnose a Batch job's image pull; exit 0 when nothing failed, 1 when a check failed, 2 when the
    job could not be read."""
    checks = diagnose_job(
        args.job_id,
        batch=aws.client("batch"),
        sm=aws.client("secretsmanager"),
        iam=aws.client("iam"),
        kms=aws.client("kms"),
    )
    code = _exit_code(checks)
    if args.json:
        report = {
            "job_id": args.job_id,
            "checks": [asdict(c) for c in checks],
            "ok": not any(c.ok is False for c in checks),
        }
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        sys.stdout.write(render_text(checks) + "\n")
    return code


def add_diagnose_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``diagnose JOB_ID [--json]``."""
    parser = sub.add_parser(
        "diagnose",
        help="read-only checklist of a Batch job's image pull (exit 0 ok / 1 failed / 2 no job)",
    )
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    parser.set_defaults(func=cmd_diagnose)
