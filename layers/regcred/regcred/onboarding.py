"""Onboarding: a new managed secret with a fresh credential that is proven to pull (``regcred onboard``).

Everything that can be checked is checked before anything is minted or written (`Onboarding.validate`): the
provider, the schedule expression and the rotation function (it exists, and Secrets Manager may invoke it),
the ttl and grace ranges, the routing of the registry and API, the probe images, the admin secret, and that
the secret does not exist yet. Then, in order: bind the admin secret to this secret (its
``regcred:admin-for`` tag), mint (or take the imported token), prove it pulls, create the secret, enable
rotation. A minted credential that is not stored is revoked, whatever stops the run (Ctrl-C included). When a
step after CreateSecret fails, the error says what exists and the one command that finishes the job
(``regcred onboard NAME --resume ...``). docs/ARCHITECTURE.md, "Onboarding", has the flow.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import config, labels, providers
from .aws import aws_error_code
from .errors import ConfigurationError, RegcredError
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

# Secrets Manager rotates at most every four hours; AutomaticallyAfterDays ranges 1..1000 (API reference,
# RotationRulesType: "You can rotate a secret as often as every four hours"; "Valid Range: Minimum value of 1.
# Maximum value of 1000.").
_RATE = re.compile(r"rate\((\d{1,5}) (hours?|days?)\)")
_CRON = re.compile(r"cron\(([^()]+)\)")
MIN_RATE_HOURS, MAX_RATE_DAYS = 4, 1000


def validate_schedule(text: str) -> str:
    """A Secrets Manager ScheduleExpression: ``rate(N hours|days)`` (4 hours to 1000 days) or ``cron(...)``
    with six fields. ConfigurationError naming the flag otherwise."""
    rate = _RATE.fullmatch(text)
    if rate:
        number, unit = int(rate.group(1)), rate.group(2)
        hours = number if unit.startswith("hour") else number * 24
        if hours < MIN_RATE_HOURS or hours > MAX_RATE_DAYS * 24 or number == 0:
            raise ConfigurationError(
                f"--schedule {text!r}: Secrets Manager rotates between every {MIN_RATE_HOURS} hours and "
                f"every {MAX_RATE_DAYS} days"
            )
        if (unit in ("hour", "day")) != (number == 1):
            raise ConfigurationError(f"--schedule {text!r}: write rate(1 day), rate(2 days), rate(12 hours)")
        return text
    cron = _CRON.fullmatch(text)
    if cron and len(cron.group(1).split()) == 6:
        return text
    raise ConfigurationError(
        f"--schedule {text!r} is not a Secrets Manager schedule: use rate(30 days), rate(12 hours) or a "
        "six-field cron(...) expression such as cron(0 4 ? * SUN *)"
    )


def check_values(*, rotation_lambda: str | None, schedule: str | None, grace: str, ttl: str) -> None:
    """The onboard values that are wrong whatever AWS says (ConfigurationError naming the flag): the
    rotation function and schedule go together, the schedule's grammar, the grace and ttl ranges."""
    if bool(rotation_lambda) != bool(schedule):
        raise ConfigurationError("--rotation-lambda and --schedule go together: give both or neither")
    if schedule:
        validate_schedule(schedule)
    config.parse_duration(grace, "--grace", minimum=config.GRACE_RANGE[0], maximum=config.GRACE_RANGE[1])
    config.parse_duration(ttl, "--ttl", minimum=config.TTL_RANGE[0], maximum=config.TTL_RANGE[1])


def check_rotation_function(lam: Any, arn: str) -> None:
    """The rotation function exists and its resource policy lets Secrets Manager invoke it."""
    import json

    try:
        lam.get_function(FunctionName=arn)
    except Exception as exc:
        code = aws_error_code(exc)
        if code == "ResourceNotFoundException":
            raise ConfigurationError(
                f"--rotation-lambda {arn}: no such function (use the RotateFunctionArn output of the "
                "regcred stack)"
            ) from None
        raise ConfigurationError(f"--rotation-lambda {arn}: lambda:GetFunction failed ({code})") from None
    try:
        policy = json.loads(lam.get_policy(FunctionName=arn).get("Policy") or "{}")
    except Exception as exc:
        if aws_error_code(exc) != "ResourceNotFoundException":
            raise ConfigurationError(
                f"--rotation-lambda {arn}: lambda:GetPolicy failed ({aws_error_code(exc)})"
            ) from None
        policy = {}
    for statement in policy.get("Statement") or []:
        principal = statement.get("Principal") or {}
        service = principal.get("Service") if isinstance(principal, dict) else None
        services = service if isinstance(service, list) else [service]
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if (
            statement.get("Effect") == "Allow"
            and "secretsmanager.amazonaws.com" in services
            and ({"lambda:InvokeFunction", "lambda:*"} & set(actions))
        ):
            return
    raise ConfigurationError(
        f"--rotation-lambda {arn}: Secrets Manager may not invoke it (no resource policy statement allows "
        "secretsmanager.amazonaws.com lambda:InvokeFunction). The regcred stack's RotateFunction has one; "
        "for "
        f"another function: aws lambda add-permission --function-name {arn} --statement-id SecretsManager "
        "--action lambda:InvokeFunction --principal secretsmanager.amazonaws.com"
    )


# The flag each configuration tag comes from, for messages about a secret that is being onboarded.
_FLAG_OF_TAG = {
    config.REGISTRY: "--registry",
    config.API: "--api",
    config.REALM_HOSTS: "--realm-host",
    config.IMAGES: "--image",
    config.TTL: "--ttl",
    config.GRACE: "--grace",
    config.ORG: "--org",
    config.ADMIN_SECRET: "--admin-secret",
    config.PROVIDER: "--provider",
}
_TAG_PHRASE = re.compile(r"(?:the )?(regcred:[a-z-]+)(?: tag)?")


def in_flags(message: str) -> str:
    """A configuration message with each tag named by the onboard flag that sets it."""

    def flag(match: re.Match[str]) -> str:
        return _FLAG_OF_TAG.get(match.group(1), match.group(0))

    return _TAG_PHRASE.sub(flag, message)


@dataclass(frozen=True)
class OnboardRequest:
    """What the operator asked for (the ``regcred onboard`` flags)."""

    name: str
    provider: str
    admin_secret: str
    images: tuple[str, ...] = ()
    registry: str | None = None
    api: str | None = None
    org: str | None = None
    realm_hosts: tuple[str, ...] = ()
    grace: str = "24h"
    ttl: str = "90d"
    kms_key_id: str | None = None
    rotation_lambda: str | None = None
    schedule: str | None = None
    username: str | None = None  # import this user's token instead of minting
    password: str | None = field(default=None, repr=False)

    def tags(self) -> dict[str, str]:
        tags = {
            config.MANAGED: "true",
            config.PROVIDER: self.provider,
            config.ADMIN_SECRET: self.admin_secret,
            config.GRACE: self.grace,
            config.TTL: self.ttl,
        }
        optional = {
            config.API: self.api,
            config.REGISTRY: self.registry,
            config.ORG: self.org,
            config.REALM_HOSTS: " ".join(self.realm_hosts),
            config.IMAGES: " ".join(self.images),
        }
        tags.update({k: v for k, v in optional.items() if v})
        return tags

    def resume_command(self) -> str:
        rotation = (
            f" --rotation-lambda {self.rotation_lambda} --schedule '{self.schedule}'" if self.schedule else ""
        )
        return f"regcred onboard {self.name} --resume{rotation}"


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
        if request.provider not in providers.KNOWN:
            raise ConfigurationError(
                f"--provider {request.provider!r}: known providers are {', '.join(providers.KNOWN)}"
            )
        check_values(
            rotation_lambda=request.rotation_lambda,
            schedule=request.schedule,
            grace=request.grace,
            ttl=request.ttl,
        )
        tags = existing.tags if existing is not None else request.tags()
        state = existing or SecretState(
            arn=request.name, name=request.name, tags=tags, versions={}, rotation_enabled=False
        )
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
        self.say("checking the admin secret")
        providers.read_admin_credential(
            self.store,
            ctx.cfg.admin_secret or request.admin_secret,
            secret_name=request.name,
            require_binding=False,
        )
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
            if request.username is None
            else None
        )
        if bind:
            plan.append(f"would {bind}")
        if request.username is None:
            # A read at the vendor proves the admin credential and the API; minting is what is left.
            admin = providers.read_admin_credential(
                self.store, request.admin_secret, secret_name=request.name, require_binding=False
            )
            self.say("checking the admin credential at the vendor")
            provider = providers.build(
                ctx.cfg, ctx.route, admin, transport=self.rotator.transport, deadline=ctx.deadline
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
        if request.rotation_lambda:
            plan.append(f"would enable rotation by {request.rotation_lambda} on {request.schedule}")
        return OnboardResult(
            request.name, None, ctx.route.registry_name, tuple(images), None, False, dry_run=True, plan=plan
        )

    def _credential(self, request: OnboardRequest, ctx: StepContext) -> tuple[SecretValue, Any]:
        now = self._now()
        if request.username is not None:
            assert request.password is not None
            value = SecretValue(
                username=request.username,
                password=request.password,
                registry=ctx.route.registry_name,
                provider=request.provider,
                issued_at=now,
            )
            return value, None
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
        self._finish(request, arn, created=True, bind=request.username is not None, enable=True)
        self.leave("")
        return OnboardResult(
            request.name,
            arn,
            ctx.route.registry_name,
            tuple(images),
            value.token_id,
            bool(request.rotation_lambda),
        )

    def _finish(self, request: OnboardRequest, arn: str, *, created: bool, bind: bool, enable: bool) -> None:
        """The steps after CreateSecret: bind the admin secret, enable rotation."""
        what = f"secret {request.name} was {'created' if created else 'found'} and its credential pulls"
        try:
            if bind:
                self._bind_admin(request.admin_secret, request.name, dry_run=False)
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
        plan: list[str] = []
        if dry_run:
            bind = self._bind_admin(ctx.cfg.admin_secret or request.admin_secret, existing.name, dry_run=True)
            plan += [f"would {bind}"] if bind else []
            plan += (
                [f"would enable rotation by {request.rotation_lambda} on {request.schedule}"]
                if enable
                else []
            )
            plan = plan or ["nothing to do: the secret is onboarded"]
        else:
            self._finish(request, existing.arn, created=False, bind=True, enable=enable)
        return OnboardResult(
            existing.name,
            existing.arn,
            ctx.route.registry_name,
            tuple(images),
            current.token_id,
            existing.rotation_enabled or enable,
            dry_run=dry_run,
            resumed=True,
            plan=plan,
        )


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
