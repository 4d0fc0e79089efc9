"""The one place regcred reads and writes Secrets Manager (docs/ARCHITECTURE.md, "The secret store").

Rotation, remediation, diagnose, the sweep and the CLI go through `SecretStore`; none of them calls boto3 on
a secret itself. A secret is described once into a `SecretState` (tags, staging labels, managed or not); a
version is read by stage (and id); the rotation's writes are `put_pending`, `move_stage`, `remove_stage` and
`write_bookkeeping` (only the tags regcred keeps for itself, which are the only ones the functions' IAM
role may write); an ECR pull-through cache mirror's is `put_current_string` (`regcred.mirror`).

Emulator allowances: the local stack runs moto, which differs from Secrets Manager in three ways that the
code below allows for. Each is harmless against AWS:

- `STALE_READ_WITHOUT_STAGE`: a GetSecretValue by VersionId alone may return another version's value on
  some emulators, so every read names a stage (`read`); a version that has lost its label is read by id
  alone, and only where the code says why (`read_unstaged`).
- `OVERWRITE_ON_PUT`: Secrets Manager refuses a second PutSecretValue for one ClientRequestToken with
  ResourceExistsException; some emulators overwrite instead, so `pending_stored` is read before a put.
- `NO_AUTOMATIC_PREVIOUS`: Secrets Manager moves AWSPREVIOUS to the version that loses AWSCURRENT by
  itself; some emulators do not, so `promote` moves it when it did not move.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .aws import ACCESS_DENIED_CODES, aws_error_code
from .config import BOOKKEEPING_TAGS, MANAGED, SecretConfig, tags_to_dict
from .errors import RegcredError, SecretFormatError
from .secret import SecretValue, parse, render

__all__ = [
    "CURRENT",
    "EMULATOR_ALLOWANCES",
    "PENDING",
    "PREVIOUS",
    "STAGES",
    "SecretAccessDenied",
    "SecretNotFound",
    "SecretState",
    "SecretStore",
    "stage_holder",
]

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
STAGES = (CURRENT, PENDING, PREVIOUS)

STALE_READ_WITHOUT_STAGE = "reads name a stage"
OVERWRITE_ON_PUT = "read before put"
NO_AUTOMATIC_PREVIOUS = "move AWSPREVIOUS when Secrets Manager did not"
EMULATOR_ALLOWANCES = (STALE_READ_WITHOUT_STAGE, OVERWRITE_ON_PUT, NO_AUTOMATIC_PREVIOUS)

# Secrets Manager's ListSecrets pages hold at most 100 secrets.
_LIST_PAGE = 100


class SecretNotFound(RegcredError):
    """The secret (or the version asked for) does not exist."""


class SecretAccessDenied(RegcredError):
    """This principal may not read the secret (for the functions: it is not tagged regcred:managed=true)."""


def stage_holder(versions: Mapping[str, Sequence[str]], stage: str) -> str | None:
    """The version id that carries ``stage``, if any."""
    for version_id, stages in versions.items():
        if stage in stages:
            return version_id
    return None


@dataclass(frozen=True)
class SecretState:
    """What DescribeSecret says about a secret, read once per decision."""

    arn: str
    name: str
    tags: dict[str, str]
    versions: dict[str, list[str]]
    rotation_enabled: bool
    kms_key_id: str | None = None
    deleted: bool = False
    rotation_lambda_arn: str | None = None
    last_rotated: Any = None

    @property
    def managed(self) -> bool:
        """Tagged ``regcred:managed=true``."""
        return self.tags.get(MANAGED, "").lower() == "true"

    @property
    def config(self) -> SecretConfig:
        """The secret's configuration, from its tags (ConfigurationError when they do not hold)."""
        return SecretConfig.from_tags(self.tags, self.name)

    def holder(self, stage: str) -> str | None:
        """The version id carrying ``stage``."""
        return stage_holder(self.versions, stage)

    @classmethod
    def from_describe(cls, meta: Mapping[str, Any]) -> SecretState:
        """A state from a DescribeSecret (or ListSecrets entry) response."""
        return cls(
            arn=str(meta["ARN"]),
            name=str(meta.get("Name") or meta["ARN"]),
            tags=tags_to_dict(meta.get("Tags")),
            # DescribeSecret says VersionIdsToStages; a ListSecrets entry says SecretVersionsToStages.
            versions={
                k: list(v)
                for k, v in (
                    meta.get("VersionIdsToStages") or meta.get("SecretVersionsToStages") or {}
                ).items()
            },
            rotation_enabled=bool(meta.get("RotationEnabled")),
            kms_key_id=meta.get("KmsKeyId") or None,
            deleted=bool(meta.get("DeletedDate")),
            rotation_lambda_arn=meta.get("RotationLambdaARN") or None,
            last_rotated=meta.get("LastRotatedDate"),
        )


class SecretStore:
    """Secrets Manager, as regcred uses it. ``sm`` is a boto3 client (or anything with its methods)."""

    def __init__(self, sm: Any) -> None:
        self.sm = sm

    @classmethod
    def of(cls, sm_or_store: Any) -> SecretStore:
        """``sm_or_store`` itself when it is a store, else a store on that client."""
        return sm_or_store if isinstance(sm_or_store, SecretStore) else cls(sm_or_store)

    @property
    def region(self) -> str | None:
        """The client's region, for messages."""
        return getattr(getattr(self.sm, "meta", None), "region_name", None)

    def _not_found(self, exc: BaseException) -> bool:
        return aws_error_code(exc) == "ResourceNotFoundException"

    # -- reads ---------------------------------------------------------------------------------

    def describe(self, secret_id: str) -> SecretState:
        """DescribeSecret. SecretNotFound / SecretAccessDenied for the two answers callers act on; any other
        AWS error stands."""
        try:
            meta = self.sm.describe_secret(SecretId=secret_id)
        except Exception as exc:
            code = aws_error_code(exc)
            if code == "ResourceNotFoundException":
                raise SecretNotFound(f"secret {secret_id} does not exist") from None
            if code in ACCESS_DENIED_CODES:
                raise SecretAccessDenied(f"not allowed to describe secret {secret_id} ({code})") from None
            raise
        return SecretState.from_describe(meta)

    def read_reply(self, secret_id: str, *, stage: str, version_id: str | None = None) -> dict[str, Any]:
        """GetSecretValue with an explicit stage (`STALE_READ_WITHOUT_STAGE`); the raw reply."""
        kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": stage}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            reply: dict[str, Any] = self.sm.get_secret_value(**kwargs)
        except Exception as exc:
            if self._not_found(exc):
                raise SecretNotFound(
                    f"secret {secret_id} has no {stage} version" + (f" {version_id}" if version_id else "")
                ) from None
            raise
        return reply

    def read(self, secret_id: str, *, stage: str, version_id: str | None = None) -> SecretValue:
        """A version's value, parsed (SecretFormatError when it is not regcred's JSON)."""
        return parse(self.read_reply(secret_id, stage=stage, version_id=version_id).get("SecretString"))

    def read_unstaged(self, secret_id: str, version_id: str) -> SecretValue | None:
        """A version read by id alone: one that just lost its label, or whose label ``state`` may show a step
        late. None for a version that holds no value regcred can read (RotateSecret's empty placeholder)."""
        try:
            reply = self.sm.get_secret_value(SecretId=secret_id, VersionId=version_id)
            return parse(reply.get("SecretString"))
        except SecretFormatError:
            return None
        except Exception as exc:
            if self._not_found(exc):
                return None
            raise

    def pending_stored(self, secret_id: str, token: str) -> bool:
        """Whether the token's version already holds a credential, not just RotateSecret's placeholder
        (`OVERWRITE_ON_PUT`)."""
        try:
            self.read(secret_id, stage=PENDING, version_id=token)
        except (SecretNotFound, SecretFormatError):
            return False
        return True

    def list_managed(self, *, page_size: int = _LIST_PAGE) -> Iterator[SecretState]:
        """Every secret tagged ``regcred:managed`` (any value: callers check ``managed``), page by page."""
        paginator = self.sm.get_paginator("list_secrets")
        pages = paginator.paginate(
            Filters=[{"Key": "tag-key", "Values": [MANAGED]}], PaginationConfig={"PageSize": page_size}
        )
        for page in pages:
            for meta in page.get("SecretList") or []:
                yield SecretState.from_describe(meta)

    def resource_policy(self, secret_id: str) -> str | None:
        """The secret's resource policy, None when it has none or it cannot be read."""
        try:
            return self.sm.get_resource_policy(SecretId=secret_id).get("ResourcePolicy") or None
        except Exception:
            return None

    # -- the rotation's writes -----------------------------------------------------------------

    def put_pending(self, secret_id: str, token: str, value: SecretValue) -> bool:
        """Store ``value`` as the token's AWSPENDING version; False when that version holds a value already
        (a concurrent createSecret won)."""
        try:
            self.sm.put_secret_value(
                SecretId=secret_id,
                ClientRequestToken=token,
                SecretString=render(value),
                VersionStages=[PENDING],
            )
        except Exception as exc:
            if aws_error_code(exc) == "ResourceExistsException":
                return False
            raise
        return True

    def move_stage(self, secret_id: str, stage: str, *, to: str, remove_from: str | None = None) -> None:
        """Move ``stage`` to version ``to`` (from ``remove_from``, which must hold it)."""
        kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": stage, "MoveToVersionId": to}
        if remove_from:
            kwargs["RemoveFromVersionId"] = remove_from
        self.sm.update_secret_version_stage(**kwargs)

    def remove_stage(self, secret_id: str, stage: str, version_id: str) -> None:
        """Take ``stage`` off ``version_id``."""
        self.sm.update_secret_version_stage(
            SecretId=secret_id, VersionStage=stage, RemoveFromVersionId=version_id
        )

    def promote(self, state: SecretState, token: str) -> SecretState:
        """AWSCURRENT to ``token``; AWSPREVIOUS to the version that held AWSCURRENT (`NO_AUTOMATIC_PREVIOUS`).
        Returns the state after the move."""
        current_id = state.holder(CURRENT)
        previous_id = state.holder(PREVIOUS)
        self.move_stage(state.arn, CURRENT, to=token, remove_from=current_id)
        after = self.describe(state.arn)
        if current_id and PREVIOUS not in after.versions.get(current_id, []):
            self.move_stage(
                state.arn,
                PREVIOUS,
                to=current_id,
                remove_from=previous_id
                if previous_id and PREVIOUS in after.versions.get(previous_id, [])
                else None,
            )
            after = self.describe(state.arn)
        return after

    def put_current_string(self, secret_id: str, secret_string: str) -> str | None:
        """PutSecretValue of ``secret_string`` as a new AWSCURRENT version of a secret that is not a managed
        one (an ECR mirror: `regcred.mirror`); returns the new version id."""
        reply = self.sm.put_secret_value(
            SecretId=secret_id, SecretString=secret_string, VersionStages=[CURRENT]
        )
        version = reply.get("VersionId")
        return str(version) if version else None

    def write_bookkeeping(self, secret_id: str, tags: Mapping[str, str]) -> None:
        """Write regcred's own bookkeeping tags (and no other: the functions may write only these)."""
        unknown = sorted(set(tags) - set(BOOKKEEPING_TAGS))
        if unknown:
            raise ValueError(f"not a bookkeeping tag: {', '.join(unknown)}")
        self.sm.tag_resource(SecretId=secret_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def start_rotation(self, secret_id: str) -> str | None:
        """RotateSecret now, with the configured rotation function; returns the new version id."""
        reply = self.sm.rotate_secret(SecretId=secret_id, RotateImmediately=True)
        version = reply.get("VersionId")
        return str(version) if version else None

    # -- the operator's writes (CLI) -----------------------------------------------------------

    def create(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str],
        description: str,
        kms_key_id: str | None = None,
    ) -> str | None:
        """CreateSecret with a first AWSCURRENT value; its ARN, or None when the name exists already."""
        return self.create_string(
            name, render(value), tags=tags, description=description, kms_key_id=kms_key_id
        )

    def create_string(
        self,
        name: str,
        secret_string: str,
        *,
        tags: Mapping[str, str],
        description: str,
        kms_key_id: str | None = None,
    ) -> str | None:
        """CreateSecret with ``secret_string`` as its first AWSCURRENT value (a value that is not a managed
        secret's, such as an ECR mirror's); its ARN, or None when the name exists already."""
        request: dict[str, Any] = {
            "Name": name,
            "Description": description,
            "SecretString": secret_string,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if kms_key_id:
            request["KmsKeyId"] = kms_key_id
        try:
            return str(self.sm.create_secret(**request)["ARN"])
        except Exception as exc:
            if aws_error_code(exc) == "ResourceExistsException":
                return None
            raise

    def tag(self, secret_id: str, tags: Mapping[str, str]) -> None:
        """Tag a secret (the operator's configuration tags, or an admin secret's binding)."""
        self.sm.tag_resource(SecretId=secret_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def enable_rotation(self, secret_id: str, lambda_arn: str, schedule: str) -> None:
        """Turn on rotation by ``lambda_arn`` on ``schedule``, without rotating now."""
        self.sm.rotate_secret(
            SecretId=secret_id,
            RotationLambdaARN=lambda_arn,
            RotationRules={"ScheduleExpression": schedule},
            RotateImmediately=False,
        )
