"""``regcred import``: a new credential that an operator supplies, for providers regcred cannot mint.

GHCR's classic personal access tokens and a static registry's credentials have no API that mints them, so an
operator creates each new one at the vendor and hands it over. It then takes the same path as a rotation:

1. checks first, nothing written: the secret is managed by a provider that cannot mint (any other is
   rotated, not imported), AWSCURRENT names the configured registry, the value ECS will read is valid, and
   the vendor says what it can about the token (GitHub: its scopes and its expiry, recorded in the value);
2. the value is stored as AWSPENDING (a version of its own);
3. it must pull every probe image through the registry's ``/v2/`` flow, and the registry must have needed
   it; otherwise AWSPENDING is removed and AWSCURRENT is untouched;
4. AWSCURRENT moves to it and AWSPREVIOUS to the version that held AWSCURRENT, and the promotion time is
   recorded; the old credential is retired after the grace period (`Rotator.retire_previous`);
5. a secret tagged ``regcred:ecr-mirror`` has its ECR pull-through cache mirror written with the new token
   (`Rotator.mirror_promoted`); an import of the token AWSCURRENT holds already writes it too, which is how a
   mirror that failed after a promotion is repaired.

A crashed import leaves at most an AWSPENDING version that the next import supersedes: nothing at a vendor
was created, so nothing needs revoking. An imported credential's token id is its fingerprint (`fingerprint`),
so that retirement can tell the token a version holds from the one its value claims.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .config import PROMOTED_AT, PROMOTED_VERSION
from .errors import ConfigurationError, RotationError
from .mirror import MirrorStatus
from .observability import logger
from .providers.base import ImportedCredential
from .rotation import Rotator, StepContext
from .routing import check_value_registry
from .secret import SecretValue, validate
from .store import CURRENT, PENDING, SecretState
from .timefmt import format_time

__all__ = ["ImportResult", "Importer", "fingerprint", "inspect_token"]


def fingerprint(password: str) -> str:
    """The token id of an imported credential: 128 bits of SHA-256 of the token. It names the token in tags
    and messages without revealing it (the token is random: the digest cannot be turned back)."""
    return "sha256-" + hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def inspect_token(
    rotator: Rotator, ctx: StepContext, username: str, password: str, *, now: datetime
) -> ImportedCredential:
    """What the vendor of a provider that cannot mint says about an operator's token (its expiry, its user):
    ProviderError when it refuses the token, ConfigurationError when the token has expired. Both `regcred
    import` and an importing `regcred onboard` ask here."""
    facts: ImportedCredential = rotator.vendor(ctx).inspect(username, password)
    if facts.expires_at is not None and facts.expires_at <= now:
        raise ConfigurationError(
            f"the token expired at {format_time(facts.expires_at)}: create a new one; nothing was stored"
        )
    return facts


@dataclass
class ImportResult:
    """What an import did (or, in a dry run, would do)."""

    secret: str
    version: str | None
    username: str
    token_id: str
    expires_at: datetime | None
    images: tuple[str, ...]
    previous_version: str | None
    dry_run: bool = False
    already_current: bool = False
    notes: list[str] = field(default_factory=list)


class ImportFailed(RotationError):
    """The imported credential could not be promoted; AWSCURRENT is unchanged."""


class Importer:
    """Runs ``regcred import`` with a `Rotator` (its store, routing, probe images and pull check)."""

    def __init__(
        self,
        rotator: Rotator,
        *,
        say: Callable[[str], None] = lambda _: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.rotator = rotator
        self.store = rotator.store
        self.say = say
        self._now = now

    def context(self, name: str) -> tuple[SecretState, StepContext]:
        state = self.store.describe(name)
        if not state.managed:
            raise ConfigurationError(
                f"secret {state.name} is not managed by regcred (no regcred:managed=true tag): onboard it "
                "with "
                "`regcred onboard`"
            )
        ctx = self.rotator.context(state)
        if ctx.spec.can_mint:
            raise ConfigurationError(
                f"secret {state.name} uses the {ctx.spec.name} provider, whose credentials regcred mints "
                f"itself: run `regcred rotate {state.name}`; import is for providers regcred cannot mint"
            )
        return state, ctx

    def run(self, name: str, *, username: str | None, password: str, dry_run: bool = False) -> ImportResult:
        state, ctx = self.context(name)
        current = self.store.read(state.arn, stage=CURRENT)
        check_value_registry(current.registry, ctx.route, secret=state.name)
        user = username or current.username
        validate(SecretValue(username=user, password=password))
        self.say(f"asking {ctx.spec.name} about the token")
        now = self._now()
        facts = inspect_token(self.rotator, ctx, user, password, now=now)
        if username is None and facts.username:
            user = facts.username
        token_id = fingerprint(password)
        images = self.rotator.probe_images(ctx).images
        result = ImportResult(
            state.name,
            None,
            user,
            token_id,
            facts.expires_at,
            tuple(images),
            state.holder(CURRENT),
            dry_run=dry_run,
            notes=list(facts.notes),
        )
        if facts.expires_at is not None and (facts.expires_at - now).total_seconds() < ctx.cfg.grace_s:
            result.notes.append(
                f"the token expires at {format_time(facts.expires_at)}, before a grace period "
                f"({ctx.cfg.grace_s} s) would end"
            )
        if password == current.password:
            result.already_current = True
            result.version = state.holder(CURRENT)
            if not dry_run and result.version:
                self._mirror(state, result, result.version, current)
            return result
        value = current.with_credential(
            username=user,
            password=password,
            token_id=token_id,
            expires_at=facts.expires_at,
            issued_at=now,
            registry=ctx.route.registry_name,
            provider=ctx.cfg.provider,
        )
        if dry_run:
            self.say(f"proving the token pulls {len(images)} image(s)")
            self._prove(ctx, value, images, stored=None)
            return result
        version = str(uuid.uuid4())
        self.say("storing it as AWSPENDING")
        self.store.put_pending(state.arn, version, value)
        self.say(f"proving it pulls {len(images)} image(s)")
        self._prove(ctx, value, images, stored=version)
        latest = self.store.describe(state.arn)
        if PENDING not in latest.versions.get(version, []):
            raise ImportFailed(
                f"another import or rotation of {state.name} took AWSPENDING meanwhile; nothing was "
                "promoted: "
                "run the import again"
            )
        self.say("promoting it to AWSCURRENT")
        after = self.store.promote(latest, version)
        if PENDING in after.versions.get(version, []):
            self.store.remove_stage(state.arn, PENDING, version)
        self.store.write_bookkeeping(
            state.arn, {PROMOTED_AT: format_time(self._now()), PROMOTED_VERSION: version}
        )
        logger.info("imported credential promoted", extra={"token_id": token_id})
        result.version = version
        self._mirror(after, result, version, value)
        return result

    def _mirror(self, state: SecretState, result: ImportResult, version: str, value: SecretValue) -> None:
        """The ECR mirror holds the promoted token (MirrorStale, after the promotion, when it cannot)."""
        mirrored = self.rotator.mirror_promoted(state, version, value)
        if mirrored.status is MirrorStatus.WRITTEN:
            result.notes.append(f"ECR mirror {mirrored.mirror} now holds the token")

    def _prove(
        self, ctx: StepContext, value: SecretValue, images: tuple[str, ...], *, stored: str | None
    ) -> None:
        from .onboarding import CheckFailed

        check = self.rotator.check(ctx, value, images, prove=True)
        if check.ok:
            return
        if stored is not None:
            self.store.remove_stage(ctx.state.arn, PENDING, stored)
        raise CheckFailed(
            check,
            what="the imported token",
            after="; AWSPENDING was removed and AWSCURRENT is unchanged"
            if stored
            else "; nothing was stored",
        )
