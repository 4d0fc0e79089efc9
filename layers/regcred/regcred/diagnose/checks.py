"""Diagnose, step 2: the checks. Pure functions from `Facts` to one `Check` each, in the order of the
troubleshooting checklist; no I/O. A check that an earlier finding makes impossible is reported as skipped
(``ok=None``) with the reason (`run_checks`). No check ever shows a secret value: details name fields,
versions and token ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .. import config
from ..access import GET_SECRET_VALUE, KMS_DECRYPT, Decision, RoleAccess, arn_parts
from ..registry import PullStatus
from ..routing import ALLOWED_REGISTRY_HOSTS_ENV
from ..store import CURRENT
from .facts import Facts

__all__ = ["CHECK_NAMES", "TASK_CHECK_NAMES", "Check", "parse_ratelimit", "run_checks"]

JOB = "job"
TASK = "task"  # the first check of an ECS task, in place of JOB
SECRET_NAMED = "secret-named"  # noqa: S105 - a check name
SECRET_EXISTS = "secret-exists"  # noqa: S105 - a check name
SECRET_SHAPE = "secret-shape"  # noqa: S105 - a check name
EXECUTION_ROLE = "execution-role"
CREDENTIALS = "credentials"
IMAGE = "image"
RATE_LIMIT = "rate-limit"
CHECK_NAMES = (JOB, SECRET_NAMED, SECRET_EXISTS, SECRET_SHAPE, EXECUTION_ROLE, CREDENTIALS, IMAGE, RATE_LIMIT)
TASK_CHECK_NAMES = (TASK, *CHECK_NAMES[1:])
_NOT_FOUND = "ResourceNotFoundException"


@dataclass(frozen=True)
class Check:
    """One line of the checklist. ``ok`` is None when the check could not run or does not apply."""

    name: str
    ok: bool | None
    detail: str
    action: str = ""


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_ratelimit(value: str | None) -> tuple[int, int | None] | None:
    """``"76;w=21600"`` (Docker Hub's RateLimit-* format) -> (76, 21600); a bare ``"76"`` -> (76, None)."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d{1,9})\s*(?:;\s*w\s*=\s*(\d{1,9})\s*)?(?:;.*)?", value)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def _window(seconds: int | None) -> str:
    if not seconds:
        return "an unstated window"
    if seconds % 3600 == 0:
        return f"a {seconds // 3600} h window"
    if seconds % 60 == 0:
        return f"a {seconds // 60} min window"
    return f"a {seconds} s window"


# -- 1. the job ---------------------------------------------------------------------------------------


def check_job(f: Facts) -> Check:
    if f.job_error:
        return Check(
            JOB,
            False,
            f"DescribeJobs failed ({f.job_error})",
            "check the job id, the AWS region and that you may call batch:DescribeJobs",
        )
    if f.job is None:
        return Check(
            JOB,
            False,
            f"no Batch job {f.job_id} (jobs are listed for about 7 days after they finish)",
            "check the job id and the region (--region, AWS_REGION or AWS_DEFAULT_REGION)",
        )
    parts = [
        f"{f.job.get('jobName', '?')} is {f.job.get('status', '?')}",
        f"reason: {_short(f.reason) or '-'}",
        f"image {f.image or '-'}",
        f"job definition {f.definition_arn or '-'}",
        f"execution role {f.role or '-'}",
    ]
    if f.failure_class:
        parts.insert(2, f"failure class {f.failure_class}")
    if f.definition_error:
        parts.append(f.definition_error)
    return Check(JOB, True, "; ".join(parts))


def check_task(f: Facts) -> Check:
    where = f"cluster {f.cluster}" + (
        " (assumed: the old task ARN format names no cluster)" if f.cluster_assumed else ""
    )
    if f.job_refused:
        return Check(TASK, False, *f.job_refused)
    if f.job_error == "ClusterNotFoundException":
        return Check(
            TASK,
            False,
            f"no {where} in {f.region or 'this region'}",
            "check the cluster in the task ARN (or --cluster) and the region",
        )
    if f.job_error:
        return Check(
            TASK,
            False,
            f"DescribeTasks failed ({f.job_error})",
            "check the task ARN, the region and that you may call ecs:DescribeTasks",
        )
    if f.job is None:
        return Check(
            TASK,
            False,
            f"no ECS task {f.job_id} in {where} (stopped tasks are listed for at least an hour after they "
            "stop)",
            "check the task ARN (and --cluster for an old-format ARN) and the region",
        )
    task = f.job
    stop = f"{task.get('stopCode')}: " if task.get("stopCode") else ""
    parts = [
        f"{task.get('group') or task.get('taskArn', '?')} is {task.get('lastStatus', '?')}",
        f"reason: {stop}{_short(f.reason) or '-'}",
        f"container {f.container_name or '-'}",
        f"image {f.image or '-'}",
        f"task definition {f.definition_arn or '-'}",
        f"execution role {f.role or '-'}",
    ]
    if f.failure_class:
        parts.insert(2, f"failure class {f.failure_class}")
    if f.definition_error:
        parts.append(f.definition_error)
    return Check(TASK, True, "; ".join(parts))


# -- 2, 3, 4. the secret --------------------------------------------------------------------------------


def check_secret_named(f: Facts) -> Check:
    if f.parameter:
        return Check(SECRET_NAMED, True, f"repositoryCredentials.credentialsParameter is {f.parameter}")
    if f.definition is None and f.definition_error:
        return Check(
            SECRET_NAMED,
            None,
            f"the {f.noun} names no secret and its {f.definition_word} could not be read: "
            f"{f.definition_error}",
        )
    if f.kind == "ecs":
        return Check(
            SECRET_NAMED,
            False,
            f"container {f.container_name or '-'} of the task definition sets no repositoryCredentials: the "
            "image is pulled anonymously",
            "add repositoryCredentials.credentialsParameter to container "
            f"{f.container_name or '-'} of the task definition",
        )
    return Check(
        SECRET_NAMED,
        False,
        "neither the job nor its job definition sets repositoryCredentials: the image is pulled anonymously",
        "add repositoryCredentials.credentialsParameter to the job definition",
    )


def check_secret_exists(f: Facts) -> Check:
    if f.secret_error == _NOT_FOUND:
        hint = ""
        parts = arn_parts(f.parameter or "")
        if parts and f.region and parts[1] and parts[1] != f.region:
            hint = f" (the ARN is in {parts[1]}, this check looked in {f.region})"
        return Check(
            SECRET_EXISTS,
            False,
            f"secret {f.parameter} does not exist{hint}",
            "create the secret or fix repositoryCredentials.credentialsParameter",
        )
    if f.secret_error or f.secret is None:
        return Check(SECRET_EXISTS, None, f"DescribeSecret failed ({f.secret_error})")
    name = f.secret.name
    if f.secret.deleted:
        return Check(
            SECRET_EXISTS,
            False,
            f"secret {name} is scheduled for deletion: ECS cannot read it",
            f"aws secretsmanager restore-secret --secret-id {name}",
        )
    if not f.secret.managed:
        return Check(
            SECRET_EXISTS,
            True,
            f"secret {name} exists but is not managed by regcred (no {config.MANAGED}=true tag): nothing "
            "rotates or repairs it",
        )
    if f.cfg is None:
        return Check(
            SECRET_EXISTS,
            False,
            f"secret {name} is tagged {config.MANAGED}=true but its tags are invalid: {f.cfg_error}",
            "fix the regcred:* tags of the secret as the detail says",
        )
    return Check(SECRET_EXISTS, True, f"secret {name} exists, managed by regcred ({f.cfg.provider})")


def check_secret_shape(f: Facts) -> Check:
    assert f.secret is not None
    name = f.secret.name
    if f.value_error == _NOT_FOUND:
        return Check(
            SECRET_SHAPE,
            False,
            f"secret {name} has no {CURRENT} version",
            'store {"username": ..., "password": ...} as its AWSCURRENT version',
        )
    if f.value_error:
        return Check(SECRET_SHAPE, None, f"GetSecretValue of {CURRENT} failed ({f.value_error})")
    if f.value_format_error or f.value is None:
        rotate = f" (or regcred rotate {name})" if f.cfg is not None else ""
        return Check(
            SECRET_SHAPE,
            False,
            f"{CURRENT} is unusable: {f.value_format_error}",
            f'store JSON {{"username": ..., "password": ...}} as AWSCURRENT{rotate}',
        )
    token = f", token {f.value.token_id}" if f.value.token_id else ""
    expiry = f", expires {f.value.expires_at.isoformat()}" if f.value.expires_at else ""
    return Check(
        SECRET_SHAPE,
        True,
        f"{CURRENT} (version {f.value_version}{token}{expiry}) has a username and password",
    )


# -- 5. the execution role ------------------------------------------------------------------------------


def _role_lines(access: RoleAccess, definition: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(failures, actions, unknowns, passes) of a role's access, as the check words them."""
    failures: list[str] = []
    actions: list[str] = []
    unknowns: list[str] = []
    passes: list[str] = []
    role = access.role
    for p in access.permissions:
        note = f" ({p.note})" if p.note else ""
        if p.decision is Decision.ALLOWED:
            passes.append(f"{p.action} on {p.resource}")
        elif p.decision is Decision.NO_ROLE:
            failures.append(f"execution role {role} does not exist")
            actions.append(f"create the role or fix executionRoleArn in the {definition}")
        elif p.decision is Decision.UNKNOWN:
            unknowns.append(f"{p.action} on {p.resource}: {p.note}")
        elif p.decision is Decision.EXPLICIT_DENY:
            failures.append(f"{p.action} on {p.resource} is explicitDeny{note}")
            actions.append(f"remove the Deny of {p.action} on {p.resource} that applies to {role}")
        else:
            failures.append(f"{p.action} on {p.resource} is implicitDeny{note}")
            actions.append(f"allow {p.action} on {p.resource} in a policy of {role}")
    if not access.role_missing and access.key is None:
        (unknowns if access.key_info.unknown else passes).append(
            f"{KMS_DECRYPT} not checked: {access.key_info.note}"
            if access.key_info.unknown
            else access.key_info.note
        )
    return failures, actions, unknowns, passes


def check_execution_role(f: Facts) -> Check:
    assert f.secret is not None
    if not f.role:
        return Check(
            EXECUTION_ROLE,
            False,
            f"the {f.noun} has no execution role: private registry authentication needs one",
            f"set executionRoleArn in the {f.definition_word} to a role allowed {GET_SECRET_VALUE} on "
            f"{f.secret.arn}",
        )
    assert f.access is not None
    failures, actions, unknowns, passes = _role_lines(f.access, f.definition_word)
    if failures:
        return Check(EXECUTION_ROLE, False, f"{f.role}: " + "; ".join(failures), "; ".join(actions))
    if unknowns:
        return Check(EXECUTION_ROLE, None, f"{f.role}: " + "; ".join(unknowns + passes))
    return Check(EXECUTION_ROLE, True, f"{f.role} may {'; '.join(passes)}")


# -- 6, 7, 8. the registry ------------------------------------------------------------------------------


def _route_refusal(f: Facts) -> Check | None:
    """Why the credential was not sent to the registry, as a check; None when it was."""
    assert f.value is not None and f.image_ref is not None
    if f.route_error:
        return Check(
            CREDENTIALS, False, f"the secret's regcred tags do not hold: {f.route_error}", "fix the tags"
        )
    if f.route is None:
        return Check(
            CREDENTIALS,
            None,
            f"not checked: {f.image_ref.registry} is neither a provider's registry nor allowed by the "
            "deployment "
            f"({ALLOWED_REGISTRY_HOSTS_ENV} or --allow-registry-host), and the secret is not managed by "
            "regcred, "
            "so its credential is not sent there",
        )
    if f.value.registry and not f.route.names_registry(f.value.registry):
        return Check(
            CREDENTIALS,
            False,
            f"the secret's value names registry {f.value.registry}, not {f.route.registry_name}",
            "fix the value's registry field, or the regcred:registry tag",
        )
    if not f.route.names_registry(f.image_ref.registry):
        return Check(
            CREDENTIALS,
            False,
            f"the image's registry {f.image_ref.registry} differs from the secret's {f.route.registry_name}",
            f"point repositoryCredentials at a secret for {f.image_ref.registry}, or fix the image",
        )
    return None


def check_credentials(f: Facts) -> Check:
    if f.image_error:
        return Check(CREDENTIALS, False, f.image_error, f"fix the image in the {f.definition_word}")
    refusal = _route_refusal(f)
    if refusal is not None:
        return refusal
    assert f.image_ref is not None and f.secret is not None
    if f.pull_error:
        return Check(CREDENTIALS, None, f"{f.image_ref.registry}: {f.pull_error}")
    pull = f.pull
    assert pull is not None
    where = f"{CURRENT} at {f.image_ref.registry}"
    if pull.status is PullStatus.OPEN:
        return Check(CREDENTIALS, None, f"{where}: not exercised ({pull.detail})")
    if pull.status in (PullStatus.OK, PullStatus.NOT_FOUND):
        return Check(CREDENTIALS, True, f"{where}: accepted ({pull.detail})")
    if pull.status is PullStatus.CREDENTIALS_REJECTED:
        action = (
            f"rotate: regcred rotate {f.secret.name}"
            if f.cfg is not None
            else f"store a working credential in {f.secret.name} (or onboard it with regcred onboard)"
        )
        return Check(CREDENTIALS, False, f"{where}: rejected ({pull.detail})", action)
    if pull.status is PullStatus.NO_ACCESS:
        return Check(
            CREDENTIALS,
            False,
            f"{where}: authenticated but may not pull {f.image_ref.repository} ({pull.detail}); on Docker "
            "Hub a "
            "repository that does not exist looks the same",
            f"grant the token pull on {f.image_ref.repository}",
        )
    # Unreachable, rate limited, a protocol error: the registry was not checked, the credential not judged.
    return Check(CREDENTIALS, None, f"{where}: could not check ({pull.status.value}: {pull.detail})")


def check_image(f: Facts) -> Check:
    pull = f.pull
    assert pull is not None
    if pull.status in (PullStatus.OK, PullStatus.OPEN):
        return Check(IMAGE, True, f"{pull.image}: {pull.detail}")
    if pull.status is PullStatus.NOT_FOUND:
        return Check(
            IMAGE,
            False,
            f"{pull.image}: {pull.detail}",
            f"push {pull.image}, or fix the tag/digest in the {f.definition_word}",
        )
    return Check(IMAGE, None, f"not looked up: the registry answered {pull.status.value} first")


_RATE_ADVICE = (
    "wait for the window to pass, pull with an account that has a paid Docker subscription, or mirror the "
    "image (e.g. an ECR pull-through cache)"
)


def check_rate_limit(f: Facts) -> Check:
    # Docker Hub sends RateLimit-Limit / RateLimit-Remaining ("100;w=21600") on manifest GET and HEAD, and
    # a HEAD does not count as a pull ("Docker Hub usage and rate limits",
    # docs.docker.com/docker-hub/usage/pulls/ "View pull rate and limit": "using GET emulates a real pull
    # and will count towards the limit; using HEAD will not"). No headers means the pull does not count
    # towards a limit or the registry is not Docker Hub.
    pull = f.pull
    assert pull is not None
    remaining = parse_ratelimit(pull.ratelimit_remaining)
    limit = parse_ratelimit(pull.ratelimit_limit)
    if remaining is None:
        if pull.status is PullStatus.RATE_LIMITED:
            return Check(RATE_LIMIT, False, f"{pull.image}: {pull.detail}", _RATE_ADVICE)
        if pull.status not in (PullStatus.OK, PullStatus.OPEN, PullStatus.NOT_FOUND):
            return Check(RATE_LIMIT, None, f"no manifest answer to read headroom from ({pull.status.value})")
        return Check(
            RATE_LIMIT,
            None,
            "the registry sent no RateLimit headers (not Docker Hub, or these pulls are not limited)",
        )
    window = remaining[1] if remaining[1] is not None else (limit[1] if limit else None)
    of = f" of {limit[0]}" if limit else ""
    text = f"{remaining[0]}{of} pulls left in {_window(window)} (per the manifest HEAD, which is free)"
    if remaining[0] == 0 or pull.status is PullStatus.RATE_LIMITED:
        return Check(RATE_LIMIT, False, text, _RATE_ADVICE)
    return Check(RATE_LIMIT, True, text)


# -- the order, and what blocks what --------------------------------------------------------------------


def _secret_blocker(f: Facts) -> str | None:
    if f.job is None:
        return f"the {f.noun} could not be read"
    if f.parameter is None:
        return f"the {f.noun} names no secret"
    if f.secret is None:
        return "the secret could not be described"
    return None


def _pull_blocker(f: Facts) -> str | None:
    blocked = _secret_blocker(f)
    if blocked is None and f.secret is not None and f.secret.deleted:
        blocked = "the secret is scheduled for deletion"
    if blocked is None and f.value is None:
        blocked = f"{CURRENT} could not be read as a username and password"
    if blocked is None and f.image is None:
        blocked = f"the {f.noun} names no image"
    return blocked


def _registry_blocker(f: Facts) -> str | None:
    blocked = _pull_blocker(f)
    if blocked is not None:
        return blocked
    if f.pull is not None:
        return None
    if f.image_error:
        return f"the {f.noun}'s image reference is invalid"
    if f.pull_error:
        return "the registry could not be checked"
    if f.route is None or f.route_error:
        return "the credential is not sent to that registry"
    if f.value is not None and f.value.registry and not f.route.names_registry(f.value.registry):
        return "the secret's value names another registry"
    return "the image is not on the secret's registry"


def _shape_blocker(f: Facts) -> str | None:
    blocked = _secret_blocker(f)
    if blocked is None and f.secret is not None and f.secret.deleted:
        return "the secret is scheduled for deletion"
    return blocked


def _check_subject(f: Facts) -> Check:
    return check_task(f) if f.kind == "ecs" else check_job(f)


_ORDER: tuple[tuple[str, Callable[[Facts], Check], Callable[[Facts], str | None]], ...] = (
    (JOB, _check_subject, lambda f: None),
    (
        SECRET_NAMED,
        check_secret_named,
        lambda f: None if f.job is not None else f"the {f.noun} could not be read",
    ),
    (SECRET_EXISTS, check_secret_exists, lambda f: None if f.parameter else _secret_blocker(f)),
    (SECRET_SHAPE, check_secret_shape, _shape_blocker),
    (EXECUTION_ROLE, check_execution_role, _secret_blocker),
    (CREDENTIALS, check_credentials, _pull_blocker),
    (IMAGE, check_image, _registry_blocker),
    (RATE_LIMIT, check_rate_limit, _registry_blocker),
)


def run_checks(f: Facts) -> list[Check]:
    """One Check per name in CHECK_NAMES, in order; a blocked one is skipped with the reason."""
    out: list[Check] = []
    for name, check, blocker in _ORDER:
        blocked = blocker(f)
        out.append(Check(name, None, f"skipped: {blocked}") if blocked is not None else check(f))
    return out
