"""``regcred``: the operator CLI. Works against AWS, or the local stack when ``.stack/env`` is sourced."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

# Quiet library logs unless asked; set before the library builds its Logger.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from . import aws, config, labels, providers
from .config import SecretConfig
from .diagnose import add_diagnose_parser
from .errors import RegcredError
from .failures import add_classify_parser
from .providers import dockerhub
from .registry import ImageRef, PullCheck, PullStatus
from .registry.results import FAILING
from .revocation import revoke_minted
from .rotation import CURRENT, PENDING, PREVIOUS, Rotator, SecretState, Step, stage_holder
from .routing import Deployment
from .secret import SecretValue, render

EXIT_OK, EXIT_FAIL, EXIT_UNCHECKED = 0, 1, 2
_FAILING = FAILING | {PullStatus.OPEN}


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(f"regcred: {text}\n")


def _exit_code(result: PullCheck) -> int:
    if result.ok:
        return EXIT_OK
    if any(image.status in _FAILING for image in result.images):
        return EXIT_FAIL
    return EXIT_UNCHECKED


def _table(result: PullCheck) -> str:
    rows = [("IMAGE", "RESULT", "DETAIL")]
    for image in result.images:
        detail = image.detail
        if image.ratelimit_remaining:
            detail = f"{detail} (ratelimit-remaining {image.ratelimit_remaining})".strip()
        rows.append((image.image, image.status.value, detail))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in rows)


# -- onboard ------------------------------------------------------------------------------------


def _deployment(args: argparse.Namespace) -> Deployment:
    return Deployment.from_env(
        extra_registry_hosts=getattr(args, "allow_registry_host", None) or (),
        extra_api_hosts=getattr(args, "allow_api_host", None) or (),
    )


def _bind_admin(sm: Any, admin_secret: str, name: str) -> None:
    """Mark the admin secret and let it serve ``name`` (the operator named it for this secret)."""
    meta = sm.describe_secret(SecretId=admin_secret)
    tags = config.tags_to_dict(meta.get("Tags"))
    patterns = tags.get(config.ADMIN_FOR, "")
    update = []
    if tags.get(config.ADMIN_MARK, "").lower() != "true":
        update.append({"Key": config.ADMIN_MARK, "Value": "true"})
    if not config.admin_serves(patterns, name):
        value = f"{patterns} {name}".strip()
        if len(value) > 256:
            raise RegcredError(
                f"the {config.ADMIN_FOR} tag of {admin_secret} would be longer than 256 characters: replace "
                "its names with a prefix ending in '*' (e.g. batch/*)"
            )
        update.append({"Key": config.ADMIN_FOR, "Value": value})
    if update:
        sm.tag_resource(SecretId=admin_secret, Tags=update)


def cmd_onboard(args: argparse.Namespace) -> int:
    """Mint (or import) the first credential, prove it pulls, create the managed secret."""
    sm = aws.client("secretsmanager")
    if args.provider not in providers.KNOWN:
        raise RegcredError(f"unknown provider {args.provider!r}; known: {', '.join(providers.KNOWN)}")
    if bool(args.rotation_lambda) != bool(args.schedule):
        raise RegcredError("--rotation-lambda and --schedule go together")
    config.parse_duration(args.grace, "--grace", minimum=config.GRACE_RANGE[0], maximum=config.GRACE_RANGE[1])
    config.parse_duration(args.ttl, "--ttl", minimum=config.TTL_RANGE[0], maximum=config.TTL_RANGE[1])
    tags = {
        config.MANAGED: "true",
        config.PROVIDER: args.provider,
        config.ADMIN_SECRET: args.admin_secret,
        config.GRACE: args.grace,
        config.TTL: args.ttl,
    }
    if args.api:
        tags[config.API] = args.api
    if args.registry:
        tags[config.REGISTRY] = args.registry
    if args.org:
        tags[config.ORG] = args.org
    if args.realm_host:
        tags[config.REALM_HOSTS] = " ".join(args.realm_host)
    if args.image:
        tags[config.IMAGES] = " ".join(args.image)
    cfg = SecretConfig.from_tags(tags, args.name)  # validates --grace and --ttl together
    if not args.image:
        raise RegcredError("name at least one --image REPO:TAG that the credential must pull")
    rotator = Rotator(sm, deployment=_deployment(args), require_rotation_enabled=False)
    state = SecretState(arn=args.name, name=args.name, tags=tags, versions={}, rotation_enabled=False)
    ctx = rotator.context(state)
    images = list(rotator.probe_images(ctx).images)
    now = datetime.now(UTC)
    minted: str | None = None
    provider = None
    if args.username:
        value = SecretValue(
            username=args.username,
            password=sys.stdin.readline().strip(),
            registry=ctx.route.registry_name,
            provider=args.provider,
            issued_at=now,
        )
    else:
        _bind_admin(sm, args.admin_secret, args.name)
        provider = rotator._build_provider(ctx)
        issued = provider.issue(
            labels.label_for(args.name, f"onboard-{uuid.uuid4()}", max_length=provider.spec.label_max),
            now + timedelta(seconds=cfg.ttl_s),
        )
        minted = issued.token_id
        value = SecretValue(
            username=issued.username,
            password=issued.password,
            registry=ctx.route.registry_name,
            provider=args.provider,
            token_id=issued.token_id,
            expires_at=issued.expires_at,
            issued_at=now,
        )
    try:
        result = rotator.check(ctx, value, images, prove=True)
        if not result.ok:
            _out(_table(result))
            raise RegcredError(
                "the credential cannot pull the images above (or none of them needed it); nothing was stored"
            )
        create: dict[str, Any] = {
            "Name": args.name,
            "Description": f"registry credential for {ctx.route.registry_name}, rotated by regcred",
            "SecretString": render(value),
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if args.kms_key_id:
            create["KmsKeyId"] = args.kms_key_id
        try:
            arn: str = sm.create_secret(**create)["ARN"]
        except sm.exceptions.ResourceExistsException:
            raise RegcredError(f"secret {args.name} exists already; use regcred rotate {args.name}") from None
    except BaseException:
        if minted and provider is not None:
            revoke_minted(provider, minted, args.name)  # nothing stored it: it must not stay alive
        raise
    if args.username:
        _bind_admin(sm, args.admin_secret, args.name)
    if args.rotation_lambda:
        sm.rotate_secret(
            SecretId=arn,
            RotationLambdaARN=args.rotation_lambda,
            RotationRules={"ScheduleExpression": args.schedule},
            RotateImmediately=False,
        )
    _out(arn)
    return EXIT_OK


# -- check --------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """Prove that a version of a secret can pull its images."""
    sm = aws.client("secretsmanager")
    rotator = Rotator(sm, batch=aws.client("batch"), deployment=_deployment(args))
    state = rotator.describe(args.secret)
    if stage_holder(state.versions, args.stage) is None:
        raise RegcredError(f"secret {state.name} has no {args.stage} version")
    value = rotator.read(state.arn, stage=args.stage)
    ctx = rotator.context(state)
    registry = ctx.route.registry_name
    if args.image:
        refs = [ImageRef.parse(i, default_registry=registry) for i in args.image]
        off = [str(r) for r in refs if not ctx.route.names_registry(r.registry)]
        if off:
            raise RegcredError(f"--image {off[0]} is not on the secret's registry {registry}")
        images = [str(r) for r in refs]
    else:
        images = list(rotator.probe_images(ctx).images)
    result = rotator.check(ctx, value, images)
    code = _exit_code(result)
    if args.json:
        _out(
            json.dumps(
                {
                    "secret": state.name,
                    "stage": args.stage,
                    "registry": registry,
                    "token_id": value.token_id,
                    "expires_at": value.expires_at.isoformat() if value.expires_at else None,
                    "ok": result.ok,
                    "exit_code": code,
                    "images": [
                        {
                            "image": i.image,
                            "status": i.status.value,
                            "detail": i.detail,
                            "http_status": i.http_status,
                            "ratelimit_remaining": i.ratelimit_remaining,
                        }
                        for i in result.images
                    ],
                }
            )
        )
    else:
        _out(f"{state.name} {args.stage} on {registry} (token {value.token_id or 'imported'})")
        _out(_table(result))
    return code


# -- rotate / retire ----------------------------------------------------------------------------


def cmd_rotate(args: argparse.Namespace) -> int:
    """Rotate now: in-process exactly as Secrets Manager would (--local), or through RotateSecret."""
    sm = aws.client("secretsmanager")
    if not args.local:
        response = sm.rotate_secret(SecretId=args.secret, RotateImmediately=True)
        _out(f"rotation started: version {response.get('VersionId')}")
        return EXIT_OK
    rotator = Rotator(
        sm, batch=aws.client("batch"), deployment=_deployment(args), require_rotation_enabled=False
    )
    token = str(uuid.uuid4())
    for step in Step:
        outcome = rotator.run(args.secret, token, step)
        _out(f"{step.value:<13} {outcome}")
    value = rotator.read(args.secret, stage=CURRENT)
    _out(f"AWSCURRENT is version {token} (token {value.token_id})")
    return EXIT_OK


def cmd_retire(args: argparse.Namespace) -> int:
    """Revoke the AWSPREVIOUS credential if its grace period is over and AWSCURRENT pulls."""
    sm = aws.client("secretsmanager")
    outcome = Rotator(sm, batch=aws.client("batch"), deployment=_deployment(args)).retire_previous(
        args.secret
    )
    _out(outcome.value)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """Staging labels and per-version metadata, never the password."""
    sm = aws.client("secretsmanager")
    rotator = Rotator(sm, deployment=Deployment())
    state = rotator.describe(args.secret)
    for version_id, stages in sorted(state.versions.items(), key=lambda kv: kv[1]):
        labelled = [s for s in stages if s in (CURRENT, PENDING, PREVIOUS)]
        if not labelled:
            continue
        value = rotator.read(state.arn, stage=labelled[0], version_id=version_id)
        expires = value.expires_at.isoformat() if value.expires_at else "-"
        _out(
            f"{','.join(labelled):<12} {version_id}  user={value.username} token={value.token_id or '-'} "
            f"expires={expires}"
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="regcred", description=__doc__)
    parser.add_argument(
        "--allow-registry-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a registry or token realm host credentials may be sent to, besides the providers' own "
        "(also REGCRED_ALLOWED_REGISTRY_HOSTS)",
    )
    parser.add_argument(
        "--allow-api-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a vendor API host the admin credential may be sent to (also REGCRED_ALLOWED_API_HOSTS)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    onboard = sub.add_parser("onboard", help="create a managed secret with a fresh, proven credential")
    onboard.add_argument("name")
    onboard.add_argument("--provider", required=True, choices=providers.KNOWN)
    onboard.add_argument("--admin-secret", required=True, help="secret holding the vendor admin identity")
    onboard.add_argument(
        "--registry",
        help=f"registry host, one the deployment allows (default {dockerhub.DEFAULT_REGISTRY.netloc})",
    )
    onboard.add_argument(
        "--api", help=f"vendor API origin, one the deployment allows (default {dockerhub.DEFAULT_API})"
    )
    onboard.add_argument("--image", action="append", default=[], help="REPO:TAG the credential must pull")
    onboard.add_argument("--org", help="Docker Hub organization: mint organization access tokens")
    onboard.add_argument("--realm-host", action="append", default=[], help="extra trusted token realm host")
    onboard.add_argument("--username", help="import this username's token from stdin instead of minting")
    onboard.add_argument("--grace", default="24h", help="how long the previous credential lives (24h)")
    onboard.add_argument("--ttl", default="90d", help="lifetime of minted tokens (90d)")
    onboard.add_argument("--kms-key-id")
    onboard.add_argument("--rotation-lambda", help="ARN of the deployed rotate function")
    onboard.add_argument("--schedule", help="rotation schedule, e.g. 'rate(30 days)'")
    onboard.set_defaults(func=cmd_onboard)

    check = sub.add_parser("check", help="prove a secret version pulls its images (exit 0 / 1 / 2)")
    check.add_argument("secret")
    check.add_argument("--stage", default=CURRENT, choices=(CURRENT, PENDING, PREVIOUS))
    check.add_argument("--image", action="append", default=[])
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)

    rotate = sub.add_parser("rotate", help="rotate now")
    rotate.add_argument("secret")
    rotate.add_argument("--local", action="store_true", help="drive the four steps in this process")
    rotate.set_defaults(func=cmd_rotate)

    retire = sub.add_parser("retire", help="revoke AWSPREVIOUS once its grace period is over")
    retire.add_argument("secret")
    retire.set_defaults(func=cmd_retire)

    show = sub.add_parser("show", help="staging labels and token ids of a secret (no passwords)")
    show.add_argument("secret")
    show.set_defaults(func=cmd_show)

    add_classify_parser(sub)
    add_diagnose_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``regcred`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except RegcredError as exc:
        _err(str(exc))
        return EXIT_UNCHECKED if args.command == "check" else EXIT_FAIL
    except Exception as exc:  # botocore errors: say which call failed, never a value
        name = type(exc).__name__
        _err(f"{name}: {exc}" if "botocore" in type(exc).__module__ else f"unexpected {name}")
        return EXIT_UNCHECKED if args.command == "check" else EXIT_FAIL
    return code


if __name__ == "__main__":
    raise SystemExit(main())
