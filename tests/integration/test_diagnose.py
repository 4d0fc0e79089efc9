"""`regcred diagnose JOB_ID` on the local stack: Batch, IAM, KMS and Secrets Manager in moto_server, the
real distribution registry, and the Docker Hub fake as token realm.

moto 5.2 does not implement iam:SimulatePrincipalPolicy (its server answers HTTP 500). The execution-role
check is therefore exercised against `IamSimulator` below: a small HTTP server speaking the IAM Query
API for that one action, which evaluates the role's inline and attached policies as stored in moto
(Allow/Deny, Action and Resource with wildcards; statements with NotAction, NotResource or Condition
are ignored). A separate test pins what happens against moto itself: the check is reported as not
checked, with the error, and nothing crashes.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from devstack.fakes.iam import IamSimulator
from devstack.stack import Stack
from regcred import config, labels
from regcred.cli import main
from regcred.diagnose import CHECK_NAMES, Check, diagnose_job
from regcred.providers.dockerhub import DockerHubProvider
from regcred.registry import Credential, ImageCheck, PullCheck, PullStatus
from regcred.routing import Routing
from regcred.secret import SecretValue, render
from tests.aws_setup import hub as stack_hub

pytestmark = pytest.mark.stack

ECS_TASKS_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


# ------------------------------------------------------------------------------------- fixtures


def _client(stack: Stack, service: str, **kwargs: Any) -> Any:
    return boto3.client(
        service, endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name="us-east-1", **kwargs
    )


@pytest.fixture(scope="module")
def queue(stack: Stack) -> str:
    """A Batch job queue on a FARGATE compute environment; jobs complete at once (no Docker)."""
    reply = requests.post(
        f"{stack.env['AWS_ENDPOINT_URL']}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=10
    )
    reply.raise_for_status()
    ec2, iam, batch = _client(stack, "ec2"), _client(stack, "iam"), _client(stack, "batch")
    suffix = uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"diag-{suffix}", Description="diagnose tests", VpcId=vpc)
    service_role = iam.create_role(
        RoleName=f"diag-batch-service-{suffix}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"diag-{suffix}",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "FARGATE",
            "maxvCpus": 4,
            "subnets": [subnet],
            "securityGroupIds": [group["GroupId"]],
        },
        serviceRole=service_role,
    )["computeEnvironmentArn"]
    name = f"diag-{suffix}"
    batch.create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )
    return name


@pytest.fixture(scope="module")
def simulator(stack: Stack) -> Iterator[IamSimulator]:
    with IamSimulator(_client(stack, "iam")) as running:
        yield running


@pytest.fixture
def aws(stack_env: dict[str, str], stack: Stack) -> dict[str, Any]:
    return {s: _client(stack, s) for s in ("batch", "secretsmanager", "iam", "kms")}


@pytest.fixture
def provider(stack_env: dict[str, str]) -> Iterator[DockerHubProvider]:
    hub = stack_hub(stack_env)
    hub.minted = []  # type: ignore[attr-defined]
    yield hub
    for token_id in hub.minted:  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # some were revoked by the test already
            hub.revoke(token_id)


@pytest.fixture
def managed(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str, provider: DockerHubProvider
) -> dict[str, str]:
    """A managed secret holding a live token minted at the fake (its AWSCURRENT)."""
    return make_managed(aws, stack_env, admin_secret, provider)


def make_managed(
    aws: dict[str, Any],
    env: dict[str, str],
    admin_secret: str,
    provider: DockerHubProvider,
    kms_key_id: str | None = None,
) -> dict[str, str]:
    name = f"diagnose/{uuid.uuid4().hex[:8]}"
    issued = provider.issue(labels.label_for(name, f"onboard-{uuid.uuid4()}"), None)
    provider.minted.append(issued.token_id)  # type: ignore[attr-defined]
    value = SecretValue(
        issued.username, issued.password, env["REGCRED_REGISTRY"], "dockerhub", issued.token_id
    )
    create: dict[str, Any] = {
        "Name": name,
        "SecretString": render(value),
        "Tags": [
            {"Key": config.MANAGED, "Value": "true"},
            {"Key": config.PROVIDER, "Value": "dockerhub"},
            {"Key": config.ADMIN_SECRET, "Value": admin_secret},
            {"Key": config.REGISTRY, "Value": env["REGCRED_REGISTRY"]},
            {"Key": config.API, "Value": env["REGCRED_DOCKERHUB_API"]},
        ],
    }
    if kms_key_id:
        create["KmsKeyId"] = kms_key_id
    arn = aws["secretsmanager"].create_secret(**create)["ARN"]
    return {"name": name, "arn": arn, "token_id": issued.token_id, "password": issued.password}


def make_role(aws: dict[str, Any], actions: Sequence[str], resources: Sequence[str]) -> str:
    iam = aws["iam"]
    name = f"diag-exec-{uuid.uuid4().hex[:8]}"
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=ECS_TASKS_TRUST)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="pull-secret",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": list(resources)}],
            }
        ),
    )
    return arn


def submit(
    aws: dict[str, Any], queue: str, image: str, *, secret: str | None, role: str | None
) -> tuple[str, str]:
    """Register a Fargate job definition and submit a job of it; (job id, job definition ARN)."""
    container: dict[str, Any] = {
        "image": image,
        "command": ["true"],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
    }
    if role:
        container["executionRoleArn"] = role
    if secret:
        container["repositoryCredentials"] = {"credentialsParameter": secret}
    batch = aws["batch"]
    definition = batch.register_job_definition(
        jobDefinitionName=f"diag-{uuid.uuid4().hex[:8]}",
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties=container,
    )["jobDefinitionArn"]
    job = batch.submit_job(jobName="diag", jobQueue=queue, jobDefinition=definition)["jobId"]
    return job, definition


def image(env: dict[str, str], repo_tag: str | None = None) -> str:
    return f"{env['REGCRED_REGISTRY']}/{repo_tag or env['REGCRED_SEED_IMAGE']}"


def by_name(checks: Sequence[Check]) -> dict[str, Check]:
    assert [c.name for c in checks] == list(CHECK_NAMES)
    return {c.name: c for c in checks}


def oks(checks: Sequence[Check]) -> list[bool | None]:
    return [c.ok for c in checks]


def text_of(checks: Sequence[Check]) -> str:
    return "\n".join(f"{c.detail} {c.action}" for c in checks)


def run_cli(job_id: str, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["diagnose", job_id, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_iam(monkeypatch: pytest.MonkeyPatch, simulator: IamSimulator, stack_env: dict[str, str]) -> None:
    """The CLI's boto3 IAM client goes to the simulator (boto3 honours AWS_ENDPOINT_URL_IAM)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", simulator.url)


def simulator_iam(simulator: IamSimulator) -> Any:
    return boto3.client("iam", endpoint_url=simulator.url, region_name="us-east-1")


# ---------------------------------------------------------------------------------------- tests


def test_a_healthy_job_passes_every_check(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    simulator: IamSimulator,
    cli_iam: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    job, definition = submit(aws, queue, image(stack_env), secret=managed["arn"], role=role)

    checks = diagnose_job(
        job, batch=aws["batch"], sm=aws["secretsmanager"], iam=simulator_iam(simulator), kms=aws["kms"]
    )

    got = by_name(checks)
    # The real registry sends no RateLimit headers: that check does not apply.
    assert oks(checks) == [True] * 7 + [None], checks
    assert all(c.action == "" for c in checks)
    assert image(stack_env) in got["job"].detail and definition in got["job"].detail
    assert role in got["job"].detail
    assert managed["arn"] in got["secret-named"].detail
    assert "managed by regcred (dockerhub)" in got["secret-exists"].detail
    assert managed["token_id"] in got["secret-shape"].detail
    assert "secretsmanager:GetSecretValue" in got["execution-role"].detail
    assert "AWS managed key" in got["execution-role"].detail
    assert "manifest found" in got["image"].detail
    assert "no RateLimit headers" in got["rate-limit"].detail
    # The simulator was asked exactly what the execution role needs.
    asked = simulator.calls[-1]
    assert asked["PolicySourceArn"] == [role]
    assert asked["ActionNames.member.1"] == ["secretsmanager:GetSecretValue"]
    assert asked["ResourceArns.member.1"] == [managed["arn"]]

    # The CLI: text, then JSON; exit 0; never the password.
    code, out, err = run_cli(job, capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["PASS", f"{name}:"] for name in CHECK_NAMES[:-1]
    ] + [["SKIP", "rate-limit:"]]
    code, out, err = run_cli(job, capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["job_id"] == job
    assert [c["name"] for c in report["checks"]] == list(CHECK_NAMES)
    assert set(report["checks"][0]) == {"name", "ok", "detail", "action", "result"}
    assert report["status"] == "ok" and report["exit_code"] == 0 and report["failed"] == []
    for blob in (out, err, text_of(checks)):
        assert managed["password"] not in blob


def test_a_revoked_token_fails_the_credentials_check_with_the_rotate_action(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    provider: DockerHubProvider,
    cli_iam: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    job, _ = submit(aws, queue, image(stack_env), secret=managed["arn"], role=role)
    provider.revoke(managed["token_id"])  # the vendor killed the token

    code, out, err = run_cli(job, capsys, "--json")

    report = json.loads(out)
    checks = {c["name"]: c for c in report["checks"]}
    assert code == 1 and report["ok"] is False
    assert checks["credentials"]["ok"] is False
    assert "rejected" in checks["credentials"]["detail"]
    assert checks["credentials"]["action"] == f"rotate: regcred rotate {managed['name']}"
    assert checks["image"]["ok"] is None and checks["rate-limit"]["ok"] is None
    assert "credentials_rejected" in checks["rate-limit"]["detail"]
    assert all(checks[n]["ok"] is True for n in CHECK_NAMES[:5])
    assert managed["password"] not in out + err


def test_a_role_without_permission_fails_with_the_missing_action(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    simulator: IamSimulator,
) -> None:
    role = make_role(aws, ["s3:GetObject"], ["*"])
    job, _ = submit(aws, queue, image(stack_env), secret=managed["arn"], role=role)

    got = by_name(
        diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=simulator_iam(simulator))
    )

    check = got["execution-role"]
    assert check.ok is False
    assert "implicitDeny" in check.detail and role in check.detail
    assert check.action == f"allow secretsmanager:GetSecretValue on {managed['arn']} in a policy of {role}"
    # The rest of the chain is independent of the role and still runs.
    assert got["credentials"].ok is True and got["image"].ok is True


def test_an_explicit_deny_and_a_missing_role_are_reported(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    simulator: IamSimulator,
) -> None:
    role = make_role(aws, ["secretsmanager:*"], ["*"])
    name = role.rsplit("/", 1)[-1]
    aws["iam"].put_role_policy(
        RoleName=name,
        PolicyName="deny",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
            }
        ),
    )
    gone = role.replace(name, name + "-gone")
    iam = simulator_iam(simulator)
    found: dict[str, Check] = {}
    for execution_role in (role, gone):
        job, _ = submit(aws, queue, image(stack_env), secret=managed["arn"], role=execution_role)
        checks = diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=iam)
        found[execution_role] = by_name(checks)["execution-role"]

    assert found[role].ok is False and "explicitDeny" in found[role].detail
    assert found[role].action == (
        f"remove the Deny of secretsmanager:GetSecretValue on {managed['arn']} that applies to {role}"
    )
    assert found[gone].ok is False and f"execution role {gone} does not exist" in found[gone].detail
    assert found[gone].action == "create the role or fix executionRoleArn in the job definition"


def test_a_customer_kms_key_needs_kms_decrypt_on_the_key(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    admin_secret: str,
    provider: DockerHubProvider,
    simulator: IamSimulator,
) -> None:
    key = aws["kms"].create_key(Description="diagnose test")["KeyMetadata"]
    alias = f"alias/diag-{uuid.uuid4().hex[:8]}"
    aws["kms"].create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    secret = make_managed(aws, stack_env, admin_secret, provider, kms_key_id=alias)
    only_secret = make_role(aws, ["secretsmanager:GetSecretValue"], [secret["arn"]])
    both = make_role(aws, ["secretsmanager:GetSecretValue", "kms:Decrypt"], [secret["arn"], key["Arn"]])
    iam = simulator_iam(simulator)

    job, _ = submit(aws, queue, image(stack_env), secret=secret["arn"], role=only_secret)
    check = by_name(diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=iam, kms=aws["kms"]))[
        "execution-role"
    ]
    assert check.ok is False
    # The alias was resolved to the key ARN, which is what a policy must name.
    assert check.action == f"allow kms:Decrypt on {key['Arn']} in a policy of {only_secret}"

    job, _ = submit(aws, queue, image(stack_env), secret=secret["arn"], role=both)
    check = by_name(diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=iam, kms=aws["kms"]))[
        "execution-role"
    ]
    assert check.ok is True and f"kms:Decrypt on {key['Arn']}" in check.detail

    # Without a KMS client an alias cannot be resolved: not checked rather than guessed.
    check = by_name(diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=iam))[
        "execution-role"
    ]
    assert check.ok is None and alias in check.detail


def test_moto_does_not_simulate_policies_and_the_check_says_so(
    aws: dict[str, Any], queue: str, stack_env: dict[str, str], managed: dict[str, str], stack: Stack
) -> None:
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    job, _ = submit(aws, queue, image(stack_env), secret=managed["arn"], role=role)
    moto_iam = _client(stack, "iam", config=Config(retries={"max_attempts": 1}))

    checks = diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=moto_iam)

    check = by_name(checks)["execution-role"]
    assert check.ok is None
    assert "iam:SimulatePrincipalPolicy failed" in check.detail
    assert oks(checks) == [True] * 4 + [None, True, True, None]


def test_a_secret_that_is_not_json_fails_the_shape_check_without_echoing_it(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    cli_iam: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    garbage = f"user=svc password=hunter2-{uuid.uuid4().hex}"
    name = f"diagnose/plain-{uuid.uuid4().hex[:8]}"
    arn = aws["secretsmanager"].create_secret(Name=name, SecretString=garbage)["ARN"]
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [arn])
    job, _ = submit(aws, queue, image(stack_env), secret=name, role=role)

    code, out, err = run_cli(job, capsys, "--json")

    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 1
    # An unmanaged secret is a warning, not a failure.
    assert (
        checks["secret-exists"]["ok"] is True
        and "not managed by regcred" in checks["secret-exists"]["detail"]
    )
    assert checks["secret-shape"]["ok"] is False and "not JSON" in checks["secret-shape"]["detail"]
    assert '"username"' in checks["secret-shape"]["action"]
    assert checks["execution-role"]["ok"] is True
    for later in ("credentials", "image", "rate-limit"):
        assert checks[later]["ok"] is None and checks[later]["detail"].startswith("skipped:")
    assert "hunter2" not in out + err


def test_a_missing_image_fails_the_image_check_only(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    simulator: IamSimulator,
) -> None:
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    missing = image(stack_env, f"{stack_env['REGCRED_DOCKERHUB_ADMIN_USER']}/app:no-such-tag")
    job, _ = submit(aws, queue, missing, secret=managed["arn"], role=role)

    checks = diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=simulator_iam(simulator))

    got = by_name(checks)
    assert got["credentials"].ok is True
    assert got["image"].ok is False and "unknown" in got["image"].detail
    assert got["image"].action.startswith(f"push {missing}")
    assert oks(checks) == [True] * 6 + [False, None]


def test_a_job_definition_without_repository_credentials(
    aws: dict[str, Any], queue: str, stack_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    job, _ = submit(aws, queue, image(stack_env), secret=None, role=None)

    code, out, _ = run_cli(job, capsys)

    assert code == 1
    lines = out.splitlines()
    assert lines[1] == (
        "FAIL secret-named: neither the job nor its job definition sets repositoryCredentials: the image "
        "is pulled anonymously — add repositoryCredentials.credentialsParameter to the job definition"
    )
    assert all(line.startswith("SKIP ") and "skipped: the job names no secret" in line for line in lines[2:])


def test_a_secret_that_does_not_exist_and_a_job_without_execution_role(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    simulator: IamSimulator,
) -> None:
    iam = simulator_iam(simulator)
    ghost = managed["arn"].replace(":secret:diagnose/", ":secret:diagnose/ghost-")
    job, _ = submit(aws, queue, image(stack_env), secret=ghost, role=None)
    got = by_name(diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=iam))
    assert got["secret-exists"].ok is False and "does not exist" in got["secret-exists"].detail
    assert (
        got["secret-exists"].action == "create the secret or fix repositoryCredentials.credentialsParameter"
    )
    assert [got[n].ok for n in CHECK_NAMES[3:]] == [None] * 5

    job, _ = submit(aws, queue, image(stack_env), secret=managed["arn"], role=None)
    check = by_name(diagnose_job(job, batch=aws["batch"], sm=aws["secretsmanager"], iam=iam))[
        "execution-role"
    ]
    assert check.ok is False and "no execution role" in check.detail
    assert check.action.startswith("set executionRoleArn")


def test_an_unknown_job_exits_2(
    aws: dict[str, Any], stack_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(uuid.uuid4())
    checks = diagnose_job(missing, batch=aws["batch"], sm=aws["secretsmanager"], iam=aws["iam"])
    assert oks(checks) == [False] + [None] * 7
    assert by_name(checks)["job"].action.startswith("check the job id")

    code, out, _ = run_cli(missing, capsys, "--json")
    report = json.loads(out)
    assert code == 2 and report["ok"] is False and report["job_id"] == missing


def test_an_image_on_another_registry_than_the_secret(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    simulator: IamSimulator,
) -> None:
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    job, _ = submit(aws, queue, "docker.io/library/busybox:1.36", secret=managed["arn"], role=role)

    def never(*args: Any) -> PullCheck:
        raise AssertionError("no registry may be asked with a credential for another registry")

    got = by_name(
        diagnose_job(
            job, batch=aws["batch"], sm=aws["secretsmanager"], iam=simulator_iam(simulator), check=never
        )
    )
    assert got["credentials"].ok is False
    assert got["credentials"].detail == (
        f"the image's registry registry-1.docker.io differs from the secret's {stack_env['REGCRED_REGISTRY']}"
    )
    assert got["image"].ok is None and got["rate-limit"].ok is None


@pytest.mark.parametrize(
    ("remaining", "limit", "ok", "text"),
    [
        ("76;w=21600", "100;w=21600", True, "76 of 100 pulls left in a 6 h window"),
        ("0;w=21600", "100;w=21600", False, "0 of 100 pulls left in a 6 h window"),
    ],
)
def test_rate_limit_headroom_from_the_manifest_head(
    aws: dict[str, Any],
    queue: str,
    stack_env: dict[str, str],
    managed: dict[str, str],
    simulator: IamSimulator,
    remaining: str,
    limit: str,
    ok: bool,
    text: str,
) -> None:
    role = make_role(aws, ["secretsmanager:GetSecretValue"], [managed["arn"]])
    job, _ = submit(aws, queue, image(stack_env), secret=managed["arn"], role=role)
    seen: list[tuple[Routing, Sequence[str]]] = []

    def hub_like(route: Routing, credential: Credential, images: Sequence[str]) -> PullCheck:
        seen.append((route, list(images)))
        return PullCheck(
            route.registry_name,
            (ImageCheck(images[0], PullStatus.OK, "manifest found", 200, remaining, limit),),
        )

    got = by_name(
        diagnose_job(
            job, batch=aws["batch"], sm=aws["secretsmanager"], iam=simulator_iam(simulator), check=hub_like
        )
    )
    assert got["rate-limit"].ok is ok and text in got["rate-limit"].detail
    assert (got["rate-limit"].action != "") is (not ok)
    # The check got the secret's configured registry and its trusted realms: its API host, and not the
    # provider's built-in realm, since the stack's environment (REGCRED_LOCAL_ONLY) admits loopback hosts
    # only.
    route, images = seen[0]
    assert len(seen) == 1 and images == [image(stack_env)]
    assert route.registry_name == stack_env["REGCRED_REGISTRY"]
    realms = {origin.url() for origin in route.realms}
    assert stack_env["REGCRED_LOCAL_ONLY"] == "1"
    assert stack_env["REGCRED_DOCKERHUB_API"] in realms and "https://auth.docker.io" not in realms


def test_the_pull_reason_comes_from_the_last_attempt(
    aws: dict[str, Any], queue: str, stack_env: dict[str, str], managed: dict[str, str]
) -> None:
    """moto's jobs succeed, so the failure Batch would record is added to its answer."""
    job, _ = submit(aws, queue, image(stack_env), secret=managed["arn"], role=None)
    reason = (
        "CannotPullContainerError: Error response from daemon: pull access denied for "
        f"{image(stack_env)}, repository does not exist or may require 'docker login'"
    )

    class FailedBatch:
        def __init__(self, real: Any) -> None:
            self.real = real

        def describe_jobs(self, **kwargs: Any) -> Any:
            reply = self.real.describe_jobs(**kwargs)
            for found in reply["jobs"]:
                found["status"] = "FAILED"
                found["statusReason"] = "Task failed to start"
                found["attempts"] = [
                    {"container": {"reason": "older attempt"}},
                    {"container": {"reason": reason}},
                ]
            return reply

        def describe_job_definitions(self, **kwargs: Any) -> Any:
            return self.real.describe_job_definitions(**kwargs)

    detail = by_name(
        diagnose_job(job, batch=FailedBatch(aws["batch"]), sm=aws["secretsmanager"], iam=aws["iam"])
    )["job"].detail
    assert "is FAILED" in detail and reason in detail and "older attempt" not in detail
