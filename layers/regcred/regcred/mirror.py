"""The ECR pull-through cache mirror of a managed secret: AWSCURRENT's credential, as ECR reads it.

An Amazon ECR pull-through cache rule for an upstream registry that needs authentication (Docker Hub, Azure
Container Registry, GitHub Container Registry, GitLab Container Registry, Chainguard; ECR Public, the
Kubernetes registry and Quay need none) names a Secrets Manager secret (``credentialArn``) whose name begins
with ``ecr-pullthroughcache/``, in the rule's account and Region, encrypted with the AWS managed key
``aws/secretsmanager`` (ECR does not support a customer managed key for it). Its value is a JSON object of
two keys, ``username`` and ``accessToken`` (the console procedure's two key/value rows). Sources, the Amazon
ECR User Guide: "Sync an upstream registry with an Amazon ECR private registry"
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html), "Creating a pull through
cache rule in Amazon ECR" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-rule.html)
and "Storing your upstream repository credentials in an AWS Secrets Manager secret"
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-secret.html); the ECR API
reference of CreatePullThroughCacheRule gives ``credentialArn``'s pattern,
``^arn:aws:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\\-pullthroughcache\\/[a-zA-Z0-9\\/_+=.@-]+$``
(https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreatePullThroughCacheRule.html).

A managed secret tagged ``regcred:ecr-mirror=<name>`` has that secret written with its AWSCURRENT credential
whenever it changes (promotion by finishSecret or ``regcred import``, onboarding) and before the previous
credential is revoked (`Rotator.retire_previous`), so that a pull-through cache rule for the same upstream
uses the rotated token and is never left with a revoked one. `sync_mirror` writes only when all of this
holds, else it raises `ConfigurationError` saying what to set, and writes nothing:

- the name begins with ``ecr-pullthroughcache/`` (the tag is checked by `regcred.config`);
- the mirror exists, is not the managed secret itself, nor a managed or an admin secret;
- it carries ``regcred:mirror-of=<the managed secret's name>``: the two-sided binding (like an admin
  secret's ``regcred:admin-for``), which the functions' IAM condition also requires.

It reads the mirror's AWSCURRENT first and writes a new version only when ``username`` or ``accessToken``
differ, so a repeated call changes nothing. The mirror's value is untrusted (anyone with PutSecretValue on it
may have written anything): it is parsed with bounds, and any value that is not the expected object is
replaced, never quoted. No value ever reaches a log line or an error message.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import redact, safejson
from .aws import ACCESS_DENIED_CODES, aws_error_code
from .config import ADMIN_MARK, ECR_MIRROR, ECR_MIRROR_PREFIX, MANAGED, MIRROR_OF
from .config import _mirror as _mirror_tag
from .errors import ConfigurationError, RegcredError, RotationError
from .observability import logger
from .secret import MAX_FIELD, MAX_SECRET_BYTES, SecretValue
from .store import CURRENT, SecretAccessDenied, SecretNotFound, SecretState, SecretStore

if TYPE_CHECKING:
    from .rotation_rules import StepContext

__all__ = [
    "MirrorError",
    "MirrorResult",
    "MirrorStale",
    "MirrorStatus",
    "after_promotion",
    "check_binding",
    "check_mirror_name",
    "create_mirror",
    "ensure_mirror",
    "holds_current",
    "key_note",
    "mirror_problem",
    "mirror_string",
    "plan_mirror",
    "sync_mirror",
    "sync_to",
]

# The two keys ECR reads from a pull-through cache secret.
USERNAME_KEY = "username"
TOKEN_KEY = "accessToken"  # noqa: S105 - a JSON key


class MirrorError(RegcredError):
    """The mirror could not be read or written (an AWS error other than a refusal); the message names the
    AWS error code and what to check, never a value."""


class MirrorStale(RotationError):
    """AWSCURRENT changed but its ECR mirror does not hold it yet: the message says what to fix; a retry of
    the step (or ``regcred onboard NAME --resume``) writes it."""


class MirrorStatus(enum.StrEnum):
    """What `sync_mirror` did."""

    NOT_CONFIGURED = "not_configured"  # the secret has no regcred:ecr-mirror tag
    IN_SYNC = "in_sync"  # the mirror already held AWSCURRENT's username and accessToken
    WRITTEN = "written"  # a new mirror version was written
    WOULD_WRITE = "would_write"  # a dry run: the binding holds, the mirror is stale


@dataclass(frozen=True)
class MirrorResult:
    """The outcome of `sync_mirror`: the mirror's name, what was done, the version written (if any), and
    whether the value replaced was not a pull-through cache credential at all (not JSON, too large...)."""

    mirror: str | None
    status: MirrorStatus
    version_id: str | None = None
    replaced_unreadable: bool = False

    @property
    def holds_current(self) -> bool:
        """The mirror holds AWSCURRENT now (or there is no mirror)."""
        return self.status in (MirrorStatus.NOT_CONFIGURED, MirrorStatus.IN_SYNC, MirrorStatus.WRITTEN)


def check_mirror_name(text: str, secret_name: str) -> str:
    """The ``regcred:ecr-mirror`` value's grammar (`regcred.config`): a name beginning with
    ``ecr-pullthroughcache/``; ConfigurationError otherwise."""
    name = _mirror_tag(text, secret_name)
    if name is None or name == ECR_MIRROR_PREFIX:
        # credentialArn's pattern needs a name after the prefix.
        raise ConfigurationError(
            f"secret {secret_name}: the {ECR_MIRROR} tag must name a secret beginning with "
            f"{ECR_MIRROR_PREFIX}, such as {ECR_MIRROR_PREFIX}docker-hub"
        )
    return name


def mirror_string(value: SecretValue) -> str:
    """The mirror's value for ``value``: exactly the two keys ECR reads."""
    return json.dumps({USERNAME_KEY: value.username, TOKEN_KEY: value.password}, separators=(",", ":"))


def _tag_hint(mirror: str, secret_name: str) -> str:
    return (
        f"tag it {MIRROR_OF}={secret_name} (aws secretsmanager tag-resource --secret-id {mirror} --tags "
        f"Key={MIRROR_OF},Value={secret_name})"
    )


def check_binding(
    store: SecretStore, mirror: str, secret_name: str, *, secret_arn: str | None = None
) -> SecretState | None:
    """The mirror's state once it is proven to be ``secret_name``'s mirror; None when it does not exist.
    ConfigurationError, naming the tag to set, when it is not bound to ``secret_name`` or must not be
    written (the managed secret itself, a managed or an admin secret, scheduled for deletion)."""
    if not mirror.startswith(ECR_MIRROR_PREFIX) or mirror == ECR_MIRROR_PREFIX:
        raise ConfigurationError(
            f"secret {secret_name}: ECR mirror {mirror!r} does not begin with {ECR_MIRROR_PREFIX} (the only "
            "secrets an ECR pull-through cache rule reads); nothing was written"
        )
    if mirror == secret_name:
        raise ConfigurationError(
            f"secret {secret_name}: its {ECR_MIRROR} tag names the secret itself; name another "
            f"{ECR_MIRROR_PREFIX}... secret; nothing was written"
        )
    try:
        state = store.describe(mirror)
    except SecretNotFound:
        return None
    except SecretAccessDenied:
        raise ConfigurationError(
            f"secret {secret_name}: not allowed to describe ECR mirror {mirror}. regcred's functions may "
            f"reach only {ECR_MIRROR_PREFIX} secrets tagged {MIRROR_OF}: {_tag_hint(mirror, secret_name)}; "
            "nothing was written"
        ) from None
    except RegcredError:
        raise
    except Exception as exc:
        raise MirrorError(
            f"secret {secret_name}: ECR mirror {mirror} could not be described ({aws_error_code(exc)}); "
            "nothing was written"
        ) from None
    if state.name != mirror:
        # Secrets Manager resolves a SecretId that is not an exact name as a partial ARN: not this one.
        raise ConfigurationError(
            f"secret {secret_name}: ECR mirror {mirror} resolved to another secret; name it exactly; "
            "nothing was written"
        )
    if (secret_arn is not None and state.arn == secret_arn) or state.name == secret_name:
        raise ConfigurationError(
            f"secret {secret_name}: its {ECR_MIRROR} tag names the secret itself; name another "
            f"{ECR_MIRROR_PREFIX}... secret; nothing was written"
        )
    if state.deleted:
        raise ConfigurationError(
            f"secret {secret_name}: ECR mirror {mirror} is scheduled for deletion: restore it (aws "
            f"secretsmanager restore-secret --secret-id {mirror}) or name another; nothing was written"
        )
    if state.managed or state.tags.get(ADMIN_MARK, "").lower() == "true":
        what = (
            f"a managed secret ({MANAGED}=true)" if state.managed else f"an admin secret ({ADMIN_MARK}=true)"
        )
        raise ConfigurationError(
            f"secret {secret_name}: ECR mirror {mirror} is {what}, whose value regcred must not replace; "
            f"name a secret that only mirrors {secret_name}; nothing was written"
        )
    bound = state.tags.get(MIRROR_OF)
    if bound != secret_name:
        found = "has no such tag" if bound is None else "names another secret"
        raise ConfigurationError(
            f"secret {secret_name}: ECR mirror {mirror} is not bound to it ({MIRROR_OF} {found}): "
            f"{_tag_hint(mirror, secret_name)}; nothing was written"
        )
    return state


def key_note(mirror: SecretState) -> str | None:
    """A warning when the mirror is encrypted with a key other than ``aws/secretsmanager``, which ECR
    needs; None otherwise."""
    key = mirror.kms_key_id
    if not key or key.endswith("alias/aws/secretsmanager"):
        return None
    return (
        f"ECR mirror {mirror.name} is encrypted with KMS key {key}: ECR pull-through cache rules read only "
        "secrets encrypted with aws/secretsmanager (aws secretsmanager update-secret --secret-id "
        f"{mirror.name} --kms-key-id alias/aws/secretsmanager)"
    )


def create_mirror(store: SecretStore, mirror: str, secret_name: str, value: SecretValue) -> str | None:
    """CreateSecret of the mirror, bound to ``secret_name`` and holding ``value``'s credential, encrypted with
    the default ``aws/secretsmanager`` key (ECR does not support another). Its ARN, or None when a secret of
    that name exists already (the caller then checks its binding)."""
    check_mirror_name(mirror, secret_name)
    try:
        return store.create_string(
            mirror,
            mirror_string(value),
            tags={MIRROR_OF: secret_name},
            description=f"ECR pull-through cache credential: mirrors {secret_name}, written by regcred",
        )
    except Exception as exc:
        raise MirrorError(
            f"secret {secret_name}: ECR mirror {mirror} could not be created ({aws_error_code(exc)})"
        ) from None


def _holds(reply: dict[str, Any], value: SecretValue) -> tuple[bool, bool]:
    """(the mirror's value holds ``value``'s credential, the value was readable as a mirror's). Every field
    is checked for type and size before it is compared; nothing of it is kept or shown."""
    text = reply.get("SecretString")
    if not isinstance(text, str):
        return False, False  # SecretBinary, or no value
    try:
        raw = safejson.loads(text, max_bytes=MAX_SECRET_BYTES)
    except ValueError:
        return False, False
    if not isinstance(raw, dict):
        return False, False
    username, token = raw.get(USERNAME_KEY), raw.get(TOKEN_KEY)
    if not isinstance(username, str) or not isinstance(token, str) or len(token) > MAX_FIELD:
        return False, False
    redact.remember(token)  # an old token: never to be shown either
    return username == value.username and token == value.password, True


def _target(state_or_ctx: SecretState | StepContext) -> tuple[SecretState, str | None]:
    state = state_or_ctx if isinstance(state_or_ctx, SecretState) else state_or_ctx.state
    if isinstance(state_or_ctx, SecretState):
        # Only the mirror tag decides whether there is work; the whole configuration is read (and checked)
        # when there is.
        mirror = state.config.ecr_mirror if state.tags.get(ECR_MIRROR, "").strip() else None
    else:
        mirror = state_or_ctx.cfg.ecr_mirror
    return state, mirror


def sync_mirror(
    store: SecretStore,
    state_or_cfg: SecretState | StepContext,
    current_value: SecretValue,
    *,
    dry_run: bool = False,
) -> MirrorResult:
    """Make the managed secret's ECR mirror hold ``current_value``'s username and token (its AWSCURRENT).
    ``state_or_cfg`` is the managed secret's state (or a step's context). Writes only when the binding holds
    and the mirror differs; ``dry_run`` checks and writes nothing. ConfigurationError (what to set) when the
    mirror may not be written, MirrorError when AWS failed a call."""
    state, mirror = _target(state_or_cfg)
    if mirror is None:
        return MirrorResult(None, MirrorStatus.NOT_CONFIGURED)
    return sync_to(store, mirror, state.name, current_value, secret_arn=state.arn, dry_run=dry_run)


def sync_to(
    store: SecretStore,
    mirror: str,
    secret_name: str,
    value: SecretValue,
    *,
    secret_arn: str | None = None,
    dry_run: bool = False,
) -> MirrorResult:
    """`sync_mirror` with the mirror named: ``mirror`` holds ``value``'s credential once its binding to
    ``secret_name`` is proven (it must exist: `create_mirror` makes one)."""
    target = check_binding(store, mirror, secret_name, secret_arn=secret_arn)
    if target is None:
        raise ConfigurationError(
            f"secret {secret_name}: ECR mirror {mirror} does not exist: create it with `regcred onboard "
            f"{secret_name} --resume --ecr-mirror {mirror}` (a secret tagged {MIRROR_OF}={secret_name}); "
            "nothing was written"
        )
    try:
        reply = store.read_reply(target.arn, stage=CURRENT)
    except SecretNotFound:
        reply = {}  # created without a value: nothing to compare
    except Exception as exc:
        raise MirrorError(_unreadable(secret_name, mirror, exc)) from None
    holds, readable = _holds(reply, value)
    if holds:
        return MirrorResult(mirror, MirrorStatus.IN_SYNC)
    replaced = bool(reply) and not readable
    if dry_run:
        return MirrorResult(mirror, MirrorStatus.WOULD_WRITE, replaced_unreadable=replaced)
    try:
        version = store.put_current_string(target.arn, mirror_string(value))
    except Exception as exc:
        raise MirrorError(_unwritable(secret_name, mirror, exc)) from None
    logger.info(
        "ECR mirror written",
        extra={"mirror": mirror, "version_id": version, "replaced_unreadable": replaced},
    )
    return MirrorResult(mirror, MirrorStatus.WRITTEN, version, replaced)


def _unreadable(secret_name: str, mirror: str, exc: BaseException) -> str:
    code = aws_error_code(exc)
    hint = (
        f"regcred's functions may read only {ECR_MIRROR_PREFIX} secrets tagged {MIRROR_OF}, encrypted with "
        "aws/secretsmanager"
        if code in ACCESS_DENIED_CODES or code in ("DecryptionFailure", "KMSAccessDeniedException")
        else "try again"
    )
    return (
        f"secret {secret_name}: ECR mirror {mirror} could not be read ({code}: {hint}); nothing was written"
    )


def _unwritable(secret_name: str, mirror: str, exc: BaseException) -> str:
    code = aws_error_code(exc)
    hint = (
        f"regcred's functions may write only {ECR_MIRROR_PREFIX} secrets tagged {MIRROR_OF}"
        if code in ACCESS_DENIED_CODES
        else "try again"
    )
    return f"secret {secret_name}: ECR mirror {mirror} could not be written ({code}: {hint})"


# -- where regcred calls it --------------------------------------------------------------------------------


def after_promotion(
    store: SecretStore, state: SecretState, version: str, value: SecretValue | None = None
) -> MirrorResult:
    """After ``version`` became AWSCURRENT (finishSecret, its retry, ``regcred import``): the secret's ECR
    mirror holds its credential. ``value`` is the version's value when the caller has it (else it is read
    only when there is a mirror). MirrorStale, saying that the version is promoted and what to fix, when the
    mirror cannot be written."""
    if not state.tags.get(ECR_MIRROR, "").strip():
        return MirrorResult(None, MirrorStatus.NOT_CONFIGURED)
    try:
        if value is None:
            value = store.read(state.arn, stage=CURRENT, version_id=version)
        return sync_mirror(store, state, value)
    except RegcredError as exc:
        raise MirrorStale(
            f"version {version} of {state.name} is AWSCURRENT, but its ECR pull-through cache mirror was not "
            f"written: {exc}. Once that is fixed, `regcred onboard {state.name} --resume` writes it (so does "
            "the rotate function's retry of finishSecret)"
        ) from None


def holds_current(store: SecretStore, ctx: StepContext, current: SecretValue, *, dry_run: bool) -> bool:
    """Before a previous credential is revoked (`Rotator.retire_previous`): the ECR mirror holds AWSCURRENT,
    written now when it did not (in a dry run: it could be), or a pull-through cache rule would be left with a
    revoked token. False, logged with the reason, when it cannot."""
    try:
        sync_mirror(store, ctx, current, dry_run=dry_run)
    except RegcredError as exc:
        logger.warning(
            "previous credential kept: the ECR mirror does not hold AWSCURRENT", extra={"reason": str(exc)}
        )
        return False
    return True


def mirror_problem(store: SecretStore, secret_id: str) -> str | None:
    """Why the secret's ECR mirror cannot be made to hold AWSCURRENT (checked, nothing written), or None when
    it can (or there is none): what ``regcred retire`` shows for ``RetireResult.MIRROR_STALE``."""
    try:
        state = store.describe(secret_id)
        sync_mirror(store, state, store.read(state.arn, stage=CURRENT), dry_run=True)
    except RegcredError as exc:
        return str(exc)
    return None


def plan_mirror(
    store: SecretStore, secret_name: str, mirror: str | None, value: SecretValue | None
) -> tuple[list[str], str | None]:
    """A dry run of onboarding: lines about the mirror (its binding checked) and what a run would do
    ("would_create" or a `MirrorStatus` value; None without a mirror). ``value`` is AWSCURRENT's, or None for
    a secret that has no credential yet."""
    if mirror is None:
        return [], None
    target = check_binding(store, mirror, secret_name)
    if target is None:
        return [
            f"would create ECR mirror {mirror} tagged {MIRROR_OF}={secret_name} (key aws/secretsmanager), "
            "holding the credential's username and accessToken"
        ], "would_create"
    lines = [f"checked: ECR mirror {mirror} is bound to {secret_name} ({MIRROR_OF})"]
    lines += [f"note: {note}"] if (note := key_note(target)) else []
    status = (
        MirrorStatus.WOULD_WRITE
        if value is None
        else sync_to(store, mirror, secret_name, value, dry_run=True).status
    )
    if status is MirrorStatus.IN_SYNC:
        return [*lines, f"ECR mirror {mirror} holds AWSCURRENT already"], status.value
    what = "the new credential" if value is None else "AWSCURRENT"
    return [*lines, f"would write {what} to ECR mirror {mirror}"], status.value


def ensure_mirror(
    store: SecretStore,
    mirror: str,
    secret_name: str,
    secret_arn: str,
    value: SecretValue,
    *,
    kms_key_id: str | None = None,
) -> tuple[str, list[str]]:
    """Onboarding, once the secret holds ``value``: the mirror holds it, created and bound when it does not
    exist (with aws/secretsmanager, the only key ECR reads: never the secret's ``kms_key_id``), else written
    once its binding is proven (only when it differs). Returns what was done ("created" or a
    `MirrorStatus` value) and notes for the operator."""
    target = check_binding(store, mirror, secret_name, secret_arn=secret_arn)
    if target is None and create_mirror(store, mirror, secret_name, value) is not None:
        notes = (
            [f"ECR mirror {mirror} uses the aws/secretsmanager key, not --kms-key-id: ECR reads no other"]
            if kms_key_id
            else []
        )
        return "created", notes
    notes = [note] if target is not None and (note := key_note(target)) else []
    # It exists (or someone created it meanwhile: its binding is checked again).
    return sync_to(store, mirror, secret_name, value, secret_arn=secret_arn).status.value, notes
