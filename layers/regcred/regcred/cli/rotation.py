"""Commands that change a secret's credentials: ``rotate`` and ``retire``."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..config import LAST_FAILURE
from ..errors import RegcredError
from ..mirror import mirror_problem
from ..rotation import Outcome, RetireResult, Rotator, Step
from ..rotation_rules import StepFailure
from ..store import CURRENT, PENDING, SecretState
from ..timefmt import format_time
from .base import SECRET_HELP, CommandError, Context, ExitCode, Status, add_command, table
from .secrets import pull_verdict

_POLL_S = 2.0

ENABLE_HINT = (
    "enable it with `regcred onboard {name} --resume --rotation-lambda ARN --schedule 'rate(30 days)'` "
    "(ARN: the RotateFunctionArn output of the regcred stack), or rotate in this process with "
    "`regcred rotate {name} --local`"
)


def _rotator(ctx: Context, **kwargs: Any) -> Rotator:
    return Rotator(
        ctx.store(),
        batch=ctx.client("batch"),
        deployment=ctx.deployment(),
        step_seconds=ctx.timeout,
        **kwargs,
    )


# -- rotate ----------------------------------------------------------------------------------------


def _dry_run(ctx: Context) -> int:
    from ..rotation_plan import plan_rotation

    ctx.progress("checking what a rotation would do (nothing is written)")
    plan = plan_rotation(_rotator(ctx, require_rotation_enabled=False), ctx.args.secret)
    lines = [
        f"dry run: nothing was minted, stored, moved or revoked for {plan.secret}",
        f"would mint: a {plan.provider} token labelled {plan.label!r}, expiring "
        f"{format_time(plan.expires_at)}",
        f"would test: {', '.join(plan.probe_images)} on {plan.registry}",
        f"would move: AWSCURRENT {plan.current_version} -> the new version; AWSPREVIOUS -> "
        f"{plan.current_version}",
    ]
    if plan.previous_revocation is not None:
        lines.append(
            f"would revoke: token {plan.previous_token} leaving AWSPREVIOUS "
            f"({plan.previous_revocation.value})"
        )
    if plan.orphans:
        lines.append(f"would revoke orphans: {', '.join(plan.orphans)}")
    lines.append(pull_verdict(CURRENT, plan.current_check))
    if not plan.rotation_enabled and not ctx.args.local:
        lines.append(f"rotation is not enabled: {ENABLE_HINT.format(name=plan.secret)}")
    ctx.emit({**plan.as_dict(), "status": Status.DRY_RUN, "exit_code": 0}, "\n".join(lines))
    return 0


def _local(ctx: Context, state: SecretState) -> int:
    rotator = _rotator(ctx, require_rotation_enabled=False)
    token = str(uuid.uuid4())
    steps: list[dict[str, str]] = []
    for step in Step:
        ctx.progress(f"{step.value} ({len(steps) + 1}/4)")
        outcome = rotator.run(state.arn, token, step)
        steps.append({"step": step.value, "outcome": outcome.outcome.value})
        if step is Step.CREATE and outcome.outcome is Outcome.CREATED:
            ctx.progress.left = (
                f"version {token} of {state.name} holds a new token as AWSPENDING, not promoted; the next "
                f"rotation revokes it as an orphan (run `regcred rotate {state.name} --local` again)"
            )
    ctx.progress.left = ""
    value = rotator.read(state.arn, stage=CURRENT)
    ctx.emit(
        {
            "secret": state.name,
            "arn": state.arn,
            "status": Status.PROMOTED,
            "version_id": token,
            "token_id": value.token_id,
            "steps": steps,
            "exit_code": 0,
        },
        table([(s["step"], s["outcome"]) for s in steps])
        + f"\nAWSCURRENT is version {token} (token {value.token_id})",
    )
    return 0


def _wait(ctx: Context, state: SecretState, version: str) -> int:
    store = ctx.store()
    deadline = time.monotonic() + ctx.timeout
    last = ""
    while True:
        now = store.describe(state.arn)
        stages = now.versions.get(version, [])
        failure = StepFailure.of_version(now.tags.get(LAST_FAILURE, ""), version)
        if CURRENT in stages:
            try:
                token_id = store.read(state.arn, stage=CURRENT).token_id
            except RegcredError:
                token_id = (
                    None  # promoted, but its value is not one regcred can read: `regcred check` says more
                )
            ctx.emit(
                {
                    "secret": state.name,
                    "arn": state.arn,
                    "status": Status.PROMOTED,
                    "version_id": version,
                    "token_id": token_id,
                    "exit_code": 0,
                },
                f"promoted: AWSCURRENT is version {version} (token {token_id or '-'})",
            )
            return 0
        if failure is not None and not failure.retryable:
            raise CommandError(
                f"rotation of {state.name} failed in {failure.step}: {failure.why}; AWSCURRENT is unchanged",
                ExitCode.FAILED,
                secret=state.name,
                version_id=version,
                step=failure.step,
            )
        if failure is None and version in now.versions and PENDING not in stages:
            raise CommandError(
                f"rotation of {state.name} stopped: version {version} is neither pending nor current (see "
                "the "
                "rotate function's logs); AWSCURRENT is unchanged",
                ExitCode.FAILED,
                secret=state.name,
                version_id=version,
            )
        last = (
            f"{failure.step} will be retried: {failure.why}" if failure else "waiting for the rotate function"
        )
        if time.monotonic() >= deadline:
            raise CommandError(
                f"rotation of {state.name} still in progress after {ctx.timeout:.0f}s ({last}); follow it "
                "with "
                f"`regcred show {state.name}`",
                ExitCode.UNCHECKED,
                secret=state.name,
                version_id=version,
            )
        ctx.progress(f"rotating {state.name}: {last}")
        time.sleep(_POLL_S)


def cmd_rotate(ctx: Context) -> int:
    """Rotate now: in-process exactly as Secrets Manager would (--local), or through RotateSecret."""
    args = ctx.args
    if args.dry_run:
        return _dry_run(ctx)
    store = ctx.store()
    state = store.describe(args.secret)
    if args.local:
        return _local(ctx, state)
    if not state.rotation_enabled:
        raise CommandError(
            f"rotation is not enabled on {state.name}: {ENABLE_HINT.format(name=state.name)}",
            ExitCode.CONFIG,
            secret=state.name,
        )
    version = store.start_rotation(state.arn)
    if not args.wait or not version:
        ctx.emit(
            {
                "secret": state.name,
                "arn": state.arn,
                "status": Status.STARTED,
                "version_id": version,
                "exit_code": 0,
            },
            f"rotation started: version {version} (follow it with `regcred rotate {state.name} --wait` next "
            "time, "
            f"or `regcred show {state.name}`)",
        )
        return 0
    ctx.progress.left = (
        f"the rotation of {state.name} (version {version}) goes on in Secrets Manager; "
        f"follow it with `regcred show {state.name}`"
    )
    return _wait(ctx, state, version)


# -- retire ----------------------------------------------------------------------------------------

_RETIRE_CODES = {
    RetireResult.CURRENT_UNPROVEN: ExitCode.FAILED,
    RetireResult.REFUSED: ExitCode.FAILED,
    RetireResult.MIRROR_STALE: ExitCode.FAILED,
}


def cmd_retire(ctx: Context) -> int:
    """Revoke the AWSPREVIOUS credential if its grace period is over and AWSCURRENT pulls."""
    args = ctx.args
    ctx.progress("proving AWSCURRENT pulls before the previous credential goes")
    rotator = _rotator(ctx)
    result = rotator.retire_previous(args.secret, dry_run=args.dry_run)
    code = _RETIRE_CODES.get(result, ExitCode.OK)
    problem = mirror_problem(rotator.store, args.secret) if result is RetireResult.MIRROR_STALE else None
    words = {
        RetireResult.RETIRED: "the AWSPREVIOUS credential was revoked",
        RetireResult.RETIRED_NOT_REVOKED: "the AWSPREVIOUS credential is retired in regcred, but this "
        "provider cannot revoke it: revoke it at the registry or vendor yourself",
        RetireResult.WOULD_RETIRE: "dry run: the AWSPREVIOUS credential would be revoked (nothing was)",
        RetireResult.IN_GRACE: "nothing to do yet: the previous credential is in its grace period",
        RetireResult.NO_PREVIOUS: "nothing to do: no AWSPREVIOUS version",
        RetireResult.NOT_MINTED: "nothing to do: AWSPREVIOUS was not minted by regcred (imported)",
        RetireResult.ALREADY_RETIRED: "nothing to do: the previous credential is retired already",
        RetireResult.CURRENT_UNPROVEN: "kept the previous credential: AWSCURRENT could not be proven to pull",
        RetireResult.REFUSED: "refused: the vendor's record of the previous token is not labelled for this "
        "secret",
        RetireResult.MIRROR_STALE: "kept the previous credential: the ECR pull-through cache mirror does not "
        f"hold AWSCURRENT and could not be written ({problem or 'try again'})",
    }
    ctx.emit(
        {
            "secret": args.secret,
            "result": result.value,
            "status": Status.FAILED if code else Status.OK,
            "dry_run": args.dry_run,
            **({"mirror_problem": problem} if problem else {}),
            "exit_code": int(code),
        },
        f"{result.value}: {words[result]}",
    )
    return int(code)


def register(sub: Any) -> None:
    """Register ``rotate`` and ``retire``."""
    rotate = add_command(
        sub,
        "rotate",
        cmd_rotate,
        help="rotate a secret now",
        description="Start a rotation through Secrets Manager (RotateSecret: the deployed rotate function "
        "runs the four steps), or run the four steps in this process with --local. Without --local it "
        "refuses, before calling anything, a secret whose rotation is not enabled.",
        examples=[
            "regcred rotate batch/dockerhub --wait",
            "regcred rotate batch/dockerhub --dry-run",
            "regcred rotate batch/dockerhub --local",
        ],
    )
    rotate.add_argument("secret", metavar="SECRET", help=SECRET_HELP)
    mode = rotate.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="drive the four steps in this process")
    mode.add_argument("--wait", action="store_true", help="follow the rotation until promoted or failed")
    rotate.add_argument(
        "--dry-run", action="store_true", help="say what would be minted, moved and revoked; write nothing"
    )

    retire = add_command(
        sub,
        "retire",
        cmd_retire,
        help="revoke AWSPREVIOUS once its grace period is over",
        description="Revoke the credential AWSPREVIOUS holds, once its grace period (tag regcred:grace) is "
        "over, AWSCURRENT has been proven to pull, and the vendor's record shows regcred minted it for this "
        "secret.",
        examples=["regcred retire batch/dockerhub --dry-run"],
    )
    retire.add_argument("secret", metavar="SECRET", help=SECRET_HELP)
    retire.add_argument("--dry-run", action="store_true", help="check everything, revoke nothing")
