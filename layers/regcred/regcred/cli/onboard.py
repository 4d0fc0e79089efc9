"""``regcred onboard``: the flags, the token prompt, and the report. What it does is
`regcred.onboarding.Onboarding`."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import config, providers
from ..errors import ConfigurationError
from ..onboarding import OnboardIncomplete, Onboarding, OnboardRequest, check_values
from .base import CommandError, Context, ExitCode, Status, add_command, err, read_token


def _settings(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The provider settings given as flags (``--<setting>``); one the provider does not declare is a usage
    error."""
    given = {
        name: value for name in _setting_names() if (value := getattr(args, _dest(name), None)) is not None
    }
    if args.provider and given:
        declared = {s.name for s in providers.spec_for(args.provider).settings}
        stray = sorted(set(given) - declared)
        if stray:
            flags = ", ".join(f"--{n}" for n in stray)
            accepted = ", ".join(f"--{n}" for n in sorted(declared)) or "none"
            raise CommandError(
                f"{flags}: not a setting of the {args.provider} provider (it takes: {accepted})",
                ExitCode.USAGE,
            )
    return tuple(given.items())


def _dest(name: str) -> str:
    return "setting_" + name.replace("-", "_")


def _setting_names() -> list[str]:
    """Every provider setting's name, once (the ``--<name>`` flags of onboard)."""
    return list(dict.fromkeys(s.name for p in providers.plugins().values() for s in p.spec.settings))


def _request(ctx: Context) -> OnboardRequest:
    args = ctx.args
    return OnboardRequest(
        name=args.name,
        provider=args.provider,
        admin_secret=args.admin_secret,
        images=tuple(args.image),
        registry=args.registry,
        api=args.api,
        realm_hosts=tuple(args.realm_host),
        grace=args.grace,
        ttl=args.ttl,
        kms_key_id=args.kms_key_id,
        rotation_lambda=args.rotation_lambda,
        schedule=args.schedule,
        username=args.username,
        password=read_token(f"token for {args.username} (not echoed): ")
        if args.username is not None
        else None,
        settings=_settings(args),
        ecr_mirror=args.ecr_mirror,
    )


def _check_flags(args: argparse.Namespace) -> None:
    """Flag values that are wrong whatever AWS says: usage errors (exit 64), found before any AWS call."""
    try:
        check_values(
            rotation_lambda=args.rotation_lambda,
            schedule=args.schedule,
            grace=args.grace,
            ttl=args.ttl,
            ecr_mirror=args.ecr_mirror,
            name=args.name,
        )
    except ConfigurationError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from None


def _stack_defaults(args: argparse.Namespace) -> None:
    """--registry and --api default to REGCRED_<PROVIDER>_REGISTRY / _API (the local stack's .stack/env sets
    them), so that the README's commands on the stack never reach a real vendor."""
    if args.resume or not args.provider:
        return
    prefix = f"REGCRED_{args.provider.upper()}_"
    for flag, attr in (("REGISTRY", "registry"), ("API", "api")):
        value = os.environ.get(prefix + flag)
        if getattr(args, attr) is None and value:
            setattr(args, attr, value)
            err(f"--{attr} {value} (from {prefix}{flag})")


def cmd_onboard(ctx: Context) -> int:
    """Mint (or import) the first credential, prove it pulls, create the managed secret."""
    args = ctx.args
    if not args.resume and not args.provider:
        raise CommandError("--provider is required (except with --resume)", ExitCode.USAGE)
    if not args.resume:
        try:
            spec = providers.spec_for(args.provider)
        except ConfigurationError as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from None
        if spec.needs_admin and not args.admin_secret:
            raise CommandError(
                f"--admin-secret is required for {spec.name} (except with --resume): the secret holding "
                + ", ".join(f'"{f.name}"' for f in spec.admin_fields),
                ExitCode.USAGE,
            )
        if not spec.needs_admin and args.admin_secret:
            err(
                f"the {spec.name} provider uses no admin secret: --admin-secret {args.admin_secret} is "
                "ignored"
            )
            args.admin_secret = None
        _settings(args)
    _check_flags(args)
    store = ctx.store()
    if args.resume:
        existing = store.describe(args.name)
        args.provider = args.provider or existing.tags.get(config.PROVIDER, "")
        args.admin_secret = args.admin_secret or existing.tags.get(config.ADMIN_SECRET, "")
    onboarding = Onboarding(
        store,
        lambda_client=ctx.client("lambda") if args.rotation_lambda else None,
        deployment=ctx.deployment(),
        say=ctx.progress,
        leave=lambda text: setattr(ctx.progress, "left", text),
        step_seconds=ctx.timeout,
    )
    _stack_defaults(args)
    request = _request(ctx)
    try:
        result = onboarding.run(request, dry_run=args.dry_run, resume=args.resume)
    except OnboardIncomplete as exc:
        from .main import classified

        code, _ = classified(exc.cause) if exc.cause is not None else (ExitCode.FAILED, "")
        raise CommandError(str(exc), code, secret=args.name, secret_created=True, resume=exc.resume) from None
    status = Status.DRY_RUN if result.dry_run else Status.RESUMED if result.resumed else Status.CREATED
    report = {
        "secret": result.name,
        "arn": result.arn,
        "status": status,
        "registry": result.registry,
        "images": list(result.images),
        "token_id": result.token_id,
        "rotation_enabled": result.rotation_enabled,
        "plan": result.plan,
        "ecr_mirror": (
            {"name": result.ecr_mirror, "status": result.mirror_status} if result.ecr_mirror else None
        ),
        "notes": result.notes,
        "exit_code": 0,
    }
    if result.dry_run:
        text = "\n".join([f"dry run: nothing was minted or written for {result.name}", *result.plan])
    elif result.resumed:
        text = "\n".join([f"{result.arn}", *result.plan]) if result.plan else f"{result.arn}"
    else:
        text = f"{result.arn}"
    for note in result.notes:
        err(f"note: {note}")
    ctx.emit(report, text)
    return 0


def register(sub: Any) -> None:
    """Register ``onboard``."""
    p = add_command(
        sub,
        "onboard",
        cmd_onboard,
        help="create a managed secret with a fresh, proven credential",
        description="Mint a credential at the vendor (or import one with --username), prove it pulls the "
        "--image(s) through the registry's /v2/ token flow, create the managed secret, and enable rotation "
        "by the deployed rotate function. Everything that can be checked is checked before anything is "
        "minted.",
        examples=[
            "regcred onboard batch/dockerhub --provider dockerhub --admin-secret admin/dockerhub \\",
            "    --image acme/app:1 --rotation-lambda ARN --schedule 'rate(30 days)'",
            "regcred onboard batch/dockerhub ... --dry-run",
            "regcred onboard batch/dockerhub --resume --rotation-lambda ARN --schedule 'rate(30 days)'",
            "regcred onboard batch/hub-import --provider dockerhub --admin-secret admin/dockerhub \\",
            "    --username alice --image acme/app:1    # import alice's token (prompted) instead of minting",
            "regcred onboard batch/dockerhub ... --ecr-mirror ecr-pullthroughcache/docker-hub",
        ],
    )
    p.add_argument("name", metavar="NAME", help="name of the secret to create")
    p.add_argument(
        "--provider", choices=providers.known(), help="the vendor (`regcred providers` lists them)"
    )
    p.add_argument(
        "--admin-secret",
        help="secret holding the vendor admin identity (JSON username/password); not for ghcr or static",
    )
    p.add_argument("--registry", help="registry host, one the deployment allows (default: the provider's)")
    p.add_argument("--api", help="vendor API origin, one the deployment allows (default: the provider's)")
    p.add_argument(
        "--image", action="append", default=[], help="REPO:TAG the credential must pull (repeatable)"
    )
    seen: set[str] = set()
    for plugin in providers.plugins().values():
        for setting in plugin.spec.settings:
            if setting.name in seen:
                continue
            seen.add(setting.name)
            users = ", ".join(
                q.spec.name
                for q in providers.plugins().values()
                if any(x.name == setting.name for x in q.spec.settings)
            )
            p.add_argument(
                f"--{setting.name}",
                dest=_dest(setting.name),
                choices=setting.choices or None,
                help=f"{users}: {setting.help} (tag {setting.tag})",
            )
    p.add_argument("--realm-host", action="append", default=[], help="extra trusted token realm host")
    p.add_argument(
        "--username",
        help="import this user's token (prompted without echo, or one line of stdin) instead of minting",
    )
    p.add_argument("--grace", default="24h", help="how long the previous credential lives (24h, 0 to 90d)")
    p.add_argument("--ttl", default="90d", help="lifetime of minted tokens (90d, 1h to 3650d)")
    p.add_argument("--kms-key-id", help="KMS key of the secret (default: Secrets Manager's AWS managed key)")
    p.add_argument("--rotation-lambda", metavar="ARN", help="ARN of the deployed rotate function")
    p.add_argument("--schedule", help="rotation schedule, e.g. 'rate(30 days)' (4 hours to 1000 days)")
    p.add_argument(
        "--ecr-mirror",
        metavar="NAME",
        help="ecr-pullthroughcache/... secret that an ECR pull-through cache rule reads: regcred keeps "
        "AWSCURRENT's username and accessToken in it (created, tagged regcred:mirror-of=NAME, if missing)",
    )
    p.add_argument("--resume", action="store_true", help="finish onboarding a secret that exists already")
    p.add_argument("--dry-run", action="store_true", help="check everything, mint and write nothing")
