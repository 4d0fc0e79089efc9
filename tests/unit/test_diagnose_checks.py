"""The diagnose checks are pure functions of `Facts`: each is tested here without any server."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from regcred.access import Decision, KeyInfo, Permission, RoleAccess
from regcred.config import SecretConfig
from regcred.diagnose import (
    CHECK_NAMES,
    TASK_CHECK_NAMES,
    Facts,
    job_found,
    render_json,
    render_text,
    run_checks,
)
from regcred.diagnose.checks import (
    check_credentials,
    check_execution_role,
    check_image,
    check_job,
    check_rate_limit,
    check_secret_exists,
    check_secret_named,
    check_secret_shape,
    check_task,
    parse_ratelimit,
)
from regcred.ecs import MalformedTaskArn, parse_task
from regcred.hosts import Origin
from regcred.jobs import ecs_execution_role, ecs_task_container
from regcred.registry import ImageCheck, ImageRef, PullStatus
from regcred.routing import Routing
from regcred.secret import SecretValue
from regcred.store import SecretState

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/pull-AbCdEf"
ROLE = "arn:aws:iam::123456789012:role/exec"
REGISTRY = Origin("https", "registry-1.docker.io", 443)
ROUTE = Routing("dockerhub", REGISTRY, None, frozenset())
TAGS = {"regcred:managed": "true", "regcred:provider": "dockerhub", "regcred:admin-secret": "admin/x"}
IMAGE = "registry-1.docker.io/acme/app:1"
PASSWORD = "s3cret-password-value"


def state(**overrides: Any) -> SecretState:
    base: dict[str, Any] = {
        "arn": ARN,
        "name": "batch/pull",
        "tags": dict(TAGS),
        "versions": {"v1": ["AWSCURRENT"]},
        "rotation_enabled": True,
    }
    return SecretState(**{**base, **overrides})


def allowed_access(key: Permission | None = None, info: KeyInfo | None = None) -> RoleAccess:
    secret = Permission("secretsmanager:GetSecretValue", ARN, Decision.ALLOWED)
    return RoleAccess(ROLE, secret, key, info or KeyInfo(None, "the secret uses the AWS managed key"))


def healthy(**overrides: Any) -> Facts:
    s = state()
    facts = Facts(
        job_id="job-1",
        region="us-east-1",
        job={"jobName": "nightly", "status": "FAILED"},
        definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/d:1",
        definition={},
        image=IMAGE,
        role=ROLE,
        reason="CannotPullContainerError: unauthorized",
        parameter=ARN,
        secret=s,
        cfg=SecretConfig.from_tags(s.tags, s.name),
        value=SecretValue(username="u", password=PASSWORD, token_id="tok-1"),
        value_version="v1",
        access=allowed_access(),
        image_ref=ImageRef.parse(IMAGE),
        route=ROUTE,
        pull=ImageCheck(IMAGE, PullStatus.OK, "manifest found", 200),
    )
    return replace(facts, **overrides)


def test_a_healthy_job_passes_everything_but_rate_limit_headroom() -> None:
    checks = run_checks(healthy())
    assert [c.name for c in checks] == list(CHECK_NAMES)
    assert [c.ok for c in checks] == [True] * 7 + [None]
    report = render_json("job-1", checks)
    assert report["ok"] is True and report["failed"] == []
    text = render_text(checks)
    assert text.splitlines()[0].startswith("PASS job: nightly is FAILED")
    assert PASSWORD not in text and PASSWORD not in str(report)


def test_job_not_found_and_describe_failure() -> None:
    missing = check_job(Facts("job-9"))
    assert missing.ok is False and "no Batch job job-9" in missing.detail and "AWS_REGION" in missing.action
    denied = check_job(Facts("job-9", job_error="AccessDeniedException"))
    assert denied.ok is False and "AccessDeniedException" in denied.detail


def test_everything_after_an_unreadable_job_is_skipped_with_the_reason() -> None:
    checks = run_checks(Facts("job-9"))
    assert checks[0].ok is False
    assert all(c.ok is None and c.detail.startswith("skipped: ") for c in checks[1:])


def test_a_job_without_repository_credentials() -> None:
    check = check_secret_named(healthy(parameter=None))
    assert check.ok is False and "anonymously" in check.detail
    unknown = check_secret_named(healthy(parameter=None, definition=None, definition_error="not found"))
    assert unknown.ok is None


def test_a_missing_secret_names_the_region_it_looked_in() -> None:
    other = ARN.replace("us-east-1", "eu-west-1")
    check = check_secret_exists(
        healthy(parameter=other, secret=None, secret_error="ResourceNotFoundException")
    )
    assert check.ok is False and "the ARN is in eu-west-1, this check looked in us-east-1" in check.detail


@pytest.mark.parametrize(
    ("facts", "ok", "needle"),
    [
        (healthy(secret=state(deleted=True)), False, "scheduled for deletion"),
        (healthy(secret=state(tags={}), cfg=None), True, "not managed by regcred"),
        (healthy(cfg=None, cfg_error="regcred:ttl: bad"), False, "tags are invalid: regcred:ttl: bad"),
        (healthy(secret=None, secret_error="ThrottlingException"), None, "ThrottlingException"),
    ],
)
def test_secret_exists_cases(facts: Facts, ok: bool | None, needle: str) -> None:
    check = check_secret_exists(facts)
    assert check.ok is ok and needle in check.detail


def test_secret_shape_cases() -> None:
    assert check_secret_shape(healthy(value=None, value_error="ResourceNotFoundException")).ok is False
    assert check_secret_shape(healthy(value=None, value_error="KMSAccessDenied")).ok is None
    unusable = check_secret_shape(
        healthy(value=None, value_format_error='the secret value has no "password"')
    )
    assert unusable.ok is False and '"password"' in unusable.detail and "regcred rotate" in unusable.action
    fine = check_secret_shape(healthy())
    assert fine.ok is True and "token tok-1" in fine.detail


def test_execution_role_cases() -> None:
    assert check_execution_role(healthy(role=None, access=None)).ok is False
    denied = Permission("secretsmanager:GetSecretValue", ARN, Decision.DENIED)
    check = check_execution_role(healthy(access=RoleAccess(ROLE, denied, None, KeyInfo(None, "aws managed"))))
    assert (
        check.ok is False
        and "implicitDeny" in check.detail
        and "allow secretsmanager:GetSecretValue" in check.action
    )
    explicit = replace(denied, decision=Decision.EXPLICIT_DENY, note="an organization SCP denies it")
    check = check_execution_role(healthy(access=RoleAccess(ROLE, explicit, None, KeyInfo(None, "x"))))
    assert (
        "explicitDeny (an organization SCP denies it)" in check.detail and "remove the Deny" in check.action
    )
    gone = Permission("secretsmanager:GetSecretValue", ARN, Decision.NO_ROLE, "does not exist")
    check = check_execution_role(healthy(access=RoleAccess(ROLE, gone, None, KeyInfo(None, "x"))))
    assert check.ok is False and "does not exist" in check.detail
    key = Permission("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k", Decision.DENIED)
    check = check_execution_role(healthy(access=allowed_access(key, KeyInfo(key.resource))))
    assert check.ok is False and "kms:Decrypt" in check.detail
    unknown = check_execution_role(
        healthy(access=allowed_access(None, KeyInfo(None, "alias?", unknown=True)))
    )
    assert unknown.ok is None and "kms:Decrypt not checked: alias?" in unknown.detail


@pytest.mark.parametrize(
    ("status", "ok", "needle"),
    [
        (PullStatus.OK, True, "accepted"),
        (PullStatus.NOT_FOUND, True, "accepted"),
        (PullStatus.CREDENTIALS_REJECTED, False, "rejected"),
        (PullStatus.NO_ACCESS, False, "may not pull acme/app"),
        (PullStatus.OPEN, None, "not exercised"),
        (PullStatus.UNREACHABLE, None, "could not check"),
        (PullStatus.RATE_LIMITED, None, "could not check"),
    ],
)
def test_credentials_by_pull_status(status: PullStatus, ok: bool | None, needle: str) -> None:
    check = check_credentials(healthy(pull=ImageCheck(IMAGE, status, "detail", 0)))
    assert check.ok is ok and needle in check.detail
    if status is PullStatus.UNREACHABLE:
        assert "rejected" not in check.detail  # an unreachable registry is not a credential that fails


def test_the_credential_is_not_sent_where_the_routing_says_no() -> None:
    unmanaged_elsewhere = healthy(route=None, pull=None, secret=state(tags={}), cfg=None)
    check = check_credentials(unmanaged_elsewhere)
    assert check.ok is None and "REGCRED_ALLOWED_REGISTRY_HOSTS" in check.detail
    value_elsewhere = healthy(
        value=SecretValue(username="u", password=PASSWORD, registry="ghcr.io"), pull=None
    )
    assert "names registry ghcr.io" in check_credentials(value_elsewhere).detail
    other_image = healthy(image_ref=ImageRef.parse("ghcr.io/acme/app:1"), pull=None)
    assert "differs from the secret's" in check_credentials(other_image).detail
    checks = run_checks(other_image)
    assert checks[CHECK_NAMES.index("image")].detail == "skipped: the image is not on the secret's registry"


def test_image_and_rate_limit() -> None:
    missing = check_image(healthy(pull=ImageCheck(IMAGE, PullStatus.NOT_FOUND, "manifest unknown", 404)))
    assert missing.ok is False and "push" in missing.action
    headroom = ImageCheck(IMAGE, PullStatus.OK, "ok", 200, "76;w=21600", "100;w=21600")
    assert "76 of 100 pulls left in a 6 h window" in check_rate_limit(healthy(pull=headroom)).detail
    empty = replace(headroom, ratelimit_remaining="0;w=21600")
    assert check_rate_limit(healthy(pull=empty)).ok is False
    assert check_rate_limit(healthy(pull=ImageCheck(IMAGE, PullStatus.RATE_LIMITED, "429", 429))).ok is False


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("76;w=21600", (76, 21600)), ("76", (76, None)), (" 5 ; w = 60 ", (5, 60)), ("x", None), (None, None)],
)
def test_parse_ratelimit(text: str | None, parsed: tuple[int, int | None] | None) -> None:
    assert parse_ratelimit(text) == parsed


# -- an ECS task -------------------------------------------------------------------------------------

TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
OLD_TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/0b69d5c0-d655-4695-98cd-5d2d526d9d5a"
TASK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:3"


def task_facts(**overrides: Any) -> Facts:
    task = {
        "taskArn": TASK_ARN,
        "group": "family:app",
        "lastStatus": "STOPPED",
        "stopCode": "TaskFailedToStart",
        "taskDefinitionArn": TASK_DEFINITION,
    }
    base = healthy(
        job_id=TASK_ARN,
        kind="ecs",
        cluster="prod",
        job=task,
        definition_arn=TASK_DEFINITION,
        container_name="app",
        reason="CannotPullContainerError: failed to resolve ref: 401 Unauthorized",
    )
    return replace(base, **overrides)


def test_a_healthy_task_passes_with_the_task_check_first() -> None:
    checks = run_checks(task_facts())
    assert [c.name for c in checks] == list(TASK_CHECK_NAMES) and TASK_CHECK_NAMES[0] == "task"
    assert [c.ok for c in checks] == [True] * 7 + [None]
    detail = checks[0].detail
    assert detail.startswith("family:app is STOPPED; reason: TaskFailedToStart: CannotPullContainerError")
    assert "failure class auth" in detail and "container app" in detail and TASK_DEFINITION in detail
    report = render_json(TASK_ARN, checks, key="task")
    assert report["task"] == TASK_ARN and "job_id" not in report and report["ok"] is True
    assert job_found(checks)


def test_an_unreadable_task_says_why_and_skips_the_rest() -> None:
    missing = run_checks(Facts(TASK_ARN, region="us-east-1", kind="ecs", cluster="prod"))
    assert missing[0].name == "task" and missing[0].ok is False and not job_found(missing)
    assert "no ECS task" in missing[0].detail and "at least an hour" in missing[0].detail
    assert all(c.detail == "skipped: the task could not be read" for c in missing[1:])
    assumed = check_task(Facts(OLD_TASK_ARN, kind="ecs", cluster="default", cluster_assumed=True))
    assert "cluster default (assumed" in assumed.detail and "--cluster" in assumed.action
    gone = check_task(
        Facts(TASK_ARN, region="eu-west-1", kind="ecs", cluster="prod", job_error="ClusterNotFoundException")
    )
    assert gone.ok is False and gone.detail == "no cluster prod in eu-west-1"
    denied = check_task(Facts(TASK_ARN, kind="ecs", cluster="prod", job_error="AccessDeniedException"))
    assert (
        "DescribeTasks failed (AccessDeniedException)" in denied.detail
        and "ecs:DescribeTasks" in denied.action
    )
    other = check_task(Facts(TASK_ARN, kind="ecs", job_refused=("the task is in account 1", "use account 1")))
    assert (other.ok, other.detail, other.action) == (False, "the task is in account 1", "use account 1")


def test_a_task_speaks_of_its_task_definition() -> None:
    anonymous = check_secret_named(task_facts(parameter=None))
    assert anonymous.ok is False and "container app of the task definition" in anonymous.detail
    assert (
        anonymous.action
        == "add repositoryCredentials.credentialsParameter to container app of the task definition"
    )
    no_role = check_execution_role(task_facts(role=None, access=None))
    assert "the task has no execution role" in no_role.detail and "in the task definition" in no_role.action
    missing = check_image(task_facts(pull=ImageCheck(IMAGE, PullStatus.NOT_FOUND, "manifest unknown", 404)))
    assert missing.action.endswith("in the task definition")
    checks = run_checks(task_facts(parameter=None))
    assert checks[2].detail == "skipped: the task names no secret"
    # Batch's words are unchanged
    assert "job definition" in check_secret_named(healthy(parameter=None)).action


@pytest.mark.parametrize(
    ("text", "cluster", "expected"),
    [
        (TASK_ARN, None, ("prod", TASK_ARN, "us-east-1", "123456789012", False, True)),
        (TASK_ARN, "prod", ("prod", TASK_ARN, "us-east-1", "123456789012", False, True)),
        (OLD_TASK_ARN, "prod", ("prod", OLD_TASK_ARN, "us-east-1", "123456789012", False, False)),
        (OLD_TASK_ARN, None, ("default", OLD_TASK_ARN, "us-east-1", "123456789012", True, False)),
        ("0123456789abcdef0123456789abcdef", "prod", ("prod", None, None, None, False, False)),
        (
            TASK_ARN.replace("aws:ecs", "aws-cn:ecs").replace("us-east-1", "cn-north-1"),
            None,
            (
                "prod",
                TASK_ARN.replace("aws:ecs", "aws-cn:ecs").replace("us-east-1", "cn-north-1"),
                "cn-north-1",
                "123456789012",
                False,
                True,
            ),
        ),
    ],
)
def test_task_arns_in_both_formats(text: str, cluster: str | None, expected: tuple[Any, ...]) -> None:
    ref = parse_task(text, cluster)
    assert (ref.cluster, ref.arn, ref.region, ref.account, ref.cluster_assumed, ref.long_format) == expected
    assert ref.task == (ref.arn or text)


@pytest.mark.parametrize(
    ("text", "cluster", "needle"),
    [
        ("arn:aws:ecs:us-east-1:123456789012:task-definition/app:3", None, "is not an ECS task ARN"),
        ("arn:aws:ecs:us-east-1:123456789012:cluster/prod", None, "is not an ECS task ARN"),
        (
            "arn:aws:ecs:us-east-1:12345:task/prod/0123456789abcdef0123456789abcdef",
            None,
            "not an ECS task ARN",
        ),
        ("arn:aws:ecs:us-east-1:123456789012:task/prod/not-an-id", None, "not an ECS task ARN"),
        (
            "arn:aws:ecs:us-east-1:123456789012:task/a/b/0123456789abcdef0123456789abcdef",
            None,
            "not an ECS task",
        ),
        (TASK_ARN, "staging", "names cluster prod, --cluster says staging"),
        (TASK_ARN, "bad cluster!", "neither a cluster name nor a cluster ARN"),
        ("nightly-etl", "prod", "is not an ECS task id"),
    ],
)
def test_malformed_task_arns_are_refused(text: str, cluster: str | None, needle: str) -> None:
    with pytest.raises(MalformedTaskArn, match=needle.replace("(", r"\(")):
        parse_task(text, cluster)


def test_a_cluster_arn_names_the_cluster() -> None:
    ref = parse_task(TASK_ARN, "arn:aws:ecs:us-east-1:123456789012:cluster/prod")
    assert ref.cluster == "prod"


def test_the_container_checked_is_the_one_whose_pull_failed() -> None:
    definition = {
        "executionRoleArn": ROLE,
        "containerDefinitions": [
            {"name": "sidecar", "image": "busybox:1.36"},
            {"name": "app", "image": IMAGE, "repositoryCredentials": {"credentialsParameter": ARN}},
        ],
    }
    stopped = {"name": "sidecar", "reason": "Essential container in task exited"}
    pulled = {"name": "app", "image": IMAGE, "reason": "CannotPullContainerError: 401 Unauthorized"}
    assert ecs_task_container({"containers": [stopped, pulled]}, definition)[1]["name"] == "app"
    # No reason anywhere: the container whose definition names a secret
    assert ecs_task_container({"containers": [{"name": "sidecar"}, {"name": "app"}]}, definition)[0] == {
        "name": "app"
    }
    assert ecs_task_container({"containers": [pulled]}, definition, "sidecar")[1]["image"] == "busybox:1.36"
    # The task's override of the execution role wins over the definition's
    assert ecs_execution_role({}, definition) == ROLE
    assert ecs_execution_role(
        {"overrides": {"executionRoleArn": "arn:aws:iam::1:role/o"}}, definition
    ).endswith("/o")
    assert "failure class auth" in run_checks(healthy())[0].detail  # a Batch job gets the class too
