"""The Secrets Manager rotation protocol for registry credentials, as a state machine over staging labels.

Secrets Manager calls the four steps in order with one ClientRequestToken; any step may run twice,
concurrently, or after a crash anywhere inside it, so each one re-reads the labels and does only what is
still missing:

- ``createSecret`` refuses before minting anything when the configuration does not hold (routing, the
  admin secret's binding, probe images, a value naming another registry), revokes orphans that earlier
  rotations left (credentials labelled for this secret that no version holds), mints a credential labelled
  with the token and stores it as AWSPENDING. A mint whose outcome is unknown is never sent again: the
  credential is looked up by its label and revoked, and the step fails for a retry.
- ``setSecret`` has nothing to do for the overlap strategy: the new credential is live at the vendor.
- ``testSecret`` proves the pending credential pulls every probe image through the registry's ``/v2/``
  flow, and that the registry needed it (an image served without credentials proves nothing). On a clear
  failure it revokes the pending credential and every other one this rotation minted, and removes
  AWSPENDING, so AWSCURRENT is never touched; when the registry could not be reached it keeps AWSPENDING.
- ``finishSecret`` revokes the credential that is about to lose AWSPREVIOUS and any orphan (at most two
  live credentials per secret), moves AWSCURRENT, and removes AWSPENDING. Then, for a secret tagged
  ``regcred:ecr-mirror``, it writes the new credential to that ECR pull-through cache secret
  (`regcred.mirror`); when that fails the step fails after the promotion, and its retry (which finds the
  version AWSCURRENT already) writes the mirror again.

Every revocation goes through `regcred.revocation.revoke_minted`: only credentials whose vendor record is
labelled for this secret are revoked, whatever token id a version claims. The guards are those of the AWS
rotation templates: rotation enabled, the token is a version of the secret, nothing to do if it is
AWSCURRENT already, refuse if it is not AWSPENDING.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import labels, providers, routing
from .config import IMAGES, PROMOTED_AT, PROMOTED_VERSION, PROVIDER, RETIRED_TOKEN
from .errors import (
    ConfigurationError,
    MintOutcomeUnknown,
    RotationError,
    RotationRetryable,
    RotationTestFailed,
)
from .http.deadline import Deadline
from .mirror import MirrorResult, after_promotion, holds_current
from .observability import logger
from .providers import Provider
from .revocation import RevokeResult, orphans, revoke_minted
from .routing import Deployment, Routing, check_value_registry
from .secret import SecretValue
from .store import CURRENT, PENDING, PREVIOUS, STAGES, SecretState, SecretStore, stage_holder
from .timefmt import format_time

if TYPE_CHECKING:
    from .http.transport import Transport
    from .registry import Credential, PullCheck

from .rotation_rules import (
    STEP_SECONDS,
    Guard,
    Outcome,
    ProbeImages,
    PullChecker,
    RetireResult,
    Step,
    StepContext,
    StepOutcome,
    failure_is_retryable,
    guard,
    job_definition_images,
    matches_secret,
    select_images,
)

__all__ = [
    "CURRENT",
    "PENDING",
    "PREVIOUS",
    "STAGES",
    "Guard",
    "Outcome",
    "ProbeImages",
    "PullChecker",
    "RetireResult",
    "Rotator",
    "SecretState",
    "Step",
    "StepContext",
    "StepOutcome",
    "failure_is_retryable",
    "guard",
    "job_definition_images",
    "matches_secret",
    "stage_holder",
]

ProviderFactory = Callable[[StepContext], Provider]


class Rotator:
    """Runs rotation steps and retirement against Secrets Manager (through `SecretStore`), a provider and a
    registry. ``sm`` is a `SecretStore` or a boto3 Secrets Manager client."""

    def __init__(
        self,
        sm: Any,
        *,
        batch: Any | None = None,
        deployment: Deployment | None = None,
        provider_factory: ProviderFactory | None = None,
        check: PullChecker | None = None,
        transport: Transport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        require_rotation_enabled: bool = True,
        step_seconds: float = STEP_SECONDS,
    ) -> None:
        self.store = SecretStore.of(sm)
        self.batch = batch
        self.deployment = deployment if deployment is not None else Deployment.from_env()
        self._transport = transport
        self._provider_factory = provider_factory or self.build_provider
        self._check = check or self._registry_check
        self._now = now
        self.require_rotation_enabled = require_rotation_enabled
        self.step_seconds = step_seconds

    # -- collaborators ------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The outbound transport, built on first use (urllib3 loads with the first outbound call)."""
        if self._transport is None:
            from .http.transport import Transport

            self._transport = Transport(local_origins=self.deployment.local_origins)
        return self._transport

    def build_provider(self, ctx: StepContext) -> Provider:
        """The secret's provider, with the admin credential its binding allows (ConfigurationError
        otherwise). A provider that cannot mint is refused here, in one line that names the command."""
        if not ctx.spec.can_mint:
            raise ConfigurationError(
                f"secret {ctx.state.name} uses the {ctx.spec.name} provider, whose credentials regcred "
                "cannot "
                f"mint: run `regcred import {ctx.state.name}` with a new token"
            )
        provider: Provider = self.vendor(ctx)
        return provider

    def vendor(self, ctx: StepContext) -> Any:
        """The secret's provider object as its plug-in builds it (a `Provider`, or a `TokenInspector` for a
        provider that cannot mint), with the admin credential its binding allows."""
        admin = None
        if ctx.spec.needs_admin:
            if not ctx.cfg.admin_secret:
                raise ConfigurationError(
                    f"secret {ctx.state.name} has no regcred:admin-secret tag: name the secret that holds "
                    "the "
                    f"{ctx.spec.name} admin identity"
                )
            admin = providers.read_admin_credential(
                self.store, ctx.cfg.admin_secret, secret_name=ctx.state.name, spec=ctx.spec
            )
        return providers.build(
            ctx.cfg,
            ctx.route,
            admin,
            transport=self.transport,
            deadline=ctx.deadline,
            secret_name=ctx.state.name,
        )

    def _registry_check(
        self,
        route: Routing,
        credential: Credential,
        images: Sequence[str],
        *,
        deadline: Deadline | None = None,
        prove: bool = False,
    ) -> PullCheck:
        from .registry.client import RegistryClient

        client = RegistryClient(route.registry, trusted_realms=route.realms, transport=self.transport)
        return client.check_pull(credential, images, deadline=deadline, prove=prove)

    def check(
        self, ctx: StepContext, value: SecretValue, images: Sequence[str], *, prove: bool = False
    ) -> PullCheck:
        """Whether a version's credential pulls ``images`` on the secret's configured registry."""
        from .registry.credential import Credential

        check_value_registry(value.registry, ctx.route, secret=ctx.state.name)
        return self._check(
            ctx.route, Credential(value.username, value.password), images, deadline=ctx.deadline, prove=prove
        )

    # -- reads ---------------------------------------------------------------------------------

    def describe(self, secret_id: str) -> SecretState:
        """The secret's state (`SecretStore.describe`)."""
        return self.store.describe(secret_id)

    def context(self, state: SecretState, deadline: Deadline | None = None) -> StepContext:
        """Configuration, provider spec and routing of a secret (ConfigurationError when they do not hold)."""
        cfg = state.config
        route = routing.route_of(cfg, self.deployment)
        return StepContext(
            state, cfg, providers.spec_for(cfg.provider), route, deadline or Deadline(self.step_seconds)
        )

    def read(self, secret_id: str, *, stage: str, version_id: str | None = None) -> SecretValue:
        """A version's value (`SecretStore.read`)."""
        return self.store.read(secret_id, stage=stage, version_id=version_id)

    def probe_images(self, ctx: StepContext) -> ProbeImages:
        """Images that prove a credential: the ``regcred:images`` tag, else those of ACTIVE Batch job
        definitions whose repositoryCredentials name this secret. Only images on the secret's configured
        registry count; an unparseable image is reported and skipped, never a reason to stop."""
        state, route = ctx.state, ctx.route
        candidates: list[tuple[str, str | None]] = [(i, route.registry_name) for i in ctx.cfg.images]
        if not candidates and self.batch is not None:
            paginator = self.batch.get_paginator("describe_job_definitions")
            for page in paginator.paginate(status="ACTIVE"):
                for definition in page.get("jobDefinitions", []):
                    for image, parameter in job_definition_images(definition):
                        if matches_secret(parameter, state.arn, state.name):
                            candidates.append((image, None))  # job definitions: Docker's default registry
        probe = select_images(candidates, route)
        images, skipped = list(probe.images), list(probe.skipped)
        if skipped:
            logger.warning("probe images skipped", extra={"skipped": skipped[:20]})
        if not images:
            raise ConfigurationError(
                f"no probe image for secret {state.name} on {route.registry_name}: tag it "
                f"{IMAGES}='repo:tag ...' "
                "or reference it from an ACTIVE Batch job definition"
                + (f" ({len(skipped)} image(s) skipped: {'; '.join(skipped[:3])})" if skipped else "")
            )
        return ProbeImages(tuple(images), tuple(skipped))

    def _token_ids(
        self, state: SecretState, stages: Sequence[str] = STAGES, *, lenient: bool = True
    ) -> set[str]:
        """Vendor ids of the credentials that the versions holding ``stages`` carry: by default every staged
        version (what no orphan sweep may touch). Versions are read by id alone (the labels in ``state`` may
        be a step behind); ``lenient`` skips one that is unreadable (a placeholder), else the error stands."""
        ids: set[str] = set()
        for version_id in {stage_holder(state.versions, stage) for stage in stages} - {None}:
            assert version_id is not None
            value = self.store.read_unstaged(state.arn, version_id)
            if value is None:
                if lenient:
                    continue
                raise RotationError(
                    f"version {version_id} of {state.name} holds no credential regcred can read; nothing was "
                    "revoked: fix or remove that version"
                )
            if value.token_id:
                ids.add(value.token_id)
        return ids

    def held_token_ids(self, state: SecretState) -> set[str]:
        """Vendor ids of the credentials any staged version holds (what no orphan sweep may touch)."""
        return self._token_ids(state)

    def _promoted_token_ids(self, state: SecretState) -> set[str]:
        """Vendor ids of the credentials AWSCURRENT and AWSPREVIOUS hold (an unreadable one is an error)."""
        return self._token_ids(state, (CURRENT, PREVIOUS), lenient=False)

    def _revoke_orphans(
        self,
        ctx: StepContext,
        provider: Provider,
        held: set[str],
        *,
        rotation: str | None = None,
        except_rotation: str | None = None,
    ) -> int:
        """Revoke credentials labelled for this secret that no version holds; returns how many."""
        found = orphans(
            provider.list_tokens(), ctx.state.name, held, rotation=rotation, except_rotation=except_rotation
        )
        revoked = 0
        for token in found:
            if revoke_minted(provider, token.token_id, ctx.state.name).done:
                revoked += 1
        if revoked:
            logger.info("orphaned credentials revoked", extra={"count": revoked})
        return revoked

    # -- the protocol --------------------------------------------------------------------------

    def run(
        self, secret_id: str, token: str, step: str | Step, *, deadline: Deadline | None = None
    ) -> StepOutcome:
        """Run one step and say what it did."""
        step = step if isinstance(step, Step) else Step.parse(step)
        state = self.describe(secret_id)
        provider_name = state.tags.get(PROVIDER, "unknown")
        verdict = guard(
            state.versions,
            token,
            step,
            rotation_enabled=state.rotation_enabled,
            require_rotation_enabled=self.require_rotation_enabled,
        )
        if verdict is Guard.ALREADY_CURRENT:
            if step is Step.FINISH:
                # A retry after a failure past the promotion: what follows it is done again.
                self._finish_cleanup(state, token)
                self.mirror_promoted(state, token)
            logger.info("rotation step skipped: version already current", extra={"step": step.value})
            return StepOutcome(step, Outcome.ALREADY_CURRENT, provider_name)
        ctx = self.context(state, deadline)
        if not ctx.spec.can_mint:
            # A RotateSecret on a secret whose credentials only an operator can supply: one clear line.
            self.build_provider(ctx)
        if step is Step.CREATE:
            outcome, skipped = self.create_secret(ctx, token)
            return StepOutcome(step, outcome, provider_name, skipped_images=skipped)
        if step is Step.SET:
            return StepOutcome(step, self.set_secret(ctx, token), provider_name)
        if step is Step.TEST:
            return StepOutcome(step, self.test_secret(ctx, token), provider_name)
        pending = self.read(state.arn, stage=PENDING, version_id=token)
        outcome = self.finish_secret(ctx, token)
        took = (self._now() - pending.issued_at).total_seconds() if pending.issued_at else None
        return StepOutcome(step, outcome, provider_name, took)

    def preflight(self, ctx: StepContext) -> tuple[SecretValue, Provider, ProbeImages]:
        """What createSecret checks before it mints anything: AWSCURRENT names the configured registry and
        provider, the admin secret may serve this secret, and there are probe images."""
        state = ctx.state
        current = self.read(state.arn, stage=CURRENT)
        check_value_registry(current.registry, ctx.route, secret=state.name)
        if current.provider and current.provider != ctx.cfg.provider:
            raise ConfigurationError(
                f"secret {state.name}: its value says provider {current.provider!r} but the regcred:provider "
                f"tag says {ctx.cfg.provider!r}; nothing was minted"
            )
        provider = self._provider_factory(ctx)  # the admin secret's binding is checked here
        return current, provider, self.probe_images(ctx)

    def create_secret(self, ctx: StepContext, token: str) -> tuple[Outcome, tuple[str, ...]]:
        """Mint a credential labelled with the token and store it as AWSPENDING.

        Credentials that a crashed or concurrent try of *this* rotation minted are not revoked here, where a
        racer may be about to store one of them, but in testSecret, once the stored one is known; those of
        other rotations are orphans and are revoked before minting."""
        state = ctx.state
        if self.store.pending_stored(state.arn, token):
            return Outcome.EXISTS, ()
        current, provider, probe = self.preflight(ctx)
        label = labels.label_for(state.name, token, max_length=provider.spec.label_max)
        self._revoke_orphans(ctx, provider, self._token_ids(state), except_rotation=token)
        now = self._now()
        try:
            issued = provider.issue(label, now + timedelta(seconds=ctx.cfg.ttl_s))
        except MintOutcomeUnknown as exc:
            revoked = self._revoke_orphans(ctx, provider, self._token_ids(state), rotation=token)
            raise RotationRetryable(
                f"{exc}; the mint is not repeated: {revoked} credential(s) labelled for this rotation were "
                "found and revoked; the step can be retried"
            ) from None
        pending = current.with_credential(
            username=issued.username,
            password=issued.password,
            token_id=issued.token_id,
            expires_at=issued.expires_at,
            issued_at=now,
            registry=ctx.route.registry_name,
            provider=ctx.cfg.provider,
        )
        # A concurrent createSecret may have stored its credential first: ours must not stay alive.
        # Secrets Manager refuses a second value for one token; the re-read covers emulators that do not.
        lost = self.store.pending_stored(state.arn, token)
        if not lost:
            try:
                lost = not self.store.put_pending(state.arn, token, pending)
            except Exception:
                # The write may have gone through before the error (a lost answer): a stored credential is
                # the one this rotation goes on with, and only one that is not stored must die.
                if not self._stored(state.arn, token, issued.token_id):
                    revoke_minted(provider, issued.token_id, state.name)
                raise
        if lost:
            revoke_minted(provider, issued.token_id, state.name)
            return Outcome.LOST_RACE, probe.skipped
        self._revoke_stale_pending(
            state, token, provider, keep={issued.token_id} | self._promoted_token_ids(state)
        )
        logger.info("pending credential created", extra={"token_id": issued.token_id})
        return Outcome.CREATED, probe.skipped

    def _stored(self, secret_id: str, token: str, token_id: str) -> bool:
        """Whether the token's version holds the credential ``token_id`` (False when that cannot be read)."""
        try:
            stored = self.store.read_unstaged(secret_id, token)
        except Exception:
            return False
        return stored is not None and stored.token_id == token_id

    def _revoke_stale_pending(
        self, state: SecretState, token: str, provider: Provider, keep: set[str]
    ) -> None:
        """The AWSPENDING label just moved to our version: revoke the credential it left behind."""
        stale = stage_holder(state.versions, PENDING)
        if stale is None or stale == token:
            return
        # The stale version lost AWSPENDING to ours, so it is read by its id alone; an empty placeholder
        # version (None) had nothing minted for it.
        stale_value = self.store.read_unstaged(state.arn, stale)
        if stale_value is not None and stale_value.token_id and stale_value.token_id not in keep:
            revoke_minted(provider, stale_value.token_id, state.name)

    def set_secret(self, ctx: StepContext, token: str) -> Outcome:
        """Overlap strategy: the new credential is live at the vendor already."""
        return Outcome.NOTHING_TO_SET

    def test_secret(self, ctx: StepContext, token: str) -> Outcome:
        """Prove the pending credential pulls every probe image and was needed for it; else revoke it."""
        state = ctx.state
        pending = self.read(state.arn, stage=PENDING, version_id=token)
        provider = self._provider_factory(ctx)
        probe = self.probe_images(ctx)
        result = self.check(ctx, pending, probe.images, prove=True)
        # RotateSecret(RotateImmediately=False) tests the configuration with a pending copy of AWSCURRENT: a
        # credential that AWSCURRENT or AWSPREVIOUS holds is never revoked here.
        promoted = self._promoted_token_ids(state)
        if result.ok:
            keep = promoted | {pending.token_id} if pending.token_id else promoted
            self._revoke_orphans(ctx, provider, keep, rotation=token)  # minted by a concurrent try that lost
            return Outcome.PULLS
        if failure_is_retryable(result):
            raise RotationRetryable(
                f"could not check the pending credential, kept for a retry: {result.summary()}"
            )
        if pending.token_id in promoted:
            raise RotationTestFailed(
                "the pending version holds the credential of a promoted version, and it cannot pull; "
                f"nothing was revoked: {result.summary()}"
            )
        if pending.token_id:
            revoke_minted(provider, pending.token_id, state.name)
        self._revoke_orphans(ctx, provider, promoted, rotation=token)
        self.store.remove_stage(state.arn, PENDING, token)
        if result.unproven:
            raise RotationTestFailed(
                "the registry serves every probe image without credentials, so nothing proves the new "
                f"credential; it was revoked and AWSCURRENT is unchanged. Probe a private image ({IMAGES}): "
                f"{result.summary()}"
            )
        raise RotationTestFailed(
            "the new credential cannot pull, so it was revoked and AWSCURRENT is unchanged: "
            f"{result.summary()}"
        )

    def finish_secret(self, ctx: StepContext, token: str) -> Outcome:
        """Revoke the credential leaving AWSPREVIOUS, promote the pending one, clear AWSPENDING."""
        state = ctx.state
        current_id = stage_holder(state.versions, CURRENT)
        previous_id = stage_holder(state.versions, PREVIOUS)
        pending = self.read(state.arn, stage=PENDING, version_id=token)
        provider = self._provider_factory(ctx)
        if previous_id and previous_id not in (token, current_id):
            old = self.read(state.arn, stage=PREVIOUS, version_id=previous_id)
            current = self.read(state.arn, stage=CURRENT) if current_id else None
            live = {pending.token_id, current.token_id if current else None}
            if old.token_id and old.token_id not in live:
                revoke_minted(provider, old.token_id, state.name)
        after = self.store.promote(state, token)
        self._finish_cleanup(after, token)
        # At rest, at most AWSCURRENT and AWSPREVIOUS: anything else labelled for the secret goes.
        self._revoke_orphans(ctx, provider, self._token_ids(after))
        # Last: a failure here fails the step with the rotation promoted, and the retry writes it.
        self.mirror_promoted(after, token, pending)
        logger.info("rotation finished", extra={"token_id": pending.token_id})
        return Outcome.PROMOTED

    def _finish_cleanup(self, state: SecretState, token: str) -> None:
        """After promotion: AWSPENDING gone, promotion time recorded (both idempotent)."""
        if PENDING in state.versions.get(token, []):
            self.store.remove_stage(state.arn, PENDING, token)
        if state.tags.get(PROMOTED_VERSION) != token:
            self.store.write_bookkeeping(
                state.arn, {PROMOTED_AT: format_time(self._now()), PROMOTED_VERSION: token}
            )

    def mirror_promoted(
        self, state: SecretState, version: str, value: SecretValue | None = None
    ) -> MirrorResult:
        """After ``version`` became AWSCURRENT: its ECR mirror holds it (`regcred.mirror.after_promotion`)."""
        return after_promotion(self.store, state, version, value)

    # -- retirement -----------------------------------------------------------------------------

    def retire_previous(
        self,
        secret_id: str,
        *,
        deadline: Deadline | None = None,
        dry_run: bool = False,
        proven_current: str | None = None,
    ) -> RetireResult:
        """Revoke the AWSPREVIOUS credential once its grace period is over and AWSCURRENT pulls. ``dry_run``
        checks everything (AWSCURRENT pulls, the vendor's record is labelled for the secret) and writes
        nothing. ``proven_current`` is the AWSCURRENT version the caller has just proven to pull every probe
        image (the sweep): when it still holds AWSCURRENT, the registry is not asked again."""
        state = self.describe(secret_id)
        ctx = self.context(state, deadline)
        cfg = ctx.cfg
        previous_id = stage_holder(state.versions, PREVIOUS)
        if previous_id is None:
            return RetireResult.NO_PREVIOUS
        previous = self.read(state.arn, stage=PREVIOUS, version_id=previous_id)
        current = self.read(state.arn, stage=CURRENT)
        if not previous.token_id:
            return RetireResult.NOT_MINTED
        if previous.token_id in (current.token_id, cfg.retired_token_id):
            return RetireResult.ALREADY_RETIRED
        promoted = cfg.promoted_at or current.issued_at
        if promoted is not None and self._now() < promoted + timedelta(seconds=cfg.grace_s):
            return RetireResult.IN_GRACE
        proven = proven_current is not None and proven_current == state.holder(CURRENT)
        if not ctx.spec.can_mint:
            return self._retire_imported(ctx, previous, current, dry_run=dry_run, proven=proven)
        provider = self._provider_factory(ctx)
        kept = self._keep_previous(ctx, current, proven=proven, dry_run=dry_run)
        if kept is not None:
            return kept
        revoked = revoke_minted(provider, previous.token_id, state.name, dry_run=dry_run)
        if revoked in (RevokeResult.NOT_MINTED_FOR_SECRET, RevokeResult.INVALID_ID):
            return RetireResult.REFUSED
        if dry_run:
            return RetireResult.WOULD_RETIRE
        self.store.write_bookkeeping(state.arn, {RETIRED_TOKEN: previous.token_id})
        logger.info("previous credential retired", extra={"token_id": previous.token_id})
        return RetireResult.RETIRED

    def _keep_previous(
        self, ctx: StepContext, current: SecretValue, *, proven: bool, dry_run: bool
    ) -> RetireResult | None:
        """Why the previous credential must stay (it may be the way back), or None: AWSCURRENT must pull its
        probe images (unless the caller has just proven it), and the ECR mirror must hold AWSCURRENT."""
        if not proven and not (result := self.check(ctx, current, self.probe_images(ctx).images)).ok:
            logger.warning(
                "previous credential kept: AWSCURRENT does not pull", extra={"detail": result.summary()}
            )
            return RetireResult.CURRENT_UNPROVEN
        if not holds_current(self.store, ctx, current, dry_run=dry_run):
            return RetireResult.MIRROR_STALE
        return None

    def _retire_imported(
        self, ctx: StepContext, previous: SecretValue, current: SecretValue, *, dry_run: bool, proven: bool
    ) -> RetireResult:
        """Retire an imported credential: revoke it by value where the vendor allows it and the secret asks
        for it (GHCR), else only record it as retired. The version's token id must be the fingerprint of the
        token it holds: a hand-edited value is refused, whatever it claims."""
        from .importing import fingerprint

        state = ctx.state
        if previous.token_id != fingerprint(previous.password):
            logger.warning("not retired: the AWSPREVIOUS token id is not the fingerprint of its token")
            return RetireResult.REFUSED
        if previous.password == current.password:
            return RetireResult.ALREADY_RETIRED
        kept = self._keep_previous(ctx, current, proven=proven, dry_run=dry_run)
        if kept is not None:
            return kept
        inspector = self.vendor(ctx)
        revoke = bool(inspector.can_revoke())
        if dry_run:
            return RetireResult.WOULD_RETIRE
        if revoke:
            inspector.revoke_value(previous.password)
        assert previous.token_id is not None
        self.store.write_bookkeeping(state.arn, {RETIRED_TOKEN: previous.token_id})
        logger.info("previous credential retired", extra={"token_id": previous.token_id, "revoked": revoke})
        return RetireResult.RETIRED if revoke else RetireResult.RETIRED_NOT_REVOKED
