"""Can an execution role read and decrypt a secret? One answer, shared by `regcred diagnose` and remediation.

The ECS agent reads a job's ``repositoryCredentials`` with the execution role: it needs
``secretsmanager:GetSecretValue`` on the secret and, when the secret is encrypted with a customer managed
KMS key, ``kms:Decrypt`` on that key. The answer comes from ``iam:SimulatePrincipalPolicy``, which evaluates
the role's identity policies, permissions boundary and SCPs; it cannot evaluate a secret's or a key's
resource policy for a role, so an implicit deny is reported as unknown when that policy names the role.

The key a secret names (``KmsKeyId``) may be an alias, an alias ARN, a key id or a key ARN. It is resolved
with ``kms:DescribeKey``, which also tells an AWS managed key (``alias/aws/secretsmanager``: no kms:Decrypt
needed in the role's policies) from a customer managed one. Without a KMS client, only a key ARN or a key id
can be used; an alias is reported as unknown. docs/ARCHITECTURE.md, "Execution role", has the flow.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .aws import aws_error_code
from .store import SecretState, SecretStore

__all__ = [
    "AWS_MANAGED_SM_KEY",
    "GET_SECRET_VALUE",
    "KMS_DECRYPT",
    "Decision",
    "KeyInfo",
    "Permission",
    "RoleAccess",
    "arn_parts",
    "check_role",
    "resolve_key",
]

GET_SECRET_VALUE = "secretsmanager:GetSecretValue"  # noqa: S105 - an IAM action
KMS_DECRYPT = "kms:Decrypt"
AWS_MANAGED_SM_KEY = "alias/aws/secretsmanager"


class Decision(enum.StrEnum):
    """What the simulation says about one action."""

    ALLOWED = "allowed"
    DENIED = "denied"  # no policy allows it (IAM's implicitDeny)
    EXPLICIT_DENY = "explicit_deny"
    NO_ROLE = "no_role"  # the role does not exist
    UNKNOWN = "unknown"  # the simulation could not run, or a resource policy may allow it


@dataclass(frozen=True)
class Permission:
    """One action on one resource, and the decision; ``note`` says why when it is not plain."""

    action: str
    resource: str
    decision: Decision
    note: str = ""


@dataclass(frozen=True)
class KeyInfo:
    """The customer managed key whose kms:Decrypt the role needs; ``arn`` None when none is needed (``note``
    says why) or it could not be resolved (``unknown``)."""

    arn: str | None
    note: str = ""
    unknown: bool = False


@dataclass(frozen=True)
class RoleAccess:
    """Whether ``role`` may read (and decrypt) a secret."""

    role: str
    secret: Permission
    key: Permission | None  # None: no kms:Decrypt to check (see key_info)
    key_info: KeyInfo

    @property
    def permissions(self) -> tuple[Permission, ...]:
        return (self.secret,) if self.key is None else (self.secret, self.key)

    @property
    def role_missing(self) -> bool:
        return self.secret.decision is Decision.NO_ROLE

    @property
    def denied(self) -> tuple[Permission, ...]:
        """The permissions the role lacks for sure."""
        return tuple(p for p in self.permissions if p.decision in (Decision.DENIED, Decision.EXPLICIT_DENY))

    @property
    def unknown(self) -> bool:
        """Some permission could not be decided (and none is denied)."""
        return not self.denied and (
            self.key_info.unknown or any(p.decision is Decision.UNKNOWN for p in self.permissions)
        )

    @property
    def ok(self) -> bool:
        return not self.role_missing and not self.denied and not self.unknown


def arn_parts(arn: str) -> tuple[str, str, str] | None:
    """(partition, region, account) of an ARN; None when it is not one."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    return parts[1], parts[3], parts[4]


def resolve_key(kms: Any | None, key_id: str | None, secret_arn: str) -> KeyInfo:
    """The customer managed key a secret is encrypted with (see the module docstring)."""
    aws_managed = KeyInfo(
        None, f"the secret uses the AWS managed key ({AWS_MANAGED_SM_KEY}): no {KMS_DECRYPT} needed"
    )
    if not key_id or key_id == AWS_MANAGED_SM_KEY or key_id.endswith(":" + AWS_MANAGED_SM_KEY):
        return aws_managed
    if kms is not None:
        try:
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except Exception as exc:
            return KeyInfo(None, f"kms:DescribeKey of {key_id} failed ({aws_error_code(exc)})", unknown=True)
        return aws_managed if meta.get("KeyManager") == "AWS" else KeyInfo(str(meta["Arn"]))
    if key_id.startswith("arn:") and ":key/" in key_id:
        return KeyInfo(key_id)
    if "alias/" in key_id:
        return KeyInfo(None, f"the key alias {key_id} cannot be resolved without a KMS client", unknown=True)
    parts = arn_parts(secret_arn)
    if parts is None:
        return KeyInfo(None, f"cannot build the ARN of key {key_id}", unknown=True)
    partition, region, account = parts
    return KeyInfo(f"arn:{partition}:kms:{region}:{account}:key/{key_id}")


def _simulate(
    iam: Any, role: str, action: str, resource: str, policy: Callable[[], str | None]
) -> Permission:
    try:
        reply = iam.simulate_principal_policy(
            PolicySourceArn=role, ActionNames=[action], ResourceArns=[resource]
        )
    except Exception as exc:  # moto answers NotImplementedError or HTTP 500; any failure means "unknown"
        code = aws_error_code(exc)
        if code == "NoSuchEntity":
            return Permission(action, resource, Decision.NO_ROLE, f"execution role {role} does not exist")
        return Permission(action, resource, Decision.UNKNOWN, f"iam:SimulatePrincipalPolicy failed ({code})")
    results = reply.get("EvaluationResults") or []
    if not results:
        return Permission(
            action, resource, Decision.UNKNOWN, "iam:SimulatePrincipalPolicy returned no result"
        )
    result = results[0]
    evaluated = str(result.get("EvalDecision") or "")
    notes = []
    if (result.get("OrganizationsDecisionDetail") or {}).get("AllowedByOrganizations") is False:
        notes.append("an organization SCP denies it")
    if (result.get("PermissionsBoundaryDecisionDetail") or {}).get("AllowedByPermissionsBoundary") is False:
        notes.append("the role's permissions boundary denies it")
    note = "; ".join(notes)
    if evaluated == "allowed":
        return Permission(action, resource, Decision.ALLOWED, note)
    if evaluated == "explicitDeny":
        return Permission(action, resource, Decision.EXPLICIT_DENY, note)
    if evaluated == "implicitDeny":
        text = policy()
        if text and role in text:
            return Permission(
                action,
                resource,
                Decision.UNKNOWN,
                "no identity policy of the role allows it, but the resource policy names the role (IAM "
                "cannot "
                "simulate resource policies for roles): review it",
            )
        return Permission(action, resource, Decision.DENIED, note)
    return Permission(action, resource, Decision.UNKNOWN, f"unexpected EvalDecision {evaluated or 'none'}")


def check_role(
    role: str, state: SecretState, *, iam: Any, store: SecretStore, kms: Any | None = None
) -> RoleAccess:
    """Whether ``role`` may read ``state``'s secret and decrypt it (see the module docstring)."""
    secret = _simulate(iam, role, GET_SECRET_VALUE, state.arn, lambda: store.resource_policy(state.arn))
    if secret.decision is Decision.NO_ROLE:
        return RoleAccess(role, secret, None, KeyInfo(None, "not checked: the role does not exist"))
    info = resolve_key(kms, state.kms_key_id, state.arn)
    key: Permission | None = None
    if info.arn is not None:
        key_arn = info.arn

        def key_policy() -> str | None:
            if kms is None:
                return None
            try:
                text = kms.get_key_policy(KeyId=key_arn, PolicyName="default").get("Policy")
            except Exception:
                return None
            return str(text) if text else None

        key = _simulate(iam, role, KMS_DECRYPT, key_arn, key_policy)
    return RoleAccess(role, secret, key, info)
