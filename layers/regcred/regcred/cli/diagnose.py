"""``regcred diagnose JOB_ID``: the checklist of a Batch job's image pull (`regcred.diagnose`)."""

from __future__ import annotations

from typing import Any

from ..diagnose import diagnose_job, job_found, registry_checker, render_json, render_text
from .base import Context, ExitCode, Status, add_command


def cmd_diagnose(ctx: Context) -> int:
    """Exit 0 when nothing failed, 1 when a check failed, 2 when the job could not be read."""
    job_id = ctx.args.job_id
    ctx.progress(f"diagnosing job {job_id}")
    deployment = ctx.deployment()
    checks = diagnose_job(
        job_id,
        batch=ctx.client("batch"),
        sm=ctx.store(),
        iam=ctx.client("iam"),
        kms=ctx.client("kms"),
        check=registry_checker(deployment, ctx.timeout),
        deployment=deployment,
    )
    report = render_json(job_id, checks)
    if not job_found(checks):
        code = ExitCode.UNCHECKED
    else:
        code = ExitCode.FAILED if report["failed"] else ExitCode.OK
    status = (
        Status.OK if code is ExitCode.OK else Status.FAILED if code is ExitCode.FAILED else Status.UNCHECKED
    )
    ctx.emit({**report, "status": status, "exit_code": int(code)}, render_text(checks))
    return int(code)


def register(sub: Any) -> None:
    """Register ``diagnose``."""
    p = add_command(
        sub,
        "diagnose",
        cmd_diagnose,
        help="read-only checklist of a Batch job's image pull",
        description="Read the job, its job definition, the secret repositoryCredentials names, the "
        "execution role's access to it (iam:SimulatePrincipalPolicy, KMS included), and log in to the "
        "registry with the secret's AWSCURRENT credential. Nothing is written.\n"
        "Exit 0 when nothing failed, 1 when a check failed, 2 when the job could not be read.",
        examples=["regcred diagnose 8f1c2d3e-0000-4000-8000-000000000000 --output json"],
    )
    p.add_argument("job_id", metavar="JOB_ID", help="the Batch job id")
