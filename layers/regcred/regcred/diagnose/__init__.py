"""``regcred diagnose JOB_ID|TASK_ARN``: the troubleshooting checklist for a Batch job's or an ECS task's
image pull, automated, in three steps (docs/ARCHITECTURE.md, "Diagnose"): `facts.gather` (a job) or
`facts.gather_task` (a task) makes every AWS and registry call and returns one `Facts`; `checks.run_checks`
turns it into one `Check` per name in `CHECK_NAMES` (`TASK_CHECK_NAMES` for a task; pure functions);
`report` renders them as text or JSON. Strictly read-only.
"""

from __future__ import annotations

from typing import Any

from ..ecs import TaskRef
from ..routing import Deployment
from ..store import SecretStore
from .checks import CHECK_NAMES, TASK_CHECK_NAMES, Check, parse_ratelimit, run_checks
from .facts import Facts, PullChecker, gather, gather_task, registry_checker
from .report import job_found, render_json, render_text

__all__ = [
    "CHECK_NAMES",
    "TASK_CHECK_NAMES",
    "Check",
    "Facts",
    "diagnose_job",
    "diagnose_task",
    "job_found",
    "parse_ratelimit",
    "registry_checker",
    "render_json",
    "render_text",
    "run_checks",
]


def diagnose_job(
    job_id: str,
    *,
    batch: Any,
    sm: Any,
    iam: Any,
    kms: Any | None = None,
    check: PullChecker | None = None,
    deployment: Deployment | None = None,
) -> list[Check]:
    """Run the checklist for one Batch job; always returns one Check per name in CHECK_NAMES, in order.
    ``sm`` is a `SecretStore` or a boto3 Secrets Manager client."""
    deployment = deployment if deployment is not None else Deployment.from_env()
    facts = gather(
        job_id,
        batch=batch,
        store=SecretStore.of(sm),
        iam=iam,
        kms=kms,
        check=check or registry_checker(deployment),
        deployment=deployment,
    )
    return run_checks(facts)


def diagnose_task(
    task: TaskRef,
    *,
    ecs: Any,
    sm: Any,
    iam: Any,
    kms: Any | None = None,
    sts: Any | None = None,
    check: PullChecker | None = None,
    deployment: Deployment | None = None,
    container: str | None = None,
) -> list[Check]:
    """Run the checklist for one ECS task (`regcred.ecs.parse_task`); always returns one Check per name in
    TASK_CHECK_NAMES, in order. ``sts`` tells a task of another account; ``container`` picks one container of
    several (default: the one whose pull failed)."""
    deployment = deployment if deployment is not None else Deployment.from_env()
    facts = gather_task(
        task,
        ecs=ecs,
        sts=sts,
        store=SecretStore.of(sm),
        iam=iam,
        kms=kms,
        check=check or registry_checker(deployment),
        deployment=deployment,
        container=container,
    )
    return run_checks(facts)
