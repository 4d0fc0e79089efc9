"""The Secrets Manager rotation protocol for registry credentials, as a state machine over staging labels.

Secrets Manager calls the four steps in order with one ClientRequestToken; any step may run twice,
concurrently, or after a crash anywhere inside it, so each one re-reads the labels and does only
what is still missing:

- ``createSecret`` mints a credential at the vendor, labelled with the token, and stores it as
  AWSPENDING. A retry finds what an earlier try minted under the same label and revokes it (the
  vendor shows a token's secret only once, so it cannot be reused) before minting again.
- ``setSecret`` has nothing to do for the overlap strategy: the new credential is live at the vendor.
- ``testSecret`` proves the pending credential can pull every probe image through the registry's
  ``/v2/`` flow. On a clear failure it revokes the pending credential and removes AWSPENDING, so
  AWSCURRENT is never touched; when the registry could not be reached it keeps AWSPENDING for a retry.
- ``finishSecret`` revokes the credential that is about to lose AWSPREVIOUS (at most two live
  credentials per secret), moves AWSCURRENT, and removes AWSPENDING.

The guards are those of the AWS rotation templates: rotation enabled, the token is a version of
the secret, nothing to do if it is AWSCURRENT already, refuse if it is not AWSPENDING.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from . import config, providers
from .config import SecretConfig
from .errors import (
    ConfigurationError,
    RotationError,
    RotationRetryable,
    RotationTestFailed,
    SecretFormatError,
)
from .observability import logger
from .providers import Provider
from .secret import SecretValue, parse, render

if TYPE_CHECKING:
    from .registry import Credential, PullCheck

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
LABEL_MAX = 100  # Docker Hub's token_label limit, the tightest of the vendors


class Step(enum.Enum):
    """The four rotation steps, in the order Secrets Manager calls them."""

    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"

    @classmethod
    def parse(cls, text: str) -> Step:
        """Accept ``createSecret`` and ``create_secret`` spellings."""
        key = text.replace("_", "").lower()
        for step in cls:
            if step.value.lower() == key:
                return step
        raise RotationError(
            f"unknown rotation step {text!r}; expected one of createSecret, setSecret, "
            "testSecret, finishSecret"
        )


class PullChecker(Protocol):
    """Proves a credential can pull images from a registry."""

    def __call__(
        self, registry: str, realm_hosts: frozenset[str], credential: Credential, images: Sequence[str]
    ) -> PullCheck: ...


ProviderFactory = Callable[[SecretConfig, SecretValue], Provider]


def registry_check(
    registry: str, realm_hosts: frozenset[str], credential: Credential, images: Sequence[str]
) -> PullCheck:
    """The real check: the registry's /v2/ auth flow and a manifest HEAD per image."""
    from .registry import RegistryClient  # requests loads on the first registry call

    return RegistryClient(registry, realm_hosts=realm_hosts).check_pull(credential, images)


# -- pure decisions ----------------------------------------------------------------------------


def stage_holder(versions: Mapping[str, Sequence[str]], stage: str) -> str | None:
    """The version id that carries ``stage``, if any."""
    for version_id, stages in versions.items():
        if stage in stages:
            return version_id
    return None


class Guard(enum.Enum):
    """What the guard says about a step."""

    PROCEED = "proceed"
    ALREADY_CURRENT = "already_current"


def guard(
    versions: Mapping[str, Sequence[str]],
    token: str,
    step: Step,
    *,
    rotation_enabled: bool,
    require_rotation_enabled: bool = True,
) -> Guard:
    """The AWS templates' guard, plus one allowance: a createSecret whose token has no version yet
    may create it (the in-process driver has no RotateSecret to register the token first)."""
    if require_rotation_enabled and not rotation_enabled:
        raise RotationError(
            "rotation is not enabled on this secret; enable it (regcred onboard "
            "--rotation-lambda ARN) or drive it with regcred rotate --local"
        )
    stages = versions.get(token)
    if stages is None:
        if step is Step.CREATE:
            return Guard.PROCEED
        raise RotationError(f"version {token} of the secret does not exist; start a new rotation")
    if CURRENT in stages:
        return Guard.ALREADY_CURRENT
    if PENDING not in stages:
        raise RotationError(
            f"version {token} is not AWSPENDING (its earlier test failed or another rotation replaced "
            "it); start a new rotation"
        )
    return Guard.PROCEED


def label_for(secret_name: str, token: str) -> str:
    """The vendor label of the credential a rotation mints: unique by token, readable by name."""
    tail = f" {token}"
    head = f"regcred {secret_name}"
    return (head[: max(0, LABEL_MAX - len(tail))] + tail)[-LABEL_MAX:]


def failure_is_retryable(check: PullCheck) -> bool:
    """A check that only failed to reach or use the registry says nothing against the credential."""
    from .registry import PullStatus

    blocking = {PullStatus.CREDENTIALS_REJECTED, PullStatus.NO_ACCESS, PullStatus.NOT_FOUND}
    return not any(image.status in blocking for image in check.images) and check.could_not_check


def summarize(check: PullCheck) -> str:
    """One line per failing image, without any secret."""
    from .registry import PullStatus

    return "; ".join(
        f"{image.image}: {image.status.value} ({image.detail})"
        for image in check.images
        if image.status is not PullStatus.OK
    )


def matches_secret(credentials_parameter: str, arn: str, name: str) -> bool:
    """Whether a job definition's ``credentialsParameter`` names this secret (ARN, partial ARN or name)."""
    if credentials_parameter in (arn, name):
        return True
    # A partial ARN lacks the 7-character "-AbCdEf" suffix Secrets Manager appends to full ARNs.
    return arn.startswith(credentials_parameter + "-") and len(arn) - len(credentials_parameter) == 7


def _job_definition_images(definition: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(image, credentialsParameter) pairs of a Batch job definition, multi-node ranges included."""
    containers = [definition.get("containerProperties") or {}]
    for node_range in (definition.get("nodeProperties") or {}).get("nodeRangeProperties") or []:
        containers.append(node_range.get("container") or {})
    for container in containers:
        image = container.get("image")
        parameter = (container.get("repositoryCredentials") or {}).get("credentialsParameter")
        if image and parameter:
            yield image, parameter


def read_version(sm: Any, secret_id: str, *, stage: str, version_id: str | None = None) -> SecretValue:
    """A version's value, always read with an explicit stage (emulators return stale values otherwise)."""
    kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": stage}
    if version_id:
        kwargs["VersionId"] = version_id
    return parse(sm.get_secret_value(**kwargs).get("SecretString"))


# -- the state machine ------------------------------------------------------------------------


@dataclass(frozen=True)
class StepOutcome:
    """What a step did, for logs and metrics."""

    step: Step
    outcome: str
    provider: str
    rotation_seconds: float | None = None  # createSecret to promotion, set by finishSecret

    def __str__(self) -> str:
        return self.outcome


@dataclass(frozen=True)
class SecretState:
    """What DescribeSecret says, read once per step."""

    arn: str
    name: str
    tags: dict[str, str]
    versions: dict[str, list[str]]
    rotation_enabled: bool

    @property
    def config(self) -> SecretConfig:
        return SecretConfig.from_tags(self.tags, self.name)


class Rotator:
    """Runs rotation steps and retirement against Secrets Manager, a provider and a registry."""

    def __init__(
        self,
        sm: Any,
        *,
        batch: Any | None = None,
        provider_factory: ProviderFactory | None = None,
        check: PullChecker = registry_check,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        require_rotation_enabled: bool = True,
    ) -> None:
        self.sm = sm
        self.batch = batch
        self._provider_factory = provider_factory or (lambda cfg, value: providers.build(cfg, sm, value))
        self._check = check
        self._now = now
        self.require_rotation_enabled = require_rotation_enabled

    # -- reads ---------------------------------------------------------------------------------

    def describe(self, secret_id: str) -> SecretState:
        """DescribeSecret, with the labels and tags as plain dicts."""
        meta = self.sm.describe_secret(SecretId=secret_id)
        return SecretState(
            arn=meta["ARN"],
            name=meta["Name"],
            tags=config.tags_to_dict(meta.get("Tags")),
            versions={k: list(v) for k, v in (meta.get("VersionIdsToStages") or {}).items()},
            rotation_enabled=bool(meta.get("RotationEnabled")),
        )

    def read(self, secret_id: str, *, stage: str, version_id: str | None = None) -> SecretValue:
        """A version's value (see :func:`read_version`)."""
        return read_version(self.sm, secret_id, stage=stage, version_id=version_id)

    def probe_images(self, state: SecretState, registry: str) -> list[str]:
        """Images that prove a credential: the ``regcred:images`` tag, else those of ACTIVE Batch job
        definitions whose repositoryCredentials name this secret."""
        from .registry import ImageRef

        cfg = state.config
        images: list[str] = list(cfg.images)
        if not images and self.batch is not None:
            paginator = self.batch.get_paginator("describe_job_definitions")
            for page in paginator.paginate(status="ACTIVE"):
                for definition in page.get("jobDefinitions", []):
                    for image, parameter in _job_definition_images(definition):
                        if matches_secret(parameter, state.arn, state.name) and image not in images:
                            images.append(image)
        on_registry = [i for i in images if ImageRef.parse(i, default_registry=registry).registry == registry]
        if not on_registry:
            raise ConfigurationError(
                f"no probe image for secret {state.name} on {registry}: tag it "
                f"{config.IMAGES}='repo:tag ...' or reference it from an ACTIVE Batch job definition"
            )
        return on_registry

    def _provider(self, state: SecretState, value: SecretValue) -> Provider:
        return self._provider_factory(state.config, value)

    def _realm_hosts(self, state: SecretState, provider: Provider | None) -> frozenset[str]:
        hosts = providers.realm_hosts_for(state.config)
        return hosts | provider.realm_hosts if provider is not None else hosts

    # -- the protocol --------------------------------------------------------------------------

    def run(self, secret_id: str, token: str, step: str | Step) -> StepOutcome:
        """Run one step and say what it did."""
        step = step if isinstance(step, Step) else Step.parse(step)
        state = self.describe(secret_id)
        provider_name = state.tags.get(config.PROVIDER, "unknown")
        verdict = guard(
            state.versions,
            token,
            step,
            rotation_enabled=state.rotation_enabled,
            require_rotation_enabled=self.require_rotation_enabled,
        )
        if verdict is Guard.ALREADY_CURRENT:
            if step is Step.FINISH:
                self._finish_cleanup(state, token)
            logger.info("rotation step skipped: version already current", extra={"step": step.value})
            return StepOutcome(step, "already_current", provider_name)
        if step is Step.FINISH:
            pending = self.read(state.arn, stage=PENDING, version_id=token)
            outcome = self.finish_secret(state, token)
            took = (self._now() - pending.issued_at).total_seconds() if pending.issued_at else None
            return StepOutcome(step, outcome, provider_name, took)
        handler = {
            Step.CREATE: self.create_secret,
            Step.SET: self.set_secret,
            Step.TEST: self.test_secret,
        }[step]
        return StepOutcome(step, handler(state, token), provider_name)

    def create_secret(self, state: SecretState, token: str) -> str:
        """Mint a credential labelled with the token and store it as AWSPENDING.

        Credentials that a crashed or concurrent try minted under the same label are not revoked
        here, where a racer may be about to store one of them, but in testSecret, once the stored
        one is known."""
        if self._pending_stored(state, token):
            return "exists"
        current = self.read(state.arn, stage=CURRENT)
        provider = self._provider(state, current)
        self.probe_images(state, provider.registry)  # refuse before minting anything
        now = self._now()
        issued = provider.issue(label_for(state.name, token), now + timedelta(seconds=state.config.ttl_s))
        pending = current.with_credential(
            username=issued.username,
            password=issued.password,
            token_id=issued.token_id,
            expires_at=issued.expires_at,
            issued_at=now,
        )
        # A concurrent createSecret may have stored its credential first: ours must not stay alive.
        # Secrets Manager refuses a second value for one token; the re-read covers emulators that do not.
        lost = self._pending_stored(state, token)
        if not lost:
            try:
                self.sm.put_secret_value(
                    SecretId=state.arn,
                    ClientRequestToken=token,
                    SecretString=render(pending),
                    VersionStages=[PENDING],
                )
            except self.sm.exceptions.ResourceExistsException:
                lost = True
            except Exception:
                provider.revoke(issued.token_id)
                raise
        if lost:
            provider.revoke(issued.token_id)
            return "lost_race"
        self._revoke_stale_pending(
            state, token, provider, keep={issued.token_id} | self._promoted_token_ids(state)
        )
        logger.info("pending credential created", extra={"token_id": issued.token_id})
        return "created"

    def _pending_stored(self, state: SecretState, token: str) -> bool:
        """Whether the token's version already holds a credential (not just RotateSecret's placeholder)."""
        try:
            self.read(state.arn, stage=PENDING, version_id=token)
        except (self.sm.exceptions.ResourceNotFoundException, SecretFormatError):
            return False
        return True

    def _revoke_stale_pending(
        self, state: SecretState, token: str, provider: Provider, keep: set[str]
    ) -> None:
        """The AWSPENDING label just moved to our version: revoke the credential it left behind."""
        stale = stage_holder(state.versions, PENDING)
        if stale is None or stale == token:
            return
        try:
            # The stale version lost AWSPENDING to ours, so it is read by its id alone.
            stale_value = parse(
                self.sm.get_secret_value(SecretId=state.arn, VersionId=stale).get("SecretString")
            )
        except (SecretFormatError, self.sm.exceptions.ResourceNotFoundException):
            return  # an empty placeholder version: nothing was minted for it
        if stale_value.token_id and stale_value.token_id not in keep:
            provider.revoke(stale_value.token_id)

    def set_secret(self, state: SecretState, token: str) -> str:
        """Overlap strategy: the new credential is live at the vendor already."""
        return "nothing_to_set"

    def test_secret(self, state: SecretState, token: str) -> str:
        """Prove the pending credential pulls every probe image, or revoke it."""
        from .registry import Credential

        pending = self.read(state.arn, stage=PENDING, version_id=token)
        provider = self._provider(state, pending)
        registry = pending.registry or provider.registry
        images = self.probe_images(state, registry)
        result = self._check(
            registry,
            self._realm_hosts(state, provider),
            Credential(pending.username, pending.password),
            images,
        )
        # RotateSecret(RotateImmediately=False) tests the configuration with a pending copy of
        # AWSCURRENT: a credential that AWSCURRENT or AWSPREVIOUS holds is never revoked here.
        promoted = self._promoted_token_ids(state)
        if result.ok:
            for extra in provider.find_by_label(label_for(state.name, token)):
                if extra.token_id != pending.token_id and extra.token_id not in promoted:
                    provider.revoke(extra.token_id)  # minted by a concurrent createSecret that lost
            return "pulls"
        if failure_is_retryable(result):
            raise RotationRetryable(
                f"could not check the pending credential, kept for a retry: {summarize(result)}"
            )
        if pending.token_id in promoted:
            raise RotationTestFailed(
                f"the pending version holds the credential of a promoted version, and it cannot pull; "
                f"nothing was revoked: {summarize(result)}"
            )
        if pending.token_id:
            provider.revoke(pending.token_id)
        self.sm.update_secret_version_stage(
            SecretId=state.arn, VersionStage=PENDING, RemoveFromVersionId=token
        )
        raise RotationTestFailed(
            f"the new credential cannot pull, so it was revoked and AWSCURRENT is unchanged: "
            f"{summarize(result)}"
        )

    def _promoted_token_ids(self, state: SecretState) -> set[str]:
        """Vendor ids of the credentials AWSCURRENT and AWSPREVIOUS hold."""
        ids: set[str] = set()
        for stage in (CURRENT, PREVIOUS):
            version_id = stage_holder(state.versions, stage)
            if version_id is not None:
                token_id = self.read(state.arn, stage=stage, version_id=version_id).token_id
                if token_id:
                    ids.add(token_id)
        return ids

    def finish_secret(self, state: SecretState, token: str) -> str:
        """Revoke the credential leaving AWSPREVIOUS, promote the pending one, clear AWSPENDING."""
        current_id = stage_holder(state.versions, CURRENT)
        previous_id = stage_holder(state.versions, PREVIOUS)
        pending = self.read(state.arn, stage=PENDING, version_id=token)
        if previous_id and previous_id not in (token, current_id):
            old = self.read(state.arn, stage=PREVIOUS, version_id=previous_id)
            current = self.read(state.arn, stage=CURRENT) if current_id else None
            live = {pending.token_id, current.token_id if current else None}
            if old.token_id and old.token_id not in live:
                self._provider(state, pending).revoke(old.token_id)
        move: dict[str, str] = {"MoveToVersionId": token}
        if current_id:
            move["RemoveFromVersionId"] = current_id
        self.sm.update_secret_version_stage(SecretId=state.arn, VersionStage=CURRENT, **move)
        after = self.describe(state.arn)
        if current_id and PREVIOUS not in after.versions.get(current_id, []):
            # Secrets Manager moves AWSPREVIOUS by itself; some emulators do not.
            move = {"MoveToVersionId": current_id}
            if previous_id and PREVIOUS in after.versions.get(previous_id, []):
                move["RemoveFromVersionId"] = previous_id
            self.sm.update_secret_version_stage(SecretId=state.arn, VersionStage=PREVIOUS, **move)
            after = self.describe(state.arn)
        self._finish_cleanup(after, token)
        logger.info("rotation finished", extra={"token_id": pending.token_id})
        return "promoted"

    def _finish_cleanup(self, state: SecretState, token: str) -> None:
        """After promotion: AWSPENDING gone, promotion time recorded (both idempotent)."""
        if PENDING in state.versions.get(token, []):
            self.sm.update_secret_version_stage(
                SecretId=state.arn, VersionStage=PENDING, RemoveFromVersionId=token
            )
        if state.tags.get(config.PROMOTED_VERSION) != token:
            self.sm.tag_resource(
                SecretId=state.arn,
                Tags=[
                    {"Key": config.PROMOTED_AT, "Value": self._now().strftime("%Y-%m-%dT%H:%M:%SZ")},
                    {"Key": config.PROMOTED_VERSION, "Value": token},
                ],
            )

    # -- retirement -----------------------------------------------------------------------------

    def retire_previous(self, secret_id: str) -> str:
        """Revoke the AWSPREVIOUS credential once its grace period is over and AWSCURRENT pulls."""
        from .registry import Credential

        state = self.describe(secret_id)
        cfg = state.config
        previous_id = stage_holder(state.versions, PREVIOUS)
        if previous_id is None:
            return "no_previous"
        previous = self.read(state.arn, stage=PREVIOUS, version_id=previous_id)
        current = self.read(state.arn, stage=CURRENT)
        if not previous.token_id:
            return "previous_not_minted_by_regcred"
        if previous.token_id == current.token_id or previous.token_id == cfg.retired_token_id:
            return "already_retired"
        promoted = cfg.promoted_at or current.issued_at
        if promoted is not None and self._now() < promoted + timedelta(seconds=cfg.grace_s):
            return "in_grace"
        provider = self._provider(state, current)
        registry = current.registry or provider.registry
        result = self._check(
            registry,
            self._realm_hosts(state, provider),
            Credential(current.username, current.password),
            self.probe_images(state, registry),
        )
        if not result.ok:
            # The previous credential may be the way back: keep it until AWSCURRENT is proven.
            logger.warning(
                "previous credential kept: AWSCURRENT does not pull", extra={"detail": summarize(result)}
            )
            return "current_unproven"
        provider.revoke(previous.token_id)
        self.sm.tag_resource(
            SecretId=state.arn, Tags=[{"Key": config.RETIRED_TOKEN, "Value": previous.token_id}]
        )
        logger.info("previous credential retired", extra={"token_id": previous.token_id})
        return "retired"
