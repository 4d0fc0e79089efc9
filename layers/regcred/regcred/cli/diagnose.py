"""``regcred diagnose JOB_ID|TASK_ARN``: the checklist of a Batch job's or an ECS task's image pull
(`regcred.diagnose`)."""

from __future__ import annotations

from typing import Any

from ..diagnose import diagnose_job, diagnose_task, job_found, registry_checker, render_json, render_text
from ..ecs import MalformedTaskArn, TaskRef, is_task_arn, parse_task
from .base import Context, ExitCode, Status, UsageError, add_command


def _task(ctx: Context) -> TaskRef | None:
    """The ECS task the command line names, or None for a Batch job id; a malformed one is a usage error.
    The task ARN's region is the one asked, unless --region names another (refused)."""
    subject, cluster = ctx.args.job_id, ctx.args.cluster
    if not is_task_arn(subject) and not cluster:
        if subject.strip().startswith("arn:"):
            raise UsageError(
                f"diagnose: {subject[:160]!r} is not an ECS task ARN; a Batch job is named by its job id"
            )
        if ctx.args.container:
            raise UsageError(
                "diagnose: --container is for an ECS task (a task ARN, or a task id with --cluster)"
            )
        return None
    try:
        ref = parse_task(subject, cluster)
    except MalformedTaskArn as exc:
        raise UsageError(f"diagnose: {exc}") from None
    if ref.region and ctx.region and ctx.region != ref.region:
        raise UsageError(
            f"diagnose: the task ARN is in {ref.region} but --region says {ctx.region}: drop --region, or "
            f"pass --region {ref.region}"
        )
    if ref.region:
        ctx.region = ref.region
    return ref


def cmd_diagnose(ctx: Context) -> int:
    """Exit 0 when nothing failed, 1 when a check failed, 2 when the job or task could not be read."""
    task = _task(ctx)
    deployment = ctx.deployment()
    check = registry_checker(deployment, ctx.timeout)
    if task is None:
        subject, key = ctx.args.job_id, "job_id"
        ctx.progress(f"diagnosing job {subject}")
        checks = diagnose_job(
            subject,
            batch=ctx.client("batch"),
            sm=ctx.store(),
            iam=ctx.client("iam"),
            kms=ctx.client("kms"),
            check=check,
            deployment=deployment,
        )
    else:
        subject, key = task.task, "task"
        ctx.progress(f"diagnosing task {subject}")
        checks = diagnose_task(
            task,
            ecs=ctx.client("ecs"),
            sts=ctx.client("sts"),
            sm=ctx.store(),
            iam=ctx.client("iam"),
            kms=ctx.client("kms"),
            check=check,
            deployment=deployment,
            container=ctx.args.container,
        )
    report = render_json(subject, checks, key=key)
    if task is not None:
        report["cluster"] = task.cluster
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
        help="read-only checklist of a Batch job's or an ECS task's image pull",
        description="Read the Batch job and its job definition, or the ECS task and its task definition, "
        "the secret repositoryCredentials names, the execution role's access to it "
        "(iam:SimulatePrincipalPolicy, KMS included), and log in to the registry with the secret's "
        "AWSCURRENT credential. Nothing is written.\n"
        "An ECS task is named by its ARN (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID; the old format "
        "arn:aws:ecs:REGION:ACCOUNT:task/TASK_ID with --cluster, else the default cluster), or by its id "
        "with --cluster. The ARN's region is the one asked.\n"
        "Exit 0 when nothing failed, 1 when a check failed, 2 when the job or task could not be read, 64 for "
        "a malformed task ARN.",
        examples=[
            "regcred diagnose 8f1c2d3e-0000-4000-8000-000000000000 --output json",
            "regcred diagnose arn:aws:ecs:eu-west-1:123456789012:task/prod/0123456789abcdef0123456789abcdef",
            "regcred diagnose arn:aws:ecs:eu-west-1:123456789012:task/0b69d5c0-d655-4695-98cd-5d2d526d9d5a "
            "--cluster prod",
        ],
    )
    p.add_argument("job_id", metavar="JOB_ID|TASK_ARN", help="the Batch job id, or the ECS task ARN (or id)")
    p.add_argument(
        "--cluster",
        default=None,
        metavar="CLUSTER",
        help="the ECS cluster (name or ARN) of a task ARN in the old format, or of a task id",
    )
    p.add_argument(
        "--container",
        default=None,
        metavar="NAME",
        help="the container of an ECS task to check (default: the one whose pull failed)",
    )
