"""Remediation decisions against moto (Secrets Manager, Batch, DynamoDB, SNS, IAM) with a pull check
that knows which passwords the registry accepts."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from regcred import config, jobs
from regcred.coalesce import Coalescer
from regcred.ecs import ecs_tag_value, ecs_tags
from regcred.events import failure_of, parse_event, rotation_of
from regcred.held_jobs import HeldJobs, HoldResult, Taken
from regcred.hosts import Origin
from regcred.registry import Credential, ImageCheck, PullCheck, PullStatus
from regcred.remediation import Diagnosis, Remediator, Settings, tag_value
from regcred.resubmission import ResubmissionIncomplete
from regcred.rotation import CURRENT, PENDING
from regcred.routing import Deployment, Routing
from regcred.secret import SecretValue, parse, render
from tests.aws_setup import assume_role_policy, batch_queue, coalesce_table

EVENTS = Path(__file__).resolve().parents[2] / "events"
REGISTRY = "registry.example.test"
IMAGE = f"{REGISTRY}/acme/app:1.0"
DEPLOYMENT = Deployment(registry_hosts=frozenset({Origin("https", REGISTRY, 443)}))


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


class Registry:
    """Accepts the passwords in ``live``; answers ``status_for_live`` for them."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.status_for_live = PullStatus.OK
        self.calls: list[str] = []
        self.routes: list[Routing] = []

    def __call__(
        self,
        route: Routing,
        credential: Credential,
        images: Sequence[str],
        *,
        deadline: Any = None,
        prove: bool = False,
    ) -> PullCheck:
        self.calls.append(credential.password)
        self.routes.append(route)
        status = self.status_for_live if credential.password in self.live else PullStatus.CREDENTIALS_REJECTED
        return PullCheck(route.registry_name, tuple(ImageCheck(i, status, status.value) for i in images))


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws(config={"batch": {"use_docker": False}}):
        region = "us-east-1"
        clients = {
            name: boto3.client(name, region_name=region)
            for name in ("secretsmanager", "batch", "dynamodb", "sns", "iam")
        }
        coalesce_table(clients["dynamodb"], "coalesce")
        clients["topic"] = clients["sns"].create_topic(Name="regcred")["TopicArn"]
        sqs = boto3.client("sqs", region_name=region)
        queue = sqs.create_queue(QueueName="notes")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        clients["sns"].subscribe(TopicArn=clients["topic"], Protocol="sqs", Endpoint=queue_arn)
        clients["sqs"], clients["queue"] = sqs, queue
        yield clients


def notifications(aws: dict[str, Any]) -> list[str]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["Message"] for m in messages]


def managed_secret(
    aws: dict[str, Any],
    registry: Registry,
    *,
    rotation: bool = True,
    promoted_ago: timedelta | None = None,
    previous_live: bool = False,
) -> tuple[str, SecretValue]:
    """A managed secret whose AWSCURRENT credential the registry rejects (dead), with a live previous."""
    sm = aws["secretsmanager"]
    name = f"batch/{uuid.uuid4().hex[:6]}"
    old = SecretValue("svc", f"old-{uuid.uuid4().hex}", REGISTRY, "dockerhub", token_id="tok-old")
    tags = [
        {"Key": config.MANAGED, "Value": "true"},
        {"Key": config.PROVIDER, "Value": "dockerhub"},
        {"Key": config.REGISTRY, "Value": REGISTRY},
        {"Key": config.IMAGES, "Value": IMAGE},
        {"Key": config.GRACE, "Value": "24h"},
    ]
    arn = sm.create_secret(Name=name, SecretString=render(old), Tags=tags)["ARN"]
    if rotation:
        # moto enables rotation when given rules and no Lambda, re-labelling a copy of AWSCURRENT.
        sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    new = SecretValue("svc", f"new-{uuid.uuid4().hex}", REGISTRY, "dockerhub", token_id="tok-new")
    version = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=arn, ClientRequestToken=version, SecretString=render(new), VersionStages=[CURRENT]
    )
    if promoted_ago is not None:
        promoted = (datetime.now(UTC) - promoted_ago).strftime("%Y-%m-%dT%H:%M:%SZ")
        sm.tag_resource(SecretId=arn, Tags=[{"Key": config.PROMOTED_AT, "Value": promoted}])
    if previous_live:
        registry.live.add(old.password)
    return arn, new


def event_for(
    template: str, secret_arn: str | None, job_id: str | None = None, image: str = IMAGE
) -> dict[str, Any]:
    event = copy.deepcopy(load(template))
    job_id = job_id or str(uuid.uuid4())
    detail = event["detail"]
    detail["jobId"] = job_id
    detail["jobArn"] = f"arn:aws:batch:us-east-1:123456789012:job/{job_id}"
    event["id"] = str(uuid.uuid4())
    detail["container"]["image"] = image
    if secret_arn:
        detail["container"]["repositoryCredentials"] = {"credentialsParameter": secret_arn}
    else:
        detail["container"].pop("repositoryCredentials", None)
    return event


class Rotations:
    def __init__(self) -> None:
        self.started: list[str] = []

    def __call__(self, arn: str) -> None:
        self.started.append(arn)


def remediator(
    aws: dict[str, Any],
    registry: Registry,
    rotations: Rotations,
    *,
    table: str | None = "coalesce",
    resubmit: bool = False,
    held: HeldJobs | None = None,
) -> Remediator:
    return Remediator(
        sm=aws["secretsmanager"],
        batch=aws["batch"],
        iam=aws["iam"],
        sns=aws["sns"],
        coalescer=Coalescer(aws["dynamodb"] if table else None, table, 900),
        check=registry,
        deployment=DEPLOYMENT,
        settings=Settings(topic_arn=aws["topic"], resubmit=resubmit),
        start_rotation=rotations,
        held=held or HeldJobs(aws["dynamodb"] if table else None, table),
    )


def job_tags(aws: dict[str, Any], event: dict[str, Any]) -> dict[str, str]:
    return aws["batch"].list_tags_for_resource(resourceArn=event["detail"]["jobArn"])["tags"]  # type: ignore[no-any-return]


def handle(r: Remediator, event: dict[str, Any]) -> Any:
    return r.handle(failure_of(parse_event(event)))


def test_a_storm_of_auth_failures_probes_and_rotates_once_and_tags_every_job(aws: dict[str, Any]) -> None:
    # Given a secret whose current token is dead and 300 jobs failing on it, each delivered twice
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations)
    events = [event_for("remediate_batch_auth_failure.json", arn) for _ in range(300)]
    outcomes = [handle(r, e) for e in events + events]
    # Then one probe, one rotation, one notification; every job tagged once
    assert len(registry.calls) == 1
    assert rotations.started == [arn]
    assert sum(o.tagged for o in outcomes) == 300
    assert sum(o.duplicate for o in outcomes) == 300
    tags = job_tags(aws, events[-1])
    assert tags["regcred:pull-failure"] == "auth"
    assert tags["regcred:diagnosis"] == "rotation_started"
    assert tags["regcred:secret"] == tag_value(arn.split(":secret:")[1].rsplit("-", 1)[0])
    notes = notifications(aws)
    assert len(notes) == 1 and "rotation_started" in notes[0]


def test_coalescing_holds_across_two_containers_through_dynamodb(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    first, second = remediator(aws, registry, rotations), remediator(aws, registry, rotations)
    a = handle(first, event_for("remediate_batch_auth_failure.json", arn))
    b = handle(second, event_for("remediate_batch_auth_failure.json", arn))
    assert a.diagnosis == "rotation_started" and b.diagnosis == "rotation_started"
    assert rotations.started == [arn] and len(registry.calls) == 1


def test_a_rejected_new_credential_within_grace_is_rolled_back_to_a_previous_that_pulls(
    aws: dict[str, Any],
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, new = managed_secret(aws, registry, promoted_ago=timedelta(hours=1), previous_live=True)
    outcome = handle(
        remediator(aws, registry, rotations), event_for("remediate_batch_auth_failure.json", arn)
    )
    assert outcome.diagnosis == "rolled_back" and "rolled_back" in outcome.actions
    current = parse(
        aws["secretsmanager"].get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"]
    )
    assert current.token_id == "tok-old"
    assert rotations.started == []
    assert any("rolled back" in n for n in notifications(aws))
    assert new.password not in json.dumps(notifications(aws))


def test_past_grace_the_secret_is_rotated_not_rolled_back(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry, promoted_ago=timedelta(days=3), previous_live=True)
    outcome = handle(
        remediator(aws, registry, rotations), event_for("remediate_batch_auth_failure.json", arn)
    )
    assert outcome.diagnosis == "rotation_started" and rotations.started == [arn]


def test_a_rotation_in_progress_is_detected_not_fought(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, new = managed_secret(aws, registry)
    aws["secretsmanager"].put_secret_value(
        SecretId=arn,
        ClientRequestToken=str(uuid.uuid4()),
        SecretString=render(new),
        VersionStages=["AWSPENDING"],
    )
    outcome = handle(
        remediator(aws, registry, rotations), event_for("remediate_batch_auth_failure.json", arn)
    )
    assert outcome.diagnosis == "rotation_in_progress" and rotations.started == []


@pytest.mark.parametrize(
    ("status", "diagnosis"),
    [
        (PullStatus.OK, "transient"),
        (PullStatus.NO_ACCESS, "scope"),
        (PullStatus.NOT_FOUND, "not_found"),
        (PullStatus.UNREACHABLE, "registry_unreachable"),
    ],
)
def test_when_the_credential_is_accepted_nothing_is_rotated(
    aws: dict[str, Any], status: PullStatus, diagnosis: str
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, new = managed_secret(aws, registry)
    registry.live.add(new.password)
    registry.status_for_live = status
    outcome = handle(
        remediator(aws, registry, rotations), event_for("remediate_batch_ambiguous_denial.json", arn)
    )
    assert outcome.failure_class.value == "auth_or_not_found"
    assert outcome.diagnosis == diagnosis and rotations.started == []


def test_secret_retrieval_never_rotates_even_when_the_role_cannot_be_simulated(aws: dict[str, Any]) -> None:
    # moto does not implement SimulatePrincipalPolicy: the diagnosis says so instead of guessing
    # (tests/integration/test_remediate_stack.py simulates for real against an IAM fake).
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    trust = assume_role_policy("ecs-tasks.amazonaws.com")
    role = aws["iam"].create_role(RoleName="batch-execution", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    r = remediator(aws, registry, rotations)
    for _ in range(3):
        event = event_for("remediate_batch_secret_access_denied.json", arn)
        event["detail"]["container"]["executionRoleArn"] = role
        outcome = handle(r, event)
        assert outcome.failure_class.value == "secret_retrieval"
        assert outcome.diagnosis == "role_unchecked"
        assert job_tags(aws, event)["regcred:diagnosis"] == "role_unchecked"
    assert rotations.started == [] and registry.calls == []
    assert len(notifications(aws)) == 1


@pytest.mark.parametrize(
    ("template", "failure_class", "diagnosis"),
    [
        ("remediate_batch_rate_limit.json", "rate_limit", "rate_limited"),
        ("remediate_batch_manifest_unknown.json", "not_found", "not_found"),
    ],
)
def test_non_credential_classes_are_tagged_and_notified_once_never_rotated(
    aws: dict[str, Any], template: str, failure_class: str, diagnosis: str
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations)
    events = [event_for(template, arn) for _ in range(5)]
    for event in events:
        outcome = handle(r, event)
        assert outcome.failure_class.value == failure_class and outcome.diagnosis == diagnosis
    assert rotations.started == [] and registry.calls == []
    assert all(job_tags(aws, e)["regcred:pull-failure"] == failure_class for e in events)
    assert len(notifications(aws)) == 1


def test_child_jobs_are_not_tagged(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    parent = str(uuid.uuid4())
    outcome = handle(
        remediator(aws, registry, rotations),
        event_for("remediate_batch_rate_limit.json", arn, job_id=f"{parent}:7"),
    )
    assert outcome.failure_class.value == "rate_limit" and not outcome.tagged


def test_a_success_event_and_other_failures_are_ignored(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations)
    event = event_for("remediate_batch_auth_failure.json", arn)
    event["detail"]["attempts"][0]["container"]["reason"] = (
        "OutOfMemoryError: Container killed due to memory usage"
    )
    event["detail"]["container"]["reason"] = None
    outcome = handle(r, event)
    assert outcome.failure_class.value == "other" and not outcome.tagged and registry.calls == []


def test_without_repository_credentials_an_auth_failure_says_so(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    r = remediator(aws, registry, rotations)
    batch = aws["batch"]
    batch.register_job_definition(
        jobDefinitionName="nightly-etl",
        type="container",
        containerProperties={"image": IMAGE, "vcpus": 1, "memory": 128},
    )
    event = event_for("remediate_batch_auth_failure.json", None)
    event["detail"]["jobDefinition"] = "nightly-etl:1"
    outcome = handle(r, event)
    assert outcome.diagnosis == "no_repository_credentials" and outcome.secret is None


def test_the_secret_comes_from_the_job_definition_when_the_event_has_none(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    jd = aws["batch"].register_job_definition(
        jobDefinitionName="nightly-etl",
        type="container",
        containerProperties={
            "image": IMAGE,
            "vcpus": 1,
            "memory": 128,
            "repositoryCredentials": {"credentialsParameter": arn},
        },
    )["jobDefinitionArn"]
    r = remediator(aws, registry, rotations)
    for _ in range(3):
        event = event_for("remediate_batch_auth_failure.json", None)
        event["detail"]["jobDefinition"] = jd
        assert handle(r, event).secret == arn
    assert r.job_definitions.misses == 1
    assert rotations.started == [arn]


def test_resubmission_is_opt_in_and_happens_at_most_once(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry, promoted_ago=timedelta(hours=1), previous_live=True)
    event = event_for("remediate_batch_auth_failure.json", arn)
    event["detail"]["jobQueue"] = batch_queue(aws["batch"], aws["iam"])
    event["detail"]["jobDefinition"] = aws["batch"].register_job_definition(
        jobDefinitionName="nightly-etl",
        type="container",
        containerProperties={
            "image": IMAGE,
            "vcpus": 1,
            "memory": 128,
            "repositoryCredentials": {"credentialsParameter": arn},
        },
    )["jobDefinitionArn"]
    outcome = handle(remediator(aws, registry, rotations, resubmit=True), event)
    assert outcome.diagnosis == "rolled_back" and "resubmitted" in outcome.actions
    new_job = job_tags(aws, event)["regcred:resubmitted-as"]
    submitted = aws["batch"].describe_jobs(jobs=[new_job])["jobs"]
    assert submitted[0]["jobName"] == "nightly-etl"
    assert submitted[0]["tags"]["regcred:resubmission-of"] == event["detail"]["jobId"]
    # A redelivery, or the resubmitted job failing again, is not resubmitted
    handle(remediator(aws, registry, rotations, resubmit=True), event)
    again = event_for("remediate_batch_auth_failure.json", arn)
    again["detail"]["tags"] = {"regcred:resubmission-of": event["detail"]["jobId"]}
    again["detail"]["jobQueue"] = event["detail"]["jobQueue"]
    assert "resubmitted" not in handle(remediator(aws, registry, rotations, resubmit=True), again).actions
    jobs = aws["batch"].list_jobs(jobQueue=event["detail"]["jobQueue"], jobStatus="SUCCEEDED")[
        "jobSummaryList"
    ]
    pending = [
        j
        for s in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
        for j in aws["batch"].list_jobs(jobQueue=event["detail"]["jobQueue"], jobStatus=s)["jobSummaryList"]
    ]
    assert len(jobs) + len(pending) == 1


def test_tag_values_follow_batch_rules() -> None:
    assert tag_value("a!b#c" + "x" * 300) == "a_b_c" + "x" * 251
    assert tag_value("batch/dockerhub-pull") == "batch/dockerhub-pull"


def test_every_event_file_parses() -> None:
    # Contract: what sam local invoke -e feeds each function is what its parser accepts.
    for path in sorted(EVENTS.glob("remediate_sqs_*.json")):
        # An SQS batch: each record's body is one event; the poison sample holds bodies that are not.
        poison = 0
        for record in json.loads(path.read_text())["Records"]:
            try:
                parse_event(json.loads(record["body"]))
            except ValueError:  # JSONDecodeError and pydantic's ValidationError are both ValueErrors
                poison += 1
        assert (poison > 0) == ("poison" in path.name), path.name
    for path in sorted(EVENTS.glob("remediate_*.json")):
        if path.name.startswith("remediate_sqs_"):
            continue
        event = parse_event(json.loads(path.read_text()))
        if path.name.startswith("remediate_rotation_"):
            assert rotation_of(event).secret_arn, path.name  # type: ignore[arg-type]
            continue
        failure = failure_of(event)
        assert failure.resource_id, path.name
    for path in sorted(EVENTS.glob("rotate_*.json")):
        event = json.loads(path.read_text())
        assert set(event) >= {"SecretId", "ClientRequestToken", "Step"}, path.name
    assert Diagnosis.ROLLED_BACK.value == "rolled_back"


def test_starting_a_rotation_leaves_the_labels_to_the_rotation_function(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    before = aws["secretsmanager"].describe_secret(SecretId=arn)["VersionIdsToStages"]
    handle(remediator(aws, registry, rotations), event_for("remediate_batch_auth_failure.json", arn))
    assert aws["secretsmanager"].describe_secret(SecretId=arn)["VersionIdsToStages"] == before


# -- the trust boundary ------------------------------------------------------------------------------


def test_a_job_image_on_another_host_never_receives_the_credential(aws: dict[str, Any]) -> None:
    # Given a job definition (registered by someone less trusted) pointing a managed secret at another host
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations)
    outcome = handle(
        r, event_for("remediate_batch_auth_failure.json", arn, image="attacker.example/acme/app:1")
    )
    # Then the probe went to the secret's configured registry, with the secret's own probe image
    assert registry.routes and {route.registry.host for route in registry.routes} == {REGISTRY}
    assert outcome.diagnosis == "rotation_started"
    assert outcome.tagged


def test_an_unmanaged_secret_is_never_probed(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    sm = aws["secretsmanager"]
    arn = sm.create_secret(Name="team/unmanaged", SecretString=render(SecretValue("u", "some-password-1")))[
        "ARN"
    ]
    r = remediator(aws, registry, rotations)
    event = event_for("remediate_batch_auth_failure.json", arn)
    outcome = handle(r, event)
    assert outcome.diagnosis == "secret_unmanaged"
    assert registry.calls == [] and rotations.started == []
    assert job_tags(aws, event)["regcred:diagnosis"] == "secret_unmanaged"


def test_a_secret_iam_will_not_describe_is_unmanaged_and_still_tagged(aws: dict[str, Any]) -> None:
    # The function's IAM allows DescribeSecret only on secrets tagged regcred:managed=true.
    from botocore.exceptions import ClientError

    registry, rotations = Registry(), Rotations()
    r = remediator(aws, registry, rotations)
    real = r.store.sm.describe_secret

    def denied(**kwargs: Any) -> Any:
        if "unmanaged" in kwargs["SecretId"]:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "DescribeSecret"
            )
        return real(**kwargs)

    r.store.sm.describe_secret = denied
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/unmanaged-AbCdEf"
    auth = event_for("remediate_batch_auth_failure.json", secret)
    retrieval = event_for("remediate_batch_secret_access_denied.json", secret)
    retrieval["detail"]["container"]["executionRoleArn"] = "arn:aws:iam::123456789012:role/exec"
    assert handle(r, auth).diagnosis == "secret_unmanaged"
    assert handle(r, retrieval).diagnosis == "secret_unmanaged"
    assert job_tags(aws, auth)["regcred:diagnosis"] == "secret_unmanaged"
    assert job_tags(aws, retrieval)["regcred:diagnosis"] == "secret_unmanaged"
    assert registry.calls == []


def test_an_unparseable_image_does_not_stop_the_event(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations)
    event = event_for("remediate_batch_auth_failure.json", arn, image="Bad//Image@md5:00")
    outcome = handle(r, event)
    assert outcome.tagged and outcome.registry is None
    assert outcome.diagnosis == "rotation_started"  # probed with the secret's own images


def test_a_value_naming_another_registry_is_misconfigured_not_probed(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    arn, new = managed_secret(aws, registry)
    hostile = SecretValue(new.username, new.password, "attacker.example", "dockerhub", new.token_id)
    aws["secretsmanager"].put_secret_value(
        SecretId=arn, SecretString=render(hostile), VersionStages=[CURRENT]
    )
    outcome = handle(
        remediator(aws, registry, rotations), event_for("remediate_batch_auth_failure.json", arn)
    )
    assert outcome.diagnosis == "secret_misconfigured"
    assert registry.calls == [] and rotations.started == []


# -- held jobs: the store, on DynamoDB (moto) and in process ---------------------------------------------

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/pull-AbCdEf"


@pytest.fixture(params=["dynamodb", "process"])
def store(request: pytest.FixtureRequest, aws: dict[str, Any]) -> Iterator[Any]:
    clock = {"t": 1_800_000_000.0}

    def make(**kwargs: Any) -> HeldJobs:
        ddb = aws["dynamodb"] if request.param == "dynamodb" else None
        return HeldJobs(ddb, "coalesce" if ddb else None, now=lambda: clock["t"], **kwargs)

    make.clock = clock  # type: ignore[attr-defined]
    yield make


def test_held_jobs_are_taken_once_and_not_while_awscurrent_is_the_rejected_version(store: Any) -> None:
    held = store()
    assert held.hold(SECRET, "j1", failed_at=None, rejected_version="v1") is HoldResult.HELD
    assert held.hold(SECRET, "j2", failed_at=None) is HoldResult.HELD
    assert held.hold(SECRET, "j1", failed_at=None) is HoldResult.ALREADY_HELD  # a redelivery
    assert held.count(SECRET) == 2
    assert held.take(SECRET, current_version="v1") is None
    assert held.count(SECRET) == 2
    assert held.take(SECRET, current_version="v2") == Taken(("j1", "j2"))
    # The second delivery of the event gets nothing
    assert held.take(SECRET, current_version="v2") == Taken(())
    assert held.count(SECRET) == 0
    assert held.count("arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf") == 0


def test_held_jobs_in_dynamodb_are_shared_and_taken_once(aws: dict[str, Any]) -> None:
    a = HeldJobs(aws["dynamodb"], "coalesce")
    b = HeldJobs(aws["dynamodb"], "coalesce")
    assert a.hold(SECRET, "j1", failed_at=None, rejected_version="v1") is HoldResult.HELD
    assert b.hold(SECRET, "j2", failed_at=None, rejected_version="v9") is HoldResult.HELD
    assert b.hold(SECRET, "j1", failed_at=None) is HoldResult.ALREADY_HELD
    assert a.count(SECRET) == b.count(SECRET) == 2
    assert b.take(SECRET, current_version="v1") is None  # the first rejected version recorded stands
    taken = b.take(SECRET, current_version="v2")
    assert taken is not None and taken.jobs == ("j1", "j2") and not taken.expired
    assert a.take(SECRET, current_version="v2") == Taken(())
    item = aws["dynamodb"].get_item(TableName="coalesce", Key={"pk": {"S": f"held#{SECRET}"}})["Item"]
    assert "jobs" not in item and "rotated_at" in item and int(item["expires_at"]["N"]) > time.time()


def test_the_number_of_held_jobs_is_bounded(store: Any) -> None:
    held = store(limit=3)
    assert [held.hold(SECRET, f"j{i}", failed_at=None) for i in range(5)] == [HoldResult.HELD] * 3 + [
        HoldResult.FULL
    ] * 2
    assert held.count(SECRET) == 3
    assert held.hold(SECRET, "j0", failed_at=None) is HoldResult.ALREADY_HELD
    taken = held.take(SECRET, current_version="v2")
    assert taken is not None and taken.jobs == ("j0", "j1", "j2")
    assert held.hold(SECRET, "j9", failed_at=None) is HoldResult.HELD  # room again


def test_a_job_that_failed_before_the_last_successful_rotation_is_not_held(store: Any) -> None:
    held = store()
    now = store.clock["t"]
    taken = held.take(SECRET, current_version="v2")
    assert taken == Taken(())
    # Its failure event arrived after the rotation it would wait for: resubmit it now
    assert held.hold(SECRET, "late", failed_at=now - 30) is HoldResult.ROTATED
    # A job that failed after that rotation (a new storm) is held for the next one
    assert held.hold(SECRET, "new", failed_at=now + 30) is HoldResult.HELD


def test_held_jobs_expire_and_can_be_put_back(store: Any) -> None:
    held = store(hold_s=3600)
    held.hold(SECRET, "j1", failed_at=None)
    store.clock["t"] += 3601
    assert held.count(SECRET) == 0  # past its TTL (DynamoDB deletes it eventually)
    taken = held.take(SECRET, current_version="v2")
    assert taken is not None and taken.expired and taken.jobs == ("j1",)
    held.put_back(SECRET, ["j7", "j8"])
    assert held.count(SECRET) == 2
    taken = held.take(SECRET, current_version="v3")
    assert taken is not None and taken.jobs == ("j7", "j8") and not taken.expired


# -- held jobs: remediation holds them, RotationSucceeded resubmits them -------------------------------


def real_failed_job(
    aws: dict[str, Any], secret: str, queue: str, *, name: str = "nightly-etl", by_name: bool = False
) -> dict[str, Any]:
    """A job that exists in moto (so that DescribeJobs finds it), whose definition names the secret (by ARN,
    or by name as a job definition may), and its FAILED event: an auth failure."""
    batch = aws["batch"]
    parameter = secret.split(":secret:", 1)[1].rsplit("-", 1)[0] if by_name else secret
    definition = batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": IMAGE,
            "vcpus": 1,
            "memory": 128,
            "repositoryCredentials": {"credentialsParameter": parameter},
        },
    )["jobDefinitionArn"]
    job = batch.submit_job(jobName=name, jobQueue=queue, jobDefinition=definition, parameters={"day": "mon"})
    event = event_for("remediate_batch_auth_failure.json", None, job_id=job["jobId"])
    event["detail"].update(jobArn=job["jobArn"], jobQueue=queue, jobDefinition=definition)
    event["detail"]["parameters"] = {"day": "mon"}
    return event


def rotation_event(secret: str, name: str = "RotationSucceeded") -> dict[str, Any]:
    sample = {"RotationSucceeded": "succeeded", "RotationFailed": "failed", "RotationAbandoned": "abandoned"}
    event = copy.deepcopy(load(f"remediate_rotation_{sample[name]}.json"))
    event["id"] = str(uuid.uuid4())
    event["detail"]["additionalEventData"]["SecretId"] = secret
    event["detail"]["requestID"] = f"Rotation-{secret}-{uuid.uuid4()}"
    return event


def on_rotation(r: Remediator, event: dict[str, Any], **kwargs: Any) -> Any:
    return r.handle_rotation(rotation_of(parse_event(event)), **kwargs)  # type: ignore[arg-type]


def finish_rotation(aws: dict[str, Any], secret: str, registry: Registry) -> SecretValue:
    """What the rotate function leaves behind: a new AWSCURRENT the registry accepts, no AWSPENDING."""
    value = SecretValue("svc", f"rotated-{uuid.uuid4().hex}", REGISTRY, "dockerhub", token_id="tok-rotated")
    aws["secretsmanager"].put_secret_value(
        SecretId=secret,
        ClientRequestToken=str(uuid.uuid4()),
        SecretString=render(value),
        VersionStages=[CURRENT],
    )
    registry.live.add(value.password)
    return value


def submitted(aws: dict[str, Any], queue: str) -> list[dict[str, Any]]:
    """Every job of the queue, whatever its status, described."""
    ids = [
        j["jobId"]
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
        for j in aws["batch"].list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    ]
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), 100):
        found += aws["batch"].describe_jobs(jobs=ids[start : start + 100])["jobs"]
    return found


@pytest.fixture
def queue(aws: dict[str, Any]) -> str:
    return batch_queue(aws["batch"], aws["iam"])


def test_a_storm_is_held_for_the_rotation_and_each_job_resubmitted_once_when_it_succeeds(
    aws: dict[str, Any], queue: str
) -> None:
    # Given a dead token, 12 jobs failing on it (each event delivered twice), ResubmitJobs on
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    first, second = (remediator(aws, registry, rotations, resubmit=True) for _ in range(2))
    events = [real_failed_job(aws, arn, queue) for _ in range(12)]
    # (the second delivery of each event goes to the other container)
    outcomes = [handle((first, second)[(i + i // 12) % 2], e) for i, e in enumerate(events + events)]
    # Then one rotation, and every job held once (tagged so), none resubmitted yet
    assert rotations.started == [arn]
    assert {o.diagnosis for o in outcomes if not o.duplicate} == {"rotation_started"}
    assert sum("held" in o.actions for o in outcomes) == 12
    assert [o.hold for o in outcomes].count(HoldResult.ALREADY_HELD) == 12
    tags = job_tags(aws, events[0])
    assert tags["regcred:held"] == "awaiting-rotation" and tags["regcred:diagnosis"] == "rotation_started"
    assert len(submitted(aws, queue)) == 12
    # When Secrets Manager reports the rotation succeeded before it did (AWSCURRENT still the rejected one)
    early = on_rotation(first, rotation_event(arn))
    assert early.result == "current_unchanged" and early.resubmitted == {} and early.held == 12
    # And then, once it finished, reports it twice (two deliveries, two containers)
    finish_rotation(aws, arn, registry)
    done = on_rotation(second, rotation_event(arn))
    again = on_rotation(first, rotation_event(arn))
    # Then each held job was resubmitted exactly once, as it was submitted, tagged both ways
    assert done.result == "resubmitted" and set(done.resubmitted) == {e["detail"]["jobId"] for e in events}
    assert done.skipped == {} and done.held == 0
    assert again.result == "nothing_held" and again.resubmitted == {}
    jobs = {j["jobId"]: j for j in submitted(aws, queue)}
    assert len(jobs) == 24
    for original, new in done.resubmitted.items():
        assert jobs[new]["tags"]["regcred:resubmission-of"] == original
        assert jobs[new]["jobName"] == "nightly-etl" and jobs[new]["parameters"] == {"day": "mon"}
        assert jobs[original]["tags"]["regcred:resubmitted-as"] == new
        assert jobs[original]["tags"]["regcred:held"] == "resubmitted"
    as_dict = done.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["rotation_event"] == "RotationSucceeded" and as_dict["secret"] == arn


def test_a_resubmitted_job_failing_again_is_not_held(aws: dict[str, Any], queue: str) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    event = real_failed_job(aws, arn, queue)
    event["detail"]["tags"] = {"regcred:resubmission-of": str(uuid.uuid4())}
    outcome = handle(r, event)
    assert outcome.diagnosis == "rotation_started" and outcome.hold is None
    assert "regcred:held" not in job_tags(aws, event)
    child = event_for("remediate_batch_auth_failure.json", arn, job_id=f"{uuid.uuid4()}:3")
    assert handle(r, child).hold is None
    assert r.held.count(arn) == 0


def test_without_resubmit_jobs_nothing_is_held_or_resubmitted(aws: dict[str, Any], queue: str) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations)
    event = real_failed_job(aws, arn, queue)
    assert handle(r, event).hold is None and r.held.count(arn) == 0
    finish_rotation(aws, arn, registry)
    outcome = on_rotation(r, rotation_event(arn))
    assert outcome.result == "resubmit_disabled" and outcome.resubmitted == {}
    assert len(submitted(aws, queue)) == 1


def test_a_job_definition_naming_the_secret_by_name_holds_under_its_arn(
    aws: dict[str, Any], queue: str
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    handle(r, real_failed_job(aws, arn, queue, by_name=True))  # the owner: probes and rotates
    other = remediator(aws, registry, rotations, resubmit=True)  # another container: describes once
    for _ in range(3):
        assert handle(other, real_failed_job(aws, arn, queue, by_name=True)).hold is HoldResult.HELD
    assert r.held.count(arn) == 4


def test_a_rotation_still_in_progress_keeps_the_jobs_held(aws: dict[str, Any], queue: str) -> None:
    registry, rotations = Registry(), Rotations()
    arn, new = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    handle(r, real_failed_job(aws, arn, queue))
    finish_rotation(aws, arn, registry)
    # A newer rotation has started (AWSPENDING on another version): its own success releases the jobs
    aws["secretsmanager"].put_secret_value(
        SecretId=arn, ClientRequestToken=str(uuid.uuid4()), SecretString=render(new), VersionStages=[PENDING]
    )
    outcome = on_rotation(r, rotation_event(arn))
    assert outcome.result == "rotation_in_progress" and outcome.held == 1


def test_held_jobs_are_bounded_per_secret_and_the_refusal_is_tagged(aws: dict[str, Any], queue: str) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(
        aws, registry, rotations, resubmit=True, held=HeldJobs(aws["dynamodb"], "coalesce", limit=2)
    )
    events = [real_failed_job(aws, arn, queue) for _ in range(3)]
    holds = [handle(r, e).hold for e in events]
    assert holds == [HoldResult.HELD, HoldResult.HELD, HoldResult.FULL]
    assert job_tags(aws, events[2])["regcred:held"] == "limit-reached"
    assert r.held.count(arn) == 2


def test_a_failure_reported_after_the_rotation_succeeded_is_resubmitted_at_once(
    aws: dict[str, Any], queue: str
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    handle(r, real_failed_job(aws, arn, queue))
    finish_rotation(aws, arn, registry)
    assert len(on_rotation(r, rotation_event(arn)).resubmitted) == 1
    # A job that failed on the old token before the rotation finished; its event comes late
    late = real_failed_job(aws, arn, queue)
    late["time"] = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcome = handle(remediator(aws, registry, rotations, resubmit=True), late)
    assert outcome.hold is HoldResult.ROTATED and "resubmitted" in outcome.actions
    tags = job_tags(aws, late)
    assert tags["regcred:held"] == "resubmitted" and tags["regcred:resubmitted-as"]


def test_out_of_time_the_rest_is_held_again_and_the_retry_resubmits_it(
    aws: dict[str, Any], queue: str
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    events = [real_failed_job(aws, arn, queue) for _ in range(5)]
    for event in events:
        handle(r, event)
    finish_rotation(aws, arn, registry)

    class Clock:
        """A deadline that runs out after three jobs."""

        def __init__(self) -> None:
            self.checks = 0

        def remaining(self) -> float:
            self.checks += 1
            return 60.0 if self.checks <= 4 else 1.0

    with pytest.raises(ResubmissionIncomplete):
        on_rotation(r, rotation_event(arn), deadline=Clock())
    assert r.held.count(arn) == 2
    retry = on_rotation(r, rotation_event(arn))
    assert retry.result == "resubmitted" and len(retry.resubmitted) == 2
    originals = {e["detail"]["jobId"] for e in events}
    copies = [j for j in submitted(aws, queue) if j["jobId"] not in originals]
    assert sorted(j["tags"]["regcred:resubmission-of"] for j in copies) == sorted(originals)


def test_a_failed_submit_is_held_again_and_resubmitted_by_the_next_success(
    aws: dict[str, Any], queue: str
) -> None:
    from botocore.exceptions import ClientError

    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    event = real_failed_job(aws, arn, queue)
    handle(r, event)
    finish_rotation(aws, arn, registry)
    real = r.batch.submit_job

    def refused(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ClientException", "Message": "queue disabled"}}, "SubmitJob")

    r.batch.submit_job = refused
    try:
        outcome = on_rotation(r, rotation_event(arn))
    finally:
        r.batch.submit_job = real
    job_id = event["detail"]["jobId"]
    assert outcome.skipped == {job_id: "submit_failed: ClientException"} and outcome.held == 1
    finish_rotation(aws, arn, registry)
    assert list(on_rotation(r, rotation_event(arn)).resubmitted) == [job_id]


def test_held_jobs_resubmitted_already_or_gone_are_skipped(aws: dict[str, Any], queue: str) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    event = real_failed_job(aws, arn, queue)
    handle(r, event)
    aws["batch"].tag_resource(resourceArn=event["detail"]["jobArn"], tags={"regcred:resubmitted-as": "x"})
    r.held.put_back(arn, ["00000000-0000-4000-8000-000000000000"])
    finish_rotation(aws, arn, registry)
    outcome = on_rotation(r, rotation_event(arn))
    assert outcome.resubmitted == {}
    assert outcome.skipped == {
        event["detail"]["jobId"]: "already_resubmitted",
        "00000000-0000-4000-8000-000000000000": "not_found",
    }


@pytest.mark.parametrize("name", ["RotationFailed", "RotationAbandoned"])
def test_a_failed_rotation_notifies_once_keeps_the_held_jobs_and_resubmits_nothing(
    aws: dict[str, Any], queue: str, name: str
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, value = managed_secret(aws, registry)
    r = remediator(aws, registry, rotations, resubmit=True)
    handle(r, real_failed_job(aws, arn, queue))
    notifications(aws)  # the rotation_started notification
    first = on_rotation(r, rotation_event(arn, name))
    second = on_rotation(remediator(aws, registry, rotations, resubmit=True), rotation_event(arn, name))
    assert first.rotation_failed and second.rotation_failed
    assert (first.result, second.result) == ("notified", "coalesced")
    assert first.resubmitted == {} and first.held == second.held == 1
    notes = notifications(aws)
    assert len(notes) == 1 and name in notes[0] and arn in notes[0]
    assert "held for this rotation: 1" in notes[0]
    assert value.password not in json.dumps(notes)
    assert len(submitted(aws, queue)) == 1


def test_rotation_events_of_secrets_regcred_does_not_manage_are_ignored(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    sm = aws["secretsmanager"]
    unmanaged = sm.create_secret(Name="rds/app", SecretString="{}")["ARN"]
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
    r = remediator(aws, registry, rotations, resubmit=True)
    for name in ("RotationSucceeded", "RotationFailed"):
        assert on_rotation(r, rotation_event(unmanaged, name)).result == "secret_unmanaged"
        outcome = on_rotation(r, rotation_event(missing, name))
        assert outcome.result == "secret_missing" and not outcome.rotation_failed
    assert notifications(aws) == []


# -- ECS tasks ---------------------------------------------------------------------------------------


def ecs_task(aws: dict[str, Any], secret_arn: str | None, *, stop: bool = True) -> tuple[str, str]:
    """A task in moto (FARGATE, cluster "apps") whose definition pulls IMAGE with the secret; (task ARN,
    task definition ARN). moto keeps a stopped task, and its tags."""
    ecs = aws.setdefault("ecs", boto3.client("ecs", region_name="us-east-1"))
    ecs.create_cluster(clusterName="apps")
    container: dict[str, Any] = {"name": "app", "image": IMAGE, "memory": 128}
    if secret_arn:
        container["repositoryCredentials"] = {"credentialsParameter": secret_arn}
    definition = ecs.register_task_definition(
        family="app",
        containerDefinitions=[container],
        executionRoleArn="arn:aws:iam::123456789012:role/exec",
    )["taskDefinition"]["taskDefinitionArn"]
    task = ecs.run_task(cluster="apps", taskDefinition=definition, launchType="FARGATE")["tasks"][0][
        "taskArn"
    ]
    if stop:
        ecs.stop_task(cluster="apps", task=task, reason="CannotPullContainerError")
    return task, definition


def ecs_event(task_arn: str, definition: str, *, region: str = "us-east-1") -> dict[str, Any]:
    event = copy.deepcopy(load("remediate_ecs_task_auth_failure.json"))
    event.update(id=str(uuid.uuid4()), region=region, account="123456789012", resources=[task_arn])
    detail = event["detail"]
    detail.update(
        taskArn=task_arn,
        taskDefinitionArn=definition,
        clusterArn="arn:aws:ecs:us-east-1:123456789012:cluster/apps",
    )
    detail["containers"][0].update(name="app", image=IMAGE, taskArn=task_arn)
    return event


def ecs_remediator(aws: dict[str, Any], registry: Registry, rotations: Rotations, ecs: Any) -> Remediator:
    r = remediator(aws, registry, rotations)
    r.ecs = ecs
    r.task_definitions = jobs.DefinitionCache(jobs.ecs_task_definition_fetcher(ecs))
    return r


def not_tagged_metrics(out: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [r for r in records if "EcsTaskNotTagged" in r]


def test_an_ecs_storm_tags_every_stopped_task_and_rotates_once(aws: dict[str, Any]) -> None:
    # Given a secret whose current token is dead, and 20 stopped tasks that failed to pull with it
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    tasks = [ecs_task(aws, arn) for _ in range(20)]
    r = ecs_remediator(aws, registry, rotations, aws["ecs"])
    # When each task's event arrives (twice)
    events = [ecs_event(*t) for t in tasks]
    outcomes = [handle(r, e) for e in events + events]
    # Then one probe and one rotation, and every task is tagged once, as a Batch job would be
    assert len(registry.calls) == 1 and rotations.started == [arn]
    assert sum(o.tagged for o in outcomes) == 20 and sum(o.duplicate for o in outcomes) == 20
    assert outcomes[0].secret == arn and outcomes[0].diagnosis == "rotation_started"
    for task, _ in tasks:
        tags = {t["key"]: t["value"] for t in aws["ecs"].list_tags_for_resource(resourceArn=task)["tags"]}
        assert tags == {
            "regcred:pull-failure": "auth",
            "regcred:diagnosis": tags["regcred:diagnosis"],
            "regcred:secret": arn.split(":secret:")[1].rsplit("-", 1)[0],
        }
        assert tags["regcred:diagnosis"] in ("rotation_started", "coalesced")
    assert (
        aws["ecs"].describe_tasks(cluster="apps", tasks=[tasks[0][0]])["tasks"][0]["lastStatus"] == "STOPPED"
    )


class RefusingEcs:
    """moto's ECS, with TagResource answering ``code`` (or recording calls when None)."""

    def __init__(self, real: Any, code: str | None) -> None:
        self.real, self.code, self.tagged = real, code, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def tag_resource(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        self.tagged.append(kwargs["resourceArn"])
        if self.code is None:
            return self.real.tag_resource(**kwargs)
        raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, "TagResource")


@pytest.mark.parametrize(
    "code", ["InvalidParameterException", "ResourceNotFoundException", "AccessDeniedException"]
)
def test_a_task_ecs_will_not_tag_is_counted_and_never_fails_the_event(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], code: str
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    task, definition = ecs_task(aws, arn)
    ecs = RefusingEcs(aws["ecs"], code)
    outcome = handle(ecs_remediator(aws, registry, rotations, ecs), ecs_event(task, definition))
    # The rotation happened all the same; the task is not tagged, and that is counted with the reason
    assert outcome.diagnosis == "rotation_started" and rotations.started == [arn]
    assert ecs.tagged == [task] and not outcome.tagged and outcome.not_tagged == code
    records = not_tagged_metrics(capsys.readouterr().out)
    assert len(records) == 1 and records[0]["reason"] == code and records[0]["EcsTaskNotTagged"] == [1.0]
    assert records[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "regcred"


def test_throttling_raises_so_that_the_event_is_tagged_when_delivered_again(aws: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    task, definition = ecs_task(aws, arn)
    event = ecs_event(task, definition)
    ecs = RefusingEcs(aws["ecs"], "ThrottlingException")
    r = ecs_remediator(aws, registry, rotations, ecs)
    with pytest.raises(ClientError):
        handle(r, event)
    # Delivered again: not a duplicate (the first never finished), coalesced, and tagged this time
    ecs.code = None
    outcome = handle(r, event)
    assert outcome.tagged and not outcome.duplicate and rotations.started == [arn]


def test_old_format_and_foreign_task_arns_are_not_sent_to_tag_resource(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    registry, rotations = Registry(), Rotations()
    arn, _ = managed_secret(aws, registry)
    task, definition = ecs_task(aws, arn)
    ecs = RefusingEcs(aws["ecs"], None)
    r = ecs_remediator(aws, registry, rotations, ecs)
    # A task created without the long ARN format (taskLongArnFormat): arn:...:task/TASK_ID
    old = task.replace("task/apps/", "task/")
    outcome = handle(r, ecs_event(old, definition))
    assert not outcome.tagged and outcome.not_tagged == "old_arn_format"
    # A task ARN of another region than the event's
    outcome = handle(r, ecs_event(task.replace("us-east-1", "eu-west-1"), definition))
    assert not outcome.tagged and outcome.not_tagged == "foreign_task"
    assert ecs.tagged == []
    assert [m["reason"] for m in not_tagged_metrics(capsys.readouterr().out)] == [
        "old_arn_format",
        "foreign_task",
    ]


def test_an_ecs_task_of_a_deleted_definition_is_still_classified(aws: dict[str, Any]) -> None:
    registry, rotations = Registry(), Rotations()
    task, _ = ecs_task(aws, None)
    ecs = RefusingEcs(aws["ecs"], None)
    missing = "arn:aws:ecs:us-east-1:123456789012:task-definition/gone:9"
    outcome = handle(ecs_remediator(aws, registry, rotations, ecs), ecs_event(task, missing))
    assert outcome.diagnosis == "no_repository_credentials" and outcome.tagged and registry.calls == []


def test_ecs_tag_values_follow_ecs_rules() -> None:
    assert ecs_tag_value("a!b#c" + "x" * 300) == "a_b_c" + "x" * 251
    assert ecs_tag_value("batch/dockerhub-pull") == "batch/dockerhub-pull"
    assert ecs_tag_value("équipe données") == "équipe données"  # letters and spaces of any script
    assert ecs_tag_value("tab\there") == "tab_here"  # \p{Z} has no control characters
    assert ecs_tag_value("AWS:reserved").startswith("_AWS:")
    assert ecs_tags({"regcred:diagnosis": "rotation_started"}) == [
        {"key": "regcred:diagnosis", "value": "rotation_started"}
    ]
    with pytest.raises(ValueError, match="not a regcred tag key"):
        ecs_tags({"owner": "x"})
