"""``status`` (what the sweep last saw, and what it will do next) and ``sweep`` (run it now, here)."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from ..config import PROMOTED_AT, SWEEP, VALID_AT, parse_duration
from ..errors import RegcredError
from ..store import CURRENT, SecretState
from ..sweep import Failure, NextAction, SweepRecord, plan_next
from ..timefmt import format_time
from .base import SECRET_HELP, Context, ExitCode, Status, add_command, table
from .secrets import _describe_for_list, _emit_secrets, _expires_in

DEFAULT_PERIOD = "15m"


def _period(text: str) -> int:
    try:
        return parse_duration(text, "--period", minimum=60, maximum=86400)
    except RegcredError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- status ----------------------------------------------------------------------------------------


def status_row(
    store: Any, state: SecretState, deployment: Any, now: datetime, period_s: int
) -> dict[str, Any]:
    """What `regcred list` shows of a secret, plus the sweep's last record and the next action."""
    from .. import providers

    row = _describe_for_list(store, state, deployment, now)
    record = SweepRecord.parse(state.tags.get(SWEEP))
    row["valid_as_of"] = state.tags.get(VALID_AT) or None
    row["promoted_at"] = state.tags.get(PROMOTED_AT) or None
    row["last_sweep"] = record.as_dict() if record else None
    row["ratelimit_remaining"] = record.ratelimit_remaining if record else None
    row["ratelimit_limit"] = record.ratelimit_limit if record else None
    row["orphans_revoked"] = record.orphans_revoked if record else None
    row["last_failure"] = record.failure if record else None
    row["next_action"], row["next_at"] = None, None
    if row["problem"]:
        row["next_action"] = NextAction.FIX.value
        return row
    cfg = state.config
    try:
        current = store.read(state.arn, stage=CURRENT)
        spec = providers.spec_for(cfg.provider)
    except RegcredError as exc:
        row["problem"], row["next_action"] = str(exc), NextAction.FIX.value
        return row
    # A rejection counts while the credential it was seen on is still the one in AWSCURRENT.
    rejected = (
        record is not None
        and record.failure == Failure.CREDENTIALS_REJECTED
        and (cfg.promoted_at is None or record.at >= cfg.promoted_at)
    )
    when: datetime | None
    if row.get("pending"):
        action, when = NextAction.WAIT_ROTATION, now
    elif record is not None and record.next_action == NextAction.FIX:
        action, when = NextAction.FIX, now  # the sweep could not use the secret (no probe image, ...)
    else:
        action, when = plan_next(
            cfg,
            now=now,
            period_s=period_s,
            can_mint=spec.can_mint,
            rotation_enabled=state.rotation_enabled,
            rejected=rejected,
            issued_at=current.issued_at,
            expires_at=current.expires_at,
            previous_live=row["previous"] == "live",
        )
    row["next_action"], row["next_at"] = action.value, format_time(when) if when else None
    return row


def _when_text(row: dict[str, Any], now: datetime) -> str:
    action, when = row.get("next_action") or "-", row.get("next_at")
    if not when:
        return action
    return f"{action} {'now' if when <= format_time(now) else 'at ' + when}"


def _ratelimit_text(row: dict[str, Any]) -> str:
    remaining, limit = row.get("ratelimit_remaining"), row.get("ratelimit_limit")
    if remaining is None:
        return "-"
    return f"{remaining}/{limit}" if limit is not None else str(remaining)


def cmd_status(ctx: Context) -> int:
    """Every managed secret (or one) with what the sweep last saw and what it will do next."""
    args = ctx.args
    store = ctx.store()
    deployment = ctx.deployment()
    now = datetime.now(UTC)
    if args.secret:
        states = [store.describe(args.secret)]
    else:
        states = [s for s in store.list_managed() if s.managed and not s.deleted]
    rows: list[dict[str, Any]] = []
    for state in states:
        ctx.progress(f"{len(rows) + 1} secrets read: {state.name}")
        rows.append(status_row(store, state, deployment, now, args.period))
    if args.secret:
        row = rows[0]
        sweep = row["last_sweep"] or {}
        lines = [
            f"secret:          {row['secret']}",
            f"provider:        {row['provider'] or '-'} on {row['registry'] or '-'}",
            f"valid as of:     {row['valid_as_of'] or 'never proven by a sweep'}",
            f"expires in:      {_expires_in(row['expires_in_s'])}"
            + (f" ({row['expires_at']})" if row["expires_at"] else ""),
            f"last rotated:    {row['last_rotated'] or '-'} (promoted {row['promoted_at'] or '-'})",
            f"previous:        {row['previous']}"
            + (f" (last sweep: {sweep['previous']})" if sweep.get("previous") else ""),
            f"last sweep:      {sweep.get('at') or 'none yet'}",
            f"rate limit:      {_ratelimit_text(row)}",
            f"orphans revoked: {row['orphans_revoked'] if row['orphans_revoked'] is not None else '-'}",
            f"last failure:    {row['last_failure'] or '-'}",
            f"next:            {_when_text(row, now)}",
        ]
        if row["problem"]:
            lines.append(f"problem:         {row['problem']}")
        ctx.emit({**row, "status": Status.OK, "exit_code": 0}, "\n".join(lines))
        return 0
    lines_t = [("SECRET", "VALID AS OF", "EXPIRES IN", "RATE LIMIT", "PREVIOUS", "LAST FAILURE", "NEXT")]
    for r in rows:
        lines_t.append(
            (
                r["secret"],
                r["valid_as_of"] or "-",
                _expires_in(r["expires_in_s"]),
                _ratelimit_text(r),
                r["previous"],
                r["last_failure"] or "-",
                _when_text(r, now) + (f"  ({r['problem']})" if r["problem"] else ""),
            )
        )
    return _emit_secrets(ctx, rows, lines_t)


# -- sweep -----------------------------------------------------------------------------------------


def _drive_rotation(ctx: Context) -> Any:
    """RotateSecret's work, in this process: the four steps, as `regcred rotate --local` runs them."""
    from ..rotation import Rotator, Step

    def start(arn: str) -> str:
        rotator = Rotator(
            ctx.store(),
            batch=ctx.client("batch"),
            deployment=ctx.deployment(),
            step_seconds=ctx.timeout,
            require_rotation_enabled=False,
        )
        token = str(uuid.uuid4())
        for step in Step:
            rotator.run(arn, token, step)
        return token

    return start


def cmd_sweep(ctx: Context) -> int:
    """One sweep now, in this process, of every managed secret or those named."""
    from ..coalesce import Coalescer
    from ..rotation import Rotator
    from ..sweep import Sweeper, SweepSettings

    args = ctx.args
    settings = SweepSettings(
        period_s=args.period, parallelism=args.parallelism, secret_deadline_s=min(ctx.timeout, 600.0)
    )
    ddb = ctx.client("dynamodb") if args.table else None
    store = ctx.store()
    sweeper = Sweeper(
        store,
        batch=ctx.client("batch"),
        coalescer=Coalescer(ddb, args.table, settings.lease_s),
        settings=settings,
        rotator=Rotator(
            store, batch=ctx.client("batch"), deployment=ctx.deployment(), step_seconds=ctx.timeout
        ),
        start_rotation=_drive_rotation(ctx) if args.local else None,
        rotate_without_schedule=args.local,
    )
    targets = [store.describe(name).arn for name in args.secret] if args.secret else None
    ctx.progress("sweeping " + (f"{len(targets)} secret(s)" if targets else "every managed secret"))
    summary = sweeper.sweep(targets if targets is not None else [s.arn for s in sweeper.managed()])
    reports = sorted(summary.reports, key=lambda r: r.secret)
    counts = summary.counts()
    code = ExitCode.OK
    if any(r.error or r.valid is False for r in reports):
        code = ExitCode.FAILED
    elif any(r.valid is None and not r.claimed_elsewhere for r in reports):
        code = ExitCode.UNCHECKED
    rows = [("SECRET", "VALID", "FAILURE", "ROTATION", "PREVIOUS", "ORPHANS", "NEXT")]
    for r in reports:
        rows.append(
            (
                r.secret,
                "claimed" if r.claimed_elsewhere else {True: "yes", False: "no", None: "-"}[r.valid],
                (r.failure.value if r.failure else "-") + (f" ({r.detail})" if r.detail and r.error else ""),
                r.rotation or "-",
                r.retired or "-",
                str(r.orphans_revoked),
                r.next_action + (f" at {format_time(r.next_at)}" if r.next_at else ""),
            )
        )
    ctx.emit(
        {
            **counts,
            "status": {ExitCode.OK: Status.OK, ExitCode.FAILED: Status.FAILED}.get(code, Status.UNCHECKED),
            "reports": [r.as_dict() for r in reports],
            "exit_code": int(code),
        },
        table(rows) + f"\n{counts['swept']} swept, {counts['invalid']} invalid, {counts['errors']} error(s), "
        f"{counts['rotations_started']} rotation(s) started, {counts['retired']} retired, "
        f"{counts['orphans_revoked']} orphan(s) revoked",
    )
    return int(code)


def _parallelism(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 64):
        raise argparse.ArgumentTypeError("must be a whole number between 1 and 64")
    return int(text)


def _add_period(parser: Any, what: str) -> None:
    parser.add_argument(
        "--period",
        type=_period,
        default=parse_duration(DEFAULT_PERIOD, "--period"),
        metavar="DURATION",
        help=f"{what} ({DEFAULT_PERIOD})",
    )


def register(sub: Any) -> None:
    """Register ``status`` and ``sweep``."""
    status = add_command(
        sub,
        "status",
        cmd_status,
        help="what the sweep last saw of each secret, and what it will do next",
        description="What `regcred list` shows, plus what the last sweep recorded (regcred:valid-at and "
        "regcred:sweep tags): when AWSCURRENT last pulled with a fresh login, the registry's rate-limit "
        "headroom, whether the previous credential was retired, orphans revoked, the last failure class "
        "seen, and the next action (rotate, retire, import, enable_rotation, wait_rotation, fix, check) "
        "and when. Reads only.",
        examples=["regcred status", "regcred status batch/dockerhub --output json | jq .next_action"],
    )
    status.add_argument("secret", metavar="SECRET", nargs="?", help=SECRET_HELP + " (default: every one)")
    _add_period(status, "the deployed sweep's interval, for when it will act")

    sweep = add_command(
        sub,
        "sweep",
        cmd_sweep,
        help="run the sweep now, in this process",
        description="What the scheduled sweep does, now: prove each secret's AWSCURRENT with a fresh login "
        "(its regcred:images and the images of ACTIVE Batch job definitions that name it), rotate ahead of "
        "expiry or when the registry refuses it (RotateSecret; with --local the four steps run here), "
        "retire the previous credential after its grace period, revoke orphans, and record what it saw "
        "(regcred status reads it).\n"
        "Exit 0 when every secret pulls, 1 when one is refused or could not be swept, 2 when a registry "
        "could not be checked.",
        examples=[
            "regcred sweep",
            "regcred sweep batch/dockerhub --local --output json",
            "regcred sweep --table regcred-CoalesceTable-ABC123  # coordinate with the deployed sweep",
        ],
    )
    sweep.add_argument("secret", metavar="SECRET", nargs="*", help=SECRET_HELP + " (default: every one)")
    sweep.add_argument(
        "--local",
        action="store_true",
        help="run rotations in this process (as `regcred rotate --local`), not through RotateSecret",
    )
    sweep.add_argument(
        "--parallelism", type=_parallelism, default=8, metavar="N", help="secrets swept at once (8)"
    )
    _add_period(sweep, "the sweep interval that rotation ahead of expiry plans for")
    sweep.add_argument(
        "--table",
        metavar="TABLE",
        help="the stack's CoalesceTable: claim each secret there, so that a deployed sweep running at the "
        "same time never acts on it twice",
    )


__all__ = ["cmd_status", "cmd_sweep", "register", "status_row"]
