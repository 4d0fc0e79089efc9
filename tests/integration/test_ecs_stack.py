"""ECS as a first-class source, on the local stack: `regcred diagnose TASK_ARN` against ECS, IAM, KMS and
Secrets Manager in moto_server, the real distribution registry and the Docker Hub fake; and remediation
tagging a stopped ECS task from its ECS Task State Change event.

What moto 5.2 does with ECS, which these tests rely on: RunTask with launchType FARGATE needs no container
instance; StopTask keeps the task (lastStatus STOPPED, stoppedReason the reason given) and its tags, and
TagResource / ListTagsForResource work on it (AWS documents neither way whether a stopped task can be
tagged, see regcred.ecs); every DescribeTasks call moves a running task one state on towards STOPPED;
DescribeTasks of an unknown task answers no task and no failure (AWS answers a MISSING failure); it matches
a task by its id, whatever the ARN's format. iam:SimulatePrincipalPolicy is answered by `IamSimulator`, as in
test_diagnose.py.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.fakes.iam import IamSimulator
from devstack.lambda_local import LambdaContext, load
from devstack.stack import Stack
from regcred.diagnose import TASK_CHECK_NAMES, Check, diagnose_task
from regcred.ecs import parse_task
from regcred.providers.dockerhub import DockerHubProvider
from regcred.rotation import CURRENT
from regcred.secret import parse
from tests.aws_setup import coalesce_table, stack_managed_secret
from tests.integration.test_diagnose import (
    image,
    make_managed,
    make_role,
    provider,  # noqa: F401 - a fixture
    simulator,  # noqa: F401 - a fixture
    simulator_iam,
)
from tests.integration.test_remediate_stack import SecretsManagerRotation

pytestmark = pytest.mark.stack
EVENTS = Path(__file__).resolve().parents[2] / "events"
PULL_ERROR = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    "{image}: pulling from host {host} failed with status code [manifests 1.0]: 401 Unauthorized"
)


def _client(stack: Stack, service: str) -> Any:
    return boto3.client(service, endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name="us-east-1")


@pytest.fixture
def aws(stack_env: dict[str, str], stack: Stack) -> dict[str, Any]:
    return {s: _client(stack, s) for s in ("ecs", "secretsmanager", "iam", "kms", "sts", "dynamodb", "sns")}


@pytest.fixture
def cluster(aws: dict[str, Any]) -> str:
    name = f"apps-{uuid.uuid4().hex[:6]}"
    aws["ecs"].create_cluster(clusterName=name)
    return name


def run(aws: dict[str, Any], cluster: str, definition: str, **kwargs: Any) -> str:
    """RunTask on FARGATE; the task ARN. (The task definitions here keep the default network mode: with
    awsvpc, moto 5.2.5's RunTask fails on the ENI it creates, "no attribute 'private_dns_name'".)"""
    reply = aws["ecs"].run_task(cluster=cluster, taskDefinition=definition, launchType="FARGATE", **kwargs)
    return str(reply["tasks"][0]["taskArn"])


def failed_task(
    aws: dict[str, Any],
    env: dict[str, str],
    cluster: str,
    *,
    secret: str | None,
    role: str | None,
    repo_tag: str | None = None,
) -> tuple[str, str]:
    """A FARGATE task whose definition pulls the seed image with ``secret``, stopped with the pull error a
    revoked token gives; (task ARN, task definition ARN)."""
    ecs = aws["ecs"]
    container: dict[str, Any] = {
        "name": "app",
        "image": image(env, repo_tag),
        "memory": 512,
        "essential": True,
    }
    if secret:
        container["repositoryCredentials"] = {"credentialsParameter": secret}
    register: dict[str, Any] = {
        "family": f"app-{uuid.uuid4().hex[:6]}",
        "containerDefinitions": [container, {"name": "sidecar", "image": "busybox:1.36", "memory": 64}],
    }
    if role:
        register["executionRoleArn"] = role
    definition = ecs.register_task_definition(**register)["taskDefinition"]["taskDefinitionArn"]
    task = run(aws, cluster, definition)
    reason = PULL_ERROR.format(image=image(env, repo_tag), host=env["REGCRED_REGISTRY"])
    ecs.stop_task(cluster=cluster, task=task, reason=reason)
    return task, definition


def by_name(checks: list[Check]) -> dict[str, Check]:
    assert [c.name for c in checks] == list(TASK_CHECK_NAMES)
    return {c.name: c for c in checks}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    from regcred.cli import main

    code = main(["diagnose", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), out + err


@pytest.fixture
def cli_iam(monkeypatch: pytest.MonkeyPatch, simulator: IamSimulator, stack_env: dict[str, str]) -> None:  # noqa: F811
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", simulator.url)


# -- regcred diagnose TASK_ARN ------------------------------------------------------------------------


def test_a_task_whose_token_was_revoked_fails_the_credentials_check(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    provider: DockerHubProvider,  # noqa: F811
    cluster: str,
    cli_iam: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    managed = make_managed(aws, stack_env, admin_secret, provider)
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    task, definition = failed_task(aws, stack_env, cluster, secret=managed["arn"], role=role)
    provider.revoke(managed["token_id"])  # the vendor killed the token

    code, report, text = run_cli(capsys, task)

    checks = {c["name"]: c for c in report["checks"]}
    assert code == 1 and report["task"] == task and report["cluster"] == cluster and report["ok"] is False
    assert [c["name"] for c in report["checks"]] == list(TASK_CHECK_NAMES)
    first = checks["task"]["detail"]
    assert checks["task"]["ok"] is True and "is STOPPED" in first and "failure class auth" in first
    assert "container app" in first and definition in first and role in first
    assert checks["secret-named"]["ok"] is True and managed["arn"] in checks["secret-named"]["detail"]
    assert all(checks[n]["ok"] is True for n in ("secret-exists", "secret-shape", "execution-role"))
    assert checks["credentials"]["ok"] is False and "rejected" in checks["credentials"]["detail"]
    assert checks["credentials"]["action"] == f"rotate: regcred rotate {managed['name']}"
    assert "credentials_rejected" in checks["image"]["detail"]
    assert report["failed"] == ["credentials"] and report["exit_code"] == 1
    assert managed["password"] not in text


def test_a_task_whose_execution_role_may_not_read_the_secret_is_role_denied(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    provider: DockerHubProvider,  # noqa: F811
    simulator: IamSimulator,  # noqa: F811
    cluster: str,
) -> None:
    managed = make_managed(aws, stack_env, admin_secret, provider)
    role = make_role(aws, ["s3:GetObject"], ["*"])
    task, _ = failed_task(aws, stack_env, cluster, secret=managed["arn"], role=role)

    got = by_name(
        diagnose_task(
            parse_task(task),
            ecs=aws["ecs"],
            sts=aws["sts"],
            sm=aws["secretsmanager"],
            iam=simulator_iam(simulator),
            kms=aws["kms"],
        )
    )

    check = got["execution-role"]
    assert check.ok is False and "implicitDeny" in check.detail and role in check.detail
    assert check.action == f"allow secretsmanager:GetSecretValue on {managed['arn']} in a policy of {role}"
    assert simulator.calls[-1]["PolicySourceArn"] == [role]
    # The secret is readable with the operator's credentials: the registry check runs and the token pulls
    assert got["credentials"].ok is True and got["image"].ok is True


def test_the_execution_role_override_of_a_task_is_the_one_checked(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    provider: DockerHubProvider,  # noqa: F811
    simulator: IamSimulator,  # noqa: F811
    cluster: str,
) -> None:
    managed = make_managed(aws, stack_env, admin_secret, provider)
    allowed = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    denied = make_role(aws, ["s3:GetObject"], ["*"])
    ecs = aws["ecs"]
    definition = ecs.register_task_definition(
        family=f"app-{uuid.uuid4().hex[:6]}",
        executionRoleArn=allowed,
        containerDefinitions=[
            {
                "name": "app",
                "image": image(stack_env),
                "memory": 512,
                "repositoryCredentials": {"credentialsParameter": managed["arn"]},
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    task = run(aws, cluster, definition, overrides={"executionRoleArn": denied})

    got = by_name(
        diagnose_task(
            parse_task(task), ecs=ecs, sts=aws["sts"], sm=aws["secretsmanager"], iam=simulator_iam(simulator)
        )
    )
    assert got["execution-role"].ok is False and denied in got["execution-role"].detail


def test_an_old_format_task_arn_is_diagnosed_with_its_cluster(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    provider: DockerHubProvider,  # noqa: F811
    cluster: str,
    cli_iam: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    managed = make_managed(aws, stack_env, admin_secret, provider)
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    task, _ = failed_task(aws, stack_env, cluster, secret=managed["arn"], role=role)
    # moto finds a task by its id in any ARN format; AWS would for a task created in the old format
    old = task.replace(f"task/{cluster}/", "task/")

    code, report, _ = run_cli(capsys, old, "--cluster", cluster)
    assert code == 0 and report["task"] == old and report["cluster"] == cluster
    assert [c["result"] for c in report["checks"]] == ["pass"] * 7 + ["skip"]

    # Without --cluster, the default cluster is asked (as DescribeTasks does), and the check says so
    code, report, _ = run_cli(capsys, old)
    assert code == 2 and report["cluster"] == "default"
    assert "cluster default (assumed" in report["checks"][0]["detail"]


def test_unknown_foreign_and_malformed_tasks(
    aws: dict[str, Any], stack_env: dict[str, str], cluster: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A task ECS does not know: exit 2, as for a job that cannot be read
    missing = f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{uuid.uuid4().hex}"
    code, report, _ = run_cli(capsys, missing)
    assert code == 2 and report["status"] == "unchecked" and report["checks"][0]["name"] == "task"
    assert report["checks"][0]["detail"].startswith(f"no ECS task {missing} in cluster {cluster}")
    assert all(c["result"] == "skip" for c in report["checks"][1:])
    # A cluster that does not exist
    code, report, _ = run_cli(capsys, missing.replace(f"task/{cluster}/", "task/no-such-cluster/"))
    assert code == 2 and report["checks"][0]["detail"] == "no cluster no-such-cluster in us-east-1"
    # A task of another account than the credentials' (moto's is 123456789012): not asked for
    foreign = missing.replace("123456789012", "210987654321")
    code, report, _ = run_cli(capsys, foreign)
    assert code == 2
    assert report["checks"][0]["detail"] == (
        "the task is in account 210987654321; these credentials are of account 123456789012"
    )
    # Malformed: usage errors (64) before any AWS call
    for argv in (
        ["arn:aws:ecs:us-east-1:123456789012:task/"],
        ["arn:aws:ecs:us-east-1:123456789012:task-definition/app:1"],
        ["arn:aws:batch:us-east-1:123456789012:job/0b69d5c0-d655-4695-98cd-5d2d526d9d5a"],
        [missing, "--cluster", "another"],
        [missing, "--region", "eu-west-1"],
        ["nightly", "--container", "app"],
    ):
        code, report, _ = run_cli(capsys, *argv)
        assert code == 64 and report["exit_code"] == 64, argv
        assert "error" in report and "checks" not in report, argv


# -- remediation tags the task ------------------------------------------------------------------------


@pytest.fixture
def remediate(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, SecretsManagerRotation]]:
    table = coalesce_table(aws["dynamodb"])
    monkeypatch.setenv("REGCRED_COALESCE_TABLE", table)
    monkeypatch.setenv("REGCRED_TOPIC_ARN", aws["sns"].create_topic(Name="regcred")["TopicArn"])
    monkeypatch.setenv("REGCRED_COOLDOWN", "15m")
    app = load("remediate")
    rotation = SecretsManagerRotation()
    app._remediator = app.build_remediator(start_rotation=rotation)
    yield app, rotation
    app._remediator = None


def task_event(task: str, definition: str, cluster: str, env: dict[str, str]) -> dict[str, Any]:
    """The ECS Task State Change event of the sample, for this task."""
    event = copy.deepcopy(json.loads((EVENTS / "remediate_ecs_task_auth_failure.json").read_text()))
    event.update(id=str(uuid.uuid4()), account="123456789012", region="us-east-1", resources=[task])
    detail = event["detail"]
    reason = PULL_ERROR.format(image=image(env), host=env["REGCRED_REGISTRY"])
    detail.update(
        taskArn=task,
        taskDefinitionArn=definition,
        clusterArn=f"arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}",
        stoppedReason=reason,
    )
    detail["containers"][0].update(name="app", image=image(env), taskArn=task, reason=reason)
    return event


def task_tags(aws: dict[str, Any], task: str) -> dict[str, str]:
    return {t["key"]: t["value"] for t in aws["ecs"].list_tags_for_resource(resourceArn=task)["tags"]}


def test_a_stopped_tasks_event_tags_the_task_and_rotates_once(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    cluster: str,
    remediate: tuple[Any, SecretsManagerRotation],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, rotation = remediate
    arn, old = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret, prefix="ecs")
    tasks = [failed_task(aws, stack_env, cluster, secret=arn, role=None) for _ in range(3)]
    from tests.aws_setup import hub

    hub(stack_env).revoke(old.token_id or "")
    # When each stopped task's ECS Task State Change event arrives (the first one twice)
    events = [task_event(t, d, cluster, stack_env) for t, d in tasks]
    results = [app.handler(e, LambdaContext()) for e in [events[0], *events]]
    # Then every task is tagged with what Batch jobs get, and one rotation ran, whose new token pulls
    assert results[0]["class"] == "auth" and results[0]["diagnosis"] == "rotation_started"
    assert results[0]["tagged"] is True and results[1]["duplicate"] is True
    name = arn.split(":secret:")[1].rsplit("-", 1)[0]
    for task, _ in tasks:
        tags = task_tags(aws, task)
        assert tags["regcred:pull-failure"] == "auth" and tags["regcred:secret"] == name
        assert tags["regcred:diagnosis"] == "rotation_started"
    assert rotation.calls == [arn]
    new = parse(aws["secretsmanager"].get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    assert new.token_id != old.token_id
    assert "EcsTaskNotTagged" not in capsys.readouterr().out


def test_a_task_in_the_old_arn_format_is_counted_not_tagged_and_the_event_succeeds(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    cluster: str,
    remediate: tuple[Any, SecretsManagerRotation],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, rotation = remediate
    task, definition = failed_task(aws, stack_env, cluster, secret=None, role=None)
    event = task_event(task.replace(f"task/{cluster}/", "task/"), definition, cluster, stack_env)

    result = app.handler(event, LambdaContext())

    assert result["class"] == "auth" and result["diagnosis"] == "no_repository_credentials"
    assert result["tagged"] is False and task_tags(aws, task) == {}
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if '"EcsTaskNotTagged"' in line]
    assert len(records) == 1 and records[0]["reason"] == "old_arn_format"
    assert rotation.calls == []


def test_a_task_whose_execution_role_may_not_read_the_secret_is_tagged_role_denied(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    cluster: str,
    remediate: tuple[Any, SecretsManagerRotation],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, rotation = remediate
    arn, _ = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret, prefix="ecs")
    role = make_role(aws, ["s3:GetObject"], ["*"])
    task, definition = failed_task(aws, stack_env, cluster, secret=arn, role=role)
    event = task_event(task, definition, cluster, stack_env)
    denied = (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
        "failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to "
        f"fetch secret {arn} from secrets manager: AccessDeniedException"
    )
    event["detail"]["stoppedReason"] = denied
    event["detail"]["containers"][0]["reason"] = denied
    with IamSimulator(aws["iam"]) as iam:
        monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", iam.url)  # moto has no SimulatePrincipalPolicy
        app._remediator = app.build_remediator(start_rotation=rotation)
        result = app.handler(event, LambdaContext())
    # The execution role came from the task definition; the task is tagged with the diagnosis
    assert result["class"] == "secret_retrieval" and result["diagnosis"] == "role_denied"
    assert iam.calls[-1]["PolicySourceArn"] == [role]
    assert task_tags(aws, task)["regcred:diagnosis"] == "role_denied" and rotation.calls == []
