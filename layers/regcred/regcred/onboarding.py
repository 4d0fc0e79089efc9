"""Onboarding: a new managed secret with a fresh credential that is proven to pull (``regcred onboard``).

Everything that can be checked is checked before anything is minted or written (`Onboarding.validate`): the
provider, the schedule expression and the rotation function (it exists, and Secrets Manager may invoke it),
the ttl and grace ranges, the routing of the registry and API, the probe images, the admin secret, and that
the secret does not exist yet. Then, in order: bind the admin secret to this secret (its
``regcred:admin-for`` tag), mint (or take the imported token), prove it pulls, create the secret, write its
ECR pull-through cache mirror (``--ecr-mirror``: created, bound by ``regcred:mirror-of``, when it does not
exist; its binding checked before anything is minted when it does), enable rotation. A minted credential
that is not stored is revoked, whatever stops the run (Ctrl-C included). When a
step after CreateSecret fails, the error says what exists and the one command that finishes the job
(``regcred onboard NAME --resume ...``). docs/ARCHITECTURE.md, "Onboarding", has the flow.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import config, labels, providers
from .aws import aws_error_code
from .errors import ConfigurationError, RegcredError
from .importing import fingerprint, inspect_token
from .mirror import check_binding, ensure_mirror, plan_mirror
from .onboarding_checks import check_rotation_function, check_values, validate_schedule
from .providers.base import ImportedCredential
from .revocation import revoke_minted
from .rotation import Rotator, StepContext
from .routing import Deployment
from .secret import SecretValue, validate
from .store import CURRENT, SecretNotFound, SecretState, SecretStore
from .timefmt import format_time

__all__ = [
    "OnboardIncomplete",
    "OnboardRequest",
    "OnboardResult",
    "Onboarding",
    "check_values",
    "validate_schedule",
]

# The flag each configuration tag comes from, for messages about a secret that is being onboarded.
_FLAG_OF_TAG = {
    config.REGISTRY: "--registry",
    config.API: "--api",
    config.REALM_HOSTS: "--realm-host",
    config.IMAGES: "--image",
    config.TTL: "--ttl",
    config.GRACE: "--grace",
    config.ADMIN_SECRET: "--admin-secret",
    config.PROVIDER: "--provider",
    config.ECR_MIRROR: "--ecr-mirror",
}
_TAG_PHRASE = re.compile(r"(?:the )?(regcred:[a-z-]+)(?: tag)?")


def in_flags(message: str) -> str:
    """A configuration message with each tag named by the onboard flag that sets it (a provider setting
    ``regcred:<name>`` by ``--<name>``)."""
    settings = {s.tag: f"--{s.name}" for p in providers.plugins().values() for s in p.spec.settings}

    def flag(match: re.Match[str]) -> str:
        tag = match.group(1)
        return _FLAG_OF_TAG.get(tag) or settings.get(tag) or match.group(0)

    return _TAG_PHRASE.sub(flag, message)


@dataclass(frozen=True)
class OnboardRequest:
    """What the operator asked for (the ``regcred onboard`` flags)."""

    name: str
    provider: str
    admin_secret: str | None
    images: tuple[str, ...] = ()
    registry: str | None = None
    api: str | None = None
    org: str | None = None  # Docker Hub's setting, kept as a field: the same as settings["org"]
    realm_hosts: tuple[str, ...] = ()
    grace: str = "24h"
    ttl: str = "90d"
    kms_key_id: str | None = None
    rotation_lambda: str | None = None
    schedule: str | None = None
    username: str | None = None  # import this user's token instead of minting
    password: str | None = field(default=None, repr=False)
    settings: tuple[tuple[str, str], ...] = ()  # provider settings (name, value): tags regcred:<name>
    ecr_mirror: str | None = None  # the ecr-pullthroughcache/... secret mirroring AWSCURRENT

    def tags(self) -> dict[str, str]:
        tags = {
            config.MANAGED: "true",
            config.PROVIDER: self.provider,
            config.GRACE: self.grace,
            config.TTL: self.ttl,
        }
        optional = {
            config.ADMIN_SECRET: self.admin_secret,
            config.API: self.api,
            config.REGISTRY: self.registry,
            config.ORG: self.org,
            config.REALM_HOSTS: " ".join(self.realm_hosts),
            config.IMAGES: " ".join(self.images),
            config.ECR_MIRROR: self.ecr_mirror,
        }
        optional.update({f"{config.PREFIX}{k}": v for k, v in self.settings})
        tags.update({k: v for k, v in optional.items() if v})
        return tags

    def resume_command(self) -> str:
        rotation = (
            f" --rotation-lambda {self.rotation_lambda} --schedule '{self.schedule}'" if self.schedule else ""
        )
        mirror = f" --ecr-mirror {self.ecr_mirror}" if self.ecr_mirror else ""
        return f"regcred onboard {self.name} --resume{mirror}{rotation}"


@dataclass
class OnboardResult:
    """What onboarding did (or, in a dry run, would do)."""

    name: str
    arn: str | None
    registry: str
    images: tuple[str, ...]
    token_id: str | None
    rotation_enabled: bool
    dry_run: bool = False
    resumed: bool = False
    plan: list[str] = field(default_factory=list)
    ecr_mirror: str | None = None
    mirror_status: str | None = None  # a `regcred.mirror.MirrorStatus` value, or "created"
    notes: list[str] = field(default_factory=list)


class OnboardIncomplete(RegcredError):
    """The secret exists but a later step failed; ``resume`` is the command that finishes the job."""

    def __init__(self, message: str, *, resume: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.resume = resume
        self.cause = cause


def _noop(_: str) -> None:
    pass


class Onboarding:
    """Runs onboarding against Secrets Manager (a `SecretStore`), Lambda, a vendor and a registry."""

    def __init__(
        self,
        store: SecretStore,
        *,
        lambda_client: Any | None = None,
        deployment: Deployment | None = None,
        rotator: Rotator | None = None,
        say: Callable[[str], None] = _noop,
        leave: Callable[[str], None] = _noop,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        step_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.lam = lambda_client
        self.rotator = rotator or Rotator(
            store, deployment=deployment, require_rotation_enabled=False, step_seconds=step_seconds
        )
        self.say, self.leave, self._now = say, leave, now

    # -- validation --------------------------------------------------------------------------

    def validate(
        self, request: OnboardRequest, *, existing: SecretState | None = None
    ) -> tuple[StepContext, list[str]]:
        """Every check that needs no write; returns the routing context and the probe images. For a new
        secret, errors name the flags the operator typed, not the tags they become."""
        try:
            return self._validate(request, existing=existing)
        except ConfigurationError as exc:
            if existing is not None:
                raise
            raise ConfigurationError(in_flags(str(exc))) from None

    def _validate(
        self, request: OnboardRequest, *, existing: SecretState | None = None
    ) -> tuple[StepContext, list[str]]:
        if request.provider not in providers.known():
            raise ConfigurationError(
                f"--provider {request.provider!r}: known providers are {', '.join(providers.known())}"
            )
        spec = providers.spec_for(request.provider)
        if not spec.can_mint:
            if request.username is None:
                raise ConfigurationError(
                    f"regcred cannot mint {spec.name} credentials: give --username and the token (prompted, "
                    "or one line of stdin) to import"
                )
            if request.rotation_lambda or request.schedule:
                raise ConfigurationError(
                    f"regcred cannot mint {spec.name} credentials, so the rotate function cannot rotate "
                    "them: "
                    "drop --rotation-lambda and --schedule, and replace the token with `regcred import` "
                    "(the sweep and `regcred retire` retire the old one)"
                )
        elif not (request.admin_secret or (existing is not None and existing.config.admin_secret)):
            raise ConfigurationError(f"--admin-secret is required: the {spec.name} provider mints with it")
        check_values(
            rotation_lambda=request.rotation_lambda,
            schedule=request.schedule,
            grace=request.grace,
            ttl=request.ttl,
            ecr_mirror=request.ecr_mirror,
            name=request.name,
        )
        if existing is None:
            state = SecretState(
                arn=request.name, name=request.name, tags=request.tags(), versions={}, rotation_enabled=False
            )
        else:  # as resuming will leave it
            mirror = {config.ECR_MIRROR: request.ecr_mirror} if request.ecr_mirror else {}
            state = dataclasses.replace(existing, tags={**existing.tags, **mirror})
        if not state.config.images and existing is None:
            raise ConfigurationError("name at least one --image REPO:TAG that the credential must pull")
        # Routing: --registry, --api and --realm-host among the allowed hosts.
        ctx = self.rotator.context(state)
        probe = self.rotator.probe_images(ctx)
        if existing is None and probe.skipped:
            raise ConfigurationError(f"--image: {probe.skipped[0]}; name images on {ctx.route.registry_name}")
        images = list(probe.images)
        if request.rotation_lambda:
            if self.lam is None:
                raise ConfigurationError("--rotation-lambda needs a Lambda client to be checked")
            self.say("checking the rotation function")
            check_rotation_function(self.lam, request.rotation_lambda)
        if request.username is not None:
            if not request.password:
                raise ConfigurationError("the token to import is empty: nothing was stored")
            validate(SecretValue(username=request.username, password=request.password))
        providers.settings_of(ctx.spec, ctx.cfg, secret_name=request.name)
        life = ctx.spec.lifetime
        if ctx.spec.can_mint and (
            ctx.cfg.ttl_s < life.min_s or (life.max_s is not None and ctx.cfg.ttl_s > life.max_s)
        ):
            cap = f" and at most {life.max_s // 3600} h" if life.max_s is not None else ""
            raise ConfigurationError(
                f"--ttl: {ctx.spec.name} credentials must live at least {life.min_s // 3600} h{cap} "
                f"({life.note or 'the vendor limit'})"
            )
        admin_secret = ctx.cfg.admin_secret or request.admin_secret
        if ctx.spec.needs_admin and admin_secret:
            self.say("checking the admin secret")
            providers.read_admin_credential(
                self.store, admin_secret, secret_name=request.name, require_binding=False, spec=ctx.spec
            )
        if ctx.cfg.ecr_mirror:
            self.say(f"checking ECR mirror {ctx.cfg.ecr_mirror}")
            # Bound to this secret, or absent (created after the secret): checked before anything is minted.
            arn = existing.arn if existing is not None else None
            check_binding(self.store, ctx.cfg.ecr_mirror, request.name, secret_arn=arn)
        return ctx, images

    def _existing(self, name: str) -> SecretState | None:
        try:
            return self.store.describe(name)
        except SecretNotFound:
            return None

    def _bind_admin(self, admin_secret: str, name: str, *, dry_run: bool) -> str | None:
        """Mark the admin secret and let it serve ``name`` (the operator named it for this secret). Returns
        what was (or would be) changed, None when nothing needs to."""
        meta = self.store.describe(admin_secret)
        patterns = meta.tags.get(config.ADMIN_FOR, "")
        update: dict[str, str] = {}
        if meta.tags.get(config.ADMIN_MARK, "").lower() != "true":
            update[config.ADMIN_MARK] = "true"
        if not config.admin_serves(patterns, name):
            value = f"{patterns} {name}".strip()
            if len(value) > 256:
                raise ConfigurationError(
                    f"the {config.ADMIN_FOR} tag of {admin_secret} would be longer than 256 characters: "
                    "replace its "
                    "names with a prefix ending in '*' (e.g. batch/*)"
                )
            update[config.ADMIN_FOR] = value
        if not update:
            return None
        if not dry_run:
            self.store.tag(meta.arn, update)
        return f"tag admin secret {meta.name} " + " ".join(f"{k}={v}" for k, v in update.items())

    # -- the run -----------------------------------------------------------------------------

    def run(self, request: OnboardRequest, *, dry_run: bool = False, resume: bool = False) -> OnboardResult:
        existing = self._existing(request.name)
        if existing is not None and not resume:
            raise ConfigurationError(self._exists_message(request, existing))
        if existing is None and resume:
            raise ConfigurationError(
                f"--resume: secret {request.name} does not exist, so there is nothing to resume; run the "
                "same "
                "command without --resume"
            )
        if existing is not None:
            return self._resume(request, existing, dry_run=dry_run)
        ctx, images = self.validate(request)
        if dry_run:
            return self._plan(request, ctx, images)
        return self._create(request, ctx, images)

    def _exists_message(self, request: OnboardRequest, existing: SecretState) -> str:
        managed = (
            "managed by regcred"
            if existing.managed
            else "NOT managed by regcred (no regcred:managed=true tag)"
        )
        rotation = "rotation enabled" if existing.rotation_enabled else "rotation not enabled"
        advice = (
            f"to finish onboarding it (prove AWSCURRENT pulls, bind the admin secret, enable rotation) run "
            f"`{request.resume_command()}`; to replace its credential run `regcred rotate {existing.name}`"
            if existing.managed
            else "choose another name, or delete that secret first; regcred never takes over a secret it did "
            "not create"
        )
        return f"secret {existing.name} exists already ({managed}, {rotation}): {advice}"

    def _plan(self, request: OnboardRequest, ctx: StepContext, images: list[str]) -> OnboardResult:
        plan = []
        bind = (
            self._bind_admin(request.admin_secret, request.name, dry_run=True)
            if request.username is None and request.admin_secret
            else None
        )
        if bind:
            plan.append(f"would {bind}")
        if request.username is None:
            # A read at the vendor proves the admin credential and the API; minting is what is left.
            assert request.admin_secret is not None
            admin = providers.read_admin_credential(
                self.store,
                request.admin_secret,
                secret_name=request.name,
                require_binding=False,
                spec=ctx.spec,
            )
            self.say("checking the admin credential at the vendor")
            provider = providers.build(
                ctx.cfg,
                ctx.route,
                admin,
                transport=self.rotator.transport,
                deadline=ctx.deadline,
                secret_name=request.name,
            )
            listed = len(provider.list_tokens())
            api = ctx.route.api.netloc if ctx.route.api else request.provider
            plan.append(f"checked: the admin credential works at {api} ({listed} token(s) listed)")
            expires = self._now() + timedelta(seconds=ctx.cfg.ttl_s)
            plan.append(f"would mint a {request.provider} token expiring {format_time(expires)}")
            plan.append(f"would prove it pulls {', '.join(images)} on {ctx.route.registry_name}")
        else:
            assert request.password is not None
            value = SecretValue(username=request.username, password=request.password)
            self._inspect(ctx, request)
            self.say(f"proving the token pulls {len(images)} image(s)")
            result = self.rotator.check(ctx, value, images, prove=True)
            if not result.ok:
                raise CheckFailed(result, what=f"the token of {request.username}")
            plan.append(f"checked: the token of {request.username} pulls {', '.join(images)}")
            plan.append(f"would import the token of {request.username}")
        plan.append(
            f"would create secret {request.name} with tags "
            + " ".join(f"{k}={v}" for k, v in request.tags().items())
        )
        mirror_lines, mirror_status = plan_mirror(self.store, request.name, ctx.cfg.ecr_mirror, None)
        plan += mirror_lines
        if request.rotation_lambda:
            plan.append(f"would enable rotation by {request.rotation_lambda} on {request.schedule}")
        done = OnboardResult(
            request.name, None, ctx.route.registry_name, tuple(images), None, False, dry_run=True, plan=plan
        )
        done.ecr_mirror, done.mirror_status = ctx.cfg.ecr_mirror, mirror_status
        return done

    def _credential(self, request: OnboardRequest, ctx: StepContext) -> tuple[SecretValue, Any]:
        now = self._now()
        if request.username is not None:
            assert request.password is not None
            facts = self._inspect(ctx, request)
            value = SecretValue(
                username=request.username,
                password=request.password,
                registry=ctx.route.registry_name,
                provider=request.provider,
                # A credential regcred cannot mint is named by its fingerprint, so that it can be retired.
                token_id=None if ctx.spec.can_mint else fingerprint(request.password),
                expires_at=facts.expires_at if facts is not None else None,
                issued_at=now,
            )
            return value, None
        assert request.admin_secret is not None
        self._bind_admin(request.admin_secret, request.name, dry_run=False)
        provider = self.rotator.build_provider(ctx)
        self.say(f"minting a {request.provider} token")
        issued = provider.issue(
            labels.label_for(request.name, f"onboard-{uuid.uuid4()}", max_length=provider.spec.label_max),
            now + timedelta(seconds=ctx.cfg.ttl_s),
        )
        self.leave(f"a token was minted for {request.name} and is revoked before exit; nothing was stored")
        value = SecretValue(
            username=issued.username,
            password=issued.password,
            registry=ctx.route.registry_name,
            provider=request.provider,
            token_id=issued.token_id,
            expires_at=issued.expires_at,
            issued_at=now,
        )
        return value, provider

    def _inspect(self, ctx: StepContext, request: OnboardRequest) -> ImportedCredential | None:
        """What the vendor of a provider that cannot mint says about the imported token (None for the
        others: an imported Docker Hub token is only proven at the registry)."""
        if ctx.spec.can_mint:
            return None
        assert request.username is not None and request.password is not None
        self.say(f"asking {ctx.spec.name} about the token")
        return inspect_token(self.rotator, ctx, request.username, request.password, now=self._now())

    def _create(self, request: OnboardRequest, ctx: StepContext, images: list[str]) -> OnboardResult:
        value, provider = self._credential(request, ctx)
        try:
            self.say(f"proving the credential pulls {len(images)} image(s)")
            result = self.rotator.check(ctx, value, images, prove=True)
            if not result.ok:
                revoked = " (the minted token was revoked)" if provider is not None else ""
                raise CheckFailed(result, what="the new credential", after=f"; nothing was stored{revoked}")
            self.say(f"creating secret {request.name}")
            arn = self.store.create(
                request.name,
                value,
                tags=request.tags(),
                description=f"registry credential for {ctx.route.registry_name}, rotated by regcred",
                kms_key_id=request.kms_key_id,
            )
            if arn is None:
                raise ConfigurationError(
                    f"secret {request.name} was created by someone else meanwhile; nothing was stored"
                )
        except BaseException:
            if provider is not None and value.token_id:
                # Nothing stored it: it must not stay alive.
                revoke_minted(provider, value.token_id, request.name)
                self.leave(f"the token minted for {request.name} was revoked; nothing was stored")
            else:
                self.leave("")
            raise
        self.leave(
            f"secret {request.name} exists with a working credential, but onboarding did not finish: run "
            f"`{request.resume_command()}`"
        )
        done = OnboardResult(
            request.name,
            arn,
            ctx.route.registry_name,
            tuple(images),
            value.token_id,
            bool(request.rotation_lambda),
            ecr_mirror=ctx.cfg.ecr_mirror,
        )
        self._finish(request, done, value, created=True, bind=request.username is not None, enable=True)
        self.leave("")
        return done

    def _finish(
        self,
        request: OnboardRequest,
        result: OnboardResult,
        value: SecretValue,
        *,
        created: bool,
        bind: bool,
        enable: bool,
        retag: bool = False,
    ) -> None:
        """The steps after CreateSecret: bind the admin secret, write ``value`` (AWSCURRENT) to the ECR mirror
        (``retag``: and tag the secret with it), enable rotation."""
        what = f"secret {request.name} was {'created' if created else 'found'} and its credential pulls"
        arn, name = str(result.arn), result.ecr_mirror
        try:
            if bind and request.admin_secret and providers.spec_for(request.provider).needs_admin:
                self._bind_admin(request.admin_secret, request.name, dry_run=False)
            if name:
                self.say(f"writing ECR mirror {name}")
                result.mirror_status, notes = ensure_mirror(
                    self.store, name, request.name, arn, value, kms_key_id=request.kms_key_id
                )
                result.ecr_mirror = name
                result.notes += notes
                if retag:
                    # Last: a secret tagged with its mirror has it written on every promotion.
                    self.store.tag(arn, {config.ECR_MIRROR: name})
            if enable and request.rotation_lambda and request.schedule:
                self.say("enabling rotation")
                self.store.enable_rotation(arn, request.rotation_lambda, request.schedule)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, RegcredError) else aws_error_code(exc)
            raise OnboardIncomplete(
                f"{what}, but the next step failed ({reason}); nothing needs undoing: finish with "
                f"`{request.resume_command()}`",
                resume=request.resume_command(),
                cause=exc,
            ) from None

    def _resume(self, request: OnboardRequest, existing: SecretState, *, dry_run: bool) -> OnboardResult:
        if not existing.managed:
            raise ConfigurationError(self._exists_message(request, existing))
        ctx, images = self.validate(request, existing=existing)
        current = self.store.read(existing.arn, stage=CURRENT)
        self.say(f"proving AWSCURRENT pulls {len(images)} image(s)")
        result = self.rotator.check(ctx, current, images)
        if not result.ok:
            raise CheckFailed(result, what=f"AWSCURRENT of {existing.name}")
        enable = bool(request.rotation_lambda) and (
            not existing.rotation_enabled or existing.rotation_lambda_arn != request.rotation_lambda
        )
        mirror = ctx.cfg.ecr_mirror
        retag = mirror is not None and existing.tags.get(config.ECR_MIRROR, "").strip() != mirror
        plan: list[str] = []
        done = OnboardResult(
            existing.name,
            existing.arn,
            ctx.route.registry_name,
            tuple(images),
            current.token_id,
            existing.rotation_enabled or enable,
            dry_run=dry_run,
            resumed=True,
            plan=plan,
            ecr_mirror=mirror,
        )
        if dry_run:
            admin_secret = ctx.cfg.admin_secret or request.admin_secret
            bind = (
                self._bind_admin(admin_secret, existing.name, dry_run=True)
                if admin_secret and ctx.spec.needs_admin
                else None
            )
            plan += [f"would {bind}"] if bind else []
            mirror_lines, done.mirror_status = plan_mirror(self.store, existing.name, mirror, current)
            plan += mirror_lines
            plan += [f"would tag secret {existing.name} {config.ECR_MIRROR}={mirror}"] if retag else []
            plan += (
                [f"would enable rotation by {request.rotation_lambda} on {request.schedule}"]
                if enable
                else []
            )
            if not any(line.startswith("would ") for line in plan):
                plan.append("nothing to do: the secret is onboarded")
        else:
            self._finish(request, done, current, created=False, bind=True, enable=enable, retag=retag)
        return done


class CheckFailed(RegcredError):
    """The credential cannot pull (or pulled nothing that needed it). ``what`` names the credential, ``after``
    says what became of it."""

    def __init__(self, result: Any, *, what: str, after: str = "") -> None:
        self.result = result
        if result.could_not_check and not result.failed:
            text = f"could not check {what}: the registry was unreachable or rate limited"
        elif result.unproven:
            text = f"{what} proves nothing: every image is served without credentials; name a private --image"
        else:
            text = f"{what} cannot pull: {result.summary()}"
        super().__init__(text + after)
