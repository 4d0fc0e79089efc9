"""Read-only commands on managed secrets: ``check``, ``show`` and ``list``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..config import PROMOTED_AT, PROVIDER, VALID_AT
from ..errors import RegcredError
from ..registry import ImageRef, PullCheck, PullStatus
from ..registry.results import FAILING
from ..secret import SecretValue
from ..store import CURRENT, PENDING, PREVIOUS, STAGES, SecretState
from ..timefmt import format_time
from .base import SECRET_HELP, CommandError, Context, ExitCode, Status, add_command, table

_FAILING = FAILING | {PullStatus.OPEN}


def pull_exit_code(result: PullCheck) -> ExitCode:
    """0 every image pulls; 1 something speaks against the credential or an image; 2 could not check."""
    if result.ok:
        return ExitCode.OK
    if any(image.status in _FAILING for image in result.images):
        return ExitCode.FAILED
    return ExitCode.UNCHECKED


def pull_status(code: ExitCode) -> Status:
    return {ExitCode.OK: Status.OK, ExitCode.FAILED: Status.FAILED}.get(code, Status.UNCHECKED)


def pull_verdict(stage: str, result: PullCheck) -> str:
    """One line in the user's words: an unreachable registry is never worded as a credential that fails."""
    code = pull_exit_code(result)
    if code is ExitCode.OK:
        return f"{stage} pulls every image"
    if code is ExitCode.FAILED:
        if result.unproven:
            return (
                f"{stage} proves nothing: every image is served without credentials (probe a private image)"
            )
        return f"{stage} cannot pull: {result.summary()}"
    return (
        f"could not check {stage} (the registry was unreachable or rate limited, the credential was not "
        "judged)"
    )


def pull_table(result: PullCheck) -> str:
    rows = [("IMAGE", "RESULT", "DETAIL")]
    for image in result.images:
        detail = image.detail
        if image.ratelimit_remaining:
            detail = f"{detail} (ratelimit-remaining {image.ratelimit_remaining})".strip()
        rows.append((image.image, image.status.value, detail))
    return table(rows)


def pull_json(result: PullCheck) -> list[dict[str, Any]]:
    return [
        {
            "image": i.image,
            "status": i.status.value,
            "detail": i.detail,
            "http_status": i.http_status,
            "ratelimit_remaining": i.ratelimit_remaining,
        }
        for i in result.images
    ]


def _when(moment: datetime | None) -> str | None:
    return format_time(moment) if moment else None


# -- check -----------------------------------------------------------------------------------------


def cmd_check(ctx: Context) -> int:
    """Prove that a version of a secret can pull its images."""
    from ..rotation import Rotator

    args = ctx.args
    store = ctx.store()
    rotator = Rotator(store, batch=ctx.client("batch"), deployment=ctx.deployment(), step_seconds=ctx.timeout)
    state = store.describe(args.secret)
    if state.holder(args.stage) is None:
        raise CommandError(
            f"secret {state.name} has no {args.stage} version", ExitCode.FAILED, secret=state.name
        )
    value = store.read(state.arn, stage=args.stage)
    rotator_ctx = rotator.context(state)
    registry = rotator_ctx.route.registry_name
    if args.image:
        try:
            refs = [ImageRef.parse(i, default_registry=registry) for i in args.image]
        except RegcredError as exc:
            raise CommandError(f"--image: {exc}", ExitCode.USAGE) from None
        off = [str(r) for r in refs if not rotator_ctx.route.names_registry(r.registry)]
        if off:
            raise CommandError(f"--image {off[0]} is not on the secret's registry {registry}", ExitCode.USAGE)
        images = [str(r) for r in refs]
    else:
        images = list(rotator.probe_images(rotator_ctx).images)
    ctx.progress(f"checking {len(images)} image(s) on {registry}")
    result = rotator.check(rotator_ctx, value, images)
    code = pull_exit_code(result)
    ctx.emit(
        {
            "secret": state.name,
            "arn": state.arn,
            "stage": args.stage,
            "registry": registry,
            "token_id": value.token_id,
            "expires_at": _when(value.expires_at),
            "ok": result.ok,
            "status": pull_status(code),
            "exit_code": int(code),
            "images": pull_json(result),
        },
        f"{state.name} {args.stage} on {registry} (token {value.token_id or 'imported'})\n"
        f"{pull_table(result)}\n{pull_verdict(args.stage, result)}",
    )
    return int(code)


# -- show ------------------------------------------------------------------------------------------


def cmd_show(ctx: Context) -> int:
    """Staging labels and per-version metadata, never the password."""
    store = ctx.store()
    state = store.describe(ctx.args.secret)
    versions: list[dict[str, Any]] = []
    for version_id, stages in sorted(state.versions.items(), key=lambda kv: kv[1]):
        labelled = [s for s in stages if s in STAGES]
        if not labelled:
            continue
        try:
            value: SecretValue | None = store.read(state.arn, stage=labelled[0], version_id=version_id)
            problem = None
        except RegcredError as exc:
            value, problem = None, str(exc)
        versions.append(
            {
                "version_id": version_id,
                "stages": labelled,
                "username": value.username if value else None,
                "token_id": value.token_id if value else None,
                "expires_at": _when(value.expires_at) if value else None,
                "problem": problem,
            }
        )
    rows = [("STAGES", "VERSION", "USER", "TOKEN", "EXPIRES")]
    for v in versions:
        rows.append(
            (
                ",".join(v["stages"]),
                v["version_id"],
                v["username"] or "-",
                v["token_id"] or "-",
                v["expires_at"] or "-",
            )
        )
    ctx.emit(
        {"secret": state.name, "arn": state.arn, "status": Status.OK, "versions": versions, "exit_code": 0},
        table(rows),
    )
    return 0


# -- list ------------------------------------------------------------------------------------------


def _describe_for_list(store: Any, state: SecretState, deployment: Any, now: datetime) -> dict[str, Any]:
    from ..routing import route_of

    row: dict[str, Any] = {
        "secret": state.name,
        "arn": state.arn,
        "provider": state.tags.get(PROVIDER),
        "registry": None,
        "rotation_enabled": state.rotation_enabled,
        # The sweep's last proof; before any sweep, the proof at promotion.
        "valid_as_of": state.tags.get(VALID_AT) or state.tags.get(PROMOTED_AT),
        "expires_at": None,
        "expires_in_s": None,
        "last_rotated": _when(state.last_rotated) if isinstance(state.last_rotated, datetime) else None,
        "previous": "none",
        "problem": None,
    }
    try:
        cfg = state.config
        row["registry"] = route_of(cfg, deployment).registry_name
    except RegcredError as exc:
        row["problem"] = str(exc)
        return row
    try:
        current = store.read(state.arn, stage=CURRENT)
    except RegcredError as exc:
        row["problem"] = str(exc)
        return row
    if current.expires_at:
        row["expires_at"] = format_time(current.expires_at)
        row["expires_in_s"] = int((current.expires_at - now).total_seconds())
    row["valid_as_of"] = row["valid_as_of"] or _when(current.issued_at)
    previous_id = state.holder(PREVIOUS)
    if previous_id:
        try:
            previous = store.read(state.arn, stage=PREVIOUS, version_id=previous_id)
        except RegcredError:
            row["previous"] = "unreadable"
        else:
            retired = not previous.token_id or previous.token_id in (cfg.retired_token_id, current.token_id)
            row["previous"] = "retired" if retired else "live"
    if state.holder(PENDING) not in (None, state.holder(CURRENT)):
        row["pending"] = True
    return row


def _expires_in(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0:
        return "expired"
    days, rest = divmod(seconds, 86400)
    return f"{days}d{rest // 3600}h" if days else f"{rest // 3600}h{rest % 3600 // 60}m"


def cmd_list(ctx: Context) -> int:
    """Every managed secret, with its health as the secret itself records it."""
    store = ctx.store()
    deployment = ctx.deployment()
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for state in store.list_managed(page_size=ctx.args.page_size):
        if not state.managed or state.deleted:
            continue
        ctx.progress(f"{len(rows) + 1} secrets read: {state.name}")
        rows.append(_describe_for_list(store, state, deployment, now))
    lines = [("SECRET", "PROVIDER", "REGISTRY", "VALID AS OF", "EXPIRES IN", "PREVIOUS", "LAST ROTATED")]
    for r in rows:
        lines.append(
            (
                r["secret"],
                r["provider"] or "-",
                r["registry"] or "-",
                r["valid_as_of"] or "-",
                _expires_in(r["expires_in_s"]),
                r["previous"],
                (r["last_rotated"] or "-") + (f"  ({r['problem']})" if r["problem"] else ""),
            )
        )
    return _emit_secrets(ctx, rows, lines)


def _emit_secrets(ctx: Context, rows: list[dict[str, Any]], lines: Sequence[Sequence[str]]) -> int:
    """The answer of `list` and `status` for every managed secret: ``rows`` in JSON, ``lines`` (a header
    and one line per row) as a table in text."""
    ctx.emit(
        {"status": Status.OK, "count": len(rows), "secrets": rows, "exit_code": 0},
        table(lines)
        if rows
        else "no managed secrets (tagged regcred:managed=true) in this account and region",
    )
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return value


def register(sub: Any) -> None:
    """Register ``check``, ``show`` and ``list``."""
    check = add_command(
        sub,
        "check",
        cmd_check,
        help="prove a secret version pulls its images",
        description="Log in to the secret's registry with one version's credential, through the registry's "
        "/v2/ token flow, and look up each probe image's manifest (HEAD: it does not count as a pull).\n"
        "Exit 0 when every image pulls, 1 when the credential or an image fails, 2 when the registry could "
        "not be checked.",
        examples=[
            "regcred check batch/dockerhub",
            "regcred check batch/dockerhub --stage AWSPREVIOUS --image acme/app:1 --output json",
        ],
    )
    check.add_argument("secret", metavar="SECRET", help=SECRET_HELP)
    check.add_argument("--stage", default=CURRENT, choices=STAGES, help="version to check (AWSCURRENT)")
    check.add_argument(
        "--image",
        action="append",
        default=[],
        help="REPO:TAG to check instead of the probe images (repeatable)",
    )

    show = add_command(
        sub,
        "show",
        cmd_show,
        help="staging labels and token ids of a secret (no passwords)",
        description="The versions that carry AWSCURRENT, AWSPENDING or AWSPREVIOUS, with username, token id "
        "and expiry. Never a password.",
        examples=["regcred show batch/dockerhub"],
    )
    show.add_argument("secret", metavar="SECRET", help=SECRET_HELP)

    listing = add_command(
        sub,
        "list",
        cmd_list,
        help="every managed secret and its health",
        description="Every secret tagged regcred:managed=true: provider, registry, when its credential was "
        "last proven (valid as of), when it expires, when it was last rotated, and whether the previous "
        "credential is retired.",
        examples=["regcred list", "regcred list --output json | jq '.secrets[].secret'"],
    )
    listing.add_argument(
        "--page-size", type=_positive, default=100, metavar="N", help="secrets per ListSecrets page (100)"
    )


__all__ = ["cmd_check", "cmd_list", "cmd_show", "pull_exit_code", "register"]
