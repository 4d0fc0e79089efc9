"""Remediation end to end on the local stack: a Batch job in moto_server whose Docker Hub token was
revoked at the fake fails; the remediate handler tags it, rotates once (the rotate handler driven as
Secrets Manager would drive it) and the new AWSCURRENT pulls from the real registry."""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse
from botocore.retries import standard
from moto.core.botocore_stubber import MockRawResponse

from devstack.cfn import load_template
from devstack.fakes.iam import IamSimulator
from devstack.lambda_local import LambdaContext, load
from regcred import config
from regcred.rotation import CURRENT, PREVIOUS
from regcred.secret import SecretValue, parse, render
from tests.aws_setup import (
    assume_role_policy,
    batch_queue,
    coalesce_table,
    hub,
    job_definition,
    stack_managed_secret,
)
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def aws(stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    endpoint = stack_env["AWS_ENDPOINT_URL"]
    requests.post(f"{endpoint}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=5)
    clients = {
        n: boto3.client(n, endpoint_url=endpoint)
        for n in ("secretsmanager", "batch", "dynamodb", "iam", "sns")
    }
    table = coalesce_table(clients["dynamodb"])
    monkeypatch.setenv("REGCRED_COALESCE_TABLE", table)
    monkeypatch.setenv("REGCRED_TOPIC_ARN", clients["sns"].create_topic(Name="regcred")["TopicArn"])
    monkeypatch.setenv("REGCRED_COOLDOWN", "15m")
    yield clients


def pulls(env: dict[str, str], value: SecretValue) -> int:
    repository, _, tag = env["REGCRED_SEED_IMAGE"].partition(":")
    return manifest_status(env["REGCRED_REGISTRY"], value.username, value.password, repository, tag)


def failed_job(aws: dict[str, Any], env: dict[str, str], secret_arn: str) -> dict[str, Any]:
    """A real job in moto whose definition pulls the seed image with the secret; its FAILED event."""
    batch = aws["batch"]
    queue = batch_queue(batch, aws["iam"])
    image = f"{env['REGCRED_REGISTRY']}/{env['REGCRED_SEED_IMAGE']}"
    definition = job_definition(batch, image, secret_arn)
    job = batch.submit_job(jobName="nightly-etl", jobQueue=queue, jobDefinition=definition)
    event = json.loads((EVENTS / "remediate_batch_auth_failure.json").read_text())
    detail = event["detail"]
    detail.update(jobId=job["jobId"], jobArn=job["jobArn"], jobQueue=queue, jobDefinition=definition)
    detail["container"]["image"] = image
    detail["container"].pop("repositoryCredentials")  # the handler must find it in the job definition
    event["resources"] = [job["jobArn"]]
    return event


class SecretsManagerRotation:
    """What Secrets Manager does on RotateSecret: invoke the rotate function once per step."""

    def __init__(self) -> None:
        self.rotate = load("rotate")
        self.rotate._rotator = None
        self.calls: list[str] = []

    def __call__(self, arn: str) -> None:
        self.calls.append(arn)
        token = str(uuid.uuid4())
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            self.rotate.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, LambdaContext())


@pytest.fixture
def remediate(aws: dict[str, Any]) -> Iterator[tuple[Any, SecretsManagerRotation]]:
    app = load("remediate")
    rotation = SecretsManagerRotation()
    app._remediator = app.build_remediator(start_rotation=rotation)
    yield app, rotation
    app._remediator = None


def test_revoked_token_storm_tags_the_job_rotates_once_and_the_new_token_pulls(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    remediate: tuple[Any, SecretsManagerRotation],
) -> None:
    app, rotation = remediate
    arn, old = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret)
    event = failed_job(aws, stack_env, arn)
    # Given the token was revoked at the vendor, so the real registry refuses it
    hub(stack_env).revoke(old.token_id or "")
    assert pulls(stack_env, old) == 401
    # When one FAILED event arrives
    result = app.handler(event, LambdaContext())
    # Then the job is tagged, one rotation ran, and the new AWSCURRENT pulls from the real registry
    assert result["class"] == "auth" and result["diagnosis"] == "rotation_started"
    tags = aws["batch"].list_tags_for_resource(resourceArn=event["detail"]["jobArn"])["tags"]
    assert tags["regcred:pull-failure"] == "auth" and tags["regcred:diagnosis"] == "rotation_started"
    assert rotation.calls == [arn]
    new = parse(aws["secretsmanager"].get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    assert new.token_id != old.token_id and pulls(stack_env, new) == 200
    # And 500 more deliveries of the event (and of other jobs' failures) start no second rotation
    for i in range(500):
        again = copy.deepcopy(event)
        again["id"] = str(uuid.uuid4())
        if i % 2:
            again["detail"]["jobId"] = str(uuid.uuid4())
            again["detail"]["jobArn"] = (
                again["detail"]["jobArn"].rsplit("/", 1)[0] + "/" + again["detail"]["jobId"]
            )
        app.handler(again, LambdaContext())
    assert rotation.calls == [arn]


def test_a_dead_new_token_within_grace_is_rolled_back(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    remediate: tuple[Any, SecretsManagerRotation],
) -> None:
    app, rotation = remediate
    arn, old = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret)
    # Given a new token was promoted an hour ago and then revoked at the vendor
    sm = aws["secretsmanager"]
    issued = hub(stack_env).issue(f"e2e new {uuid.uuid4()}", None)
    bad = SecretValue(
        issued.username, issued.password, stack_env["REGCRED_REGISTRY"], "dockerhub", issued.token_id
    )
    sm.put_secret_value(
        SecretId=arn, ClientRequestToken=str(uuid.uuid4()), SecretString=render(bad), VersionStages=[CURRENT]
    )
    promoted = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sm.tag_resource(SecretId=arn, Tags=[{"Key": config.PROMOTED_AT, "Value": promoted}])
    hub(stack_env).revoke(issued.token_id)
    previous = parse(sm.get_secret_value(SecretId=arn, VersionStage=PREVIOUS)["SecretString"])
    assert previous.token_id == old.token_id
    # When a job fails on it
    result = app.handler(failed_job(aws, stack_env, arn), LambdaContext())
    # Then AWSCURRENT is the previous token again, which pulls; no rotation was started
    assert result["diagnosis"] == "rolled_back"
    current = parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    assert current.token_id == old.token_id and pulls(stack_env, current) == 200
    assert rotation.calls == []


def test_secret_retrieval_diagnoses_the_execution_role_and_never_rotates(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn, old = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret)
    iam = aws["iam"]
    trust = assume_role_policy("ecs-tasks.amazonaws.com")
    role_name = f"exec-{uuid.uuid4().hex[:6]}"
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    denied = json.loads((EVENTS / "remediate_batch_secret_access_denied.json").read_text())
    with IamSimulator(iam) as simulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", simulator.url)  # moto has no SimulatePrincipalPolicy
        app = load("remediate")
        rotation = SecretsManagerRotation()
        app._remediator = app.build_remediator(start_rotation=rotation)
        try:
            event = failed_job(aws, stack_env, arn)
            event["detail"]["attempts"] = denied["detail"]["attempts"]
            event["detail"]["container"]["reason"] = denied["detail"]["container"]["reason"]
            event["detail"]["container"]["executionRoleArn"] = role
            results = []
            for _ in range(20):
                event["id"] = str(uuid.uuid4())
                results.append(app.handler(event, LambdaContext()))
        finally:
            app._remediator = None
    assert {r["class"] for r in results} == {"secret_retrieval"}
    assert results[0]["diagnosis"] == "role_denied"
    assert len(simulator.calls) == 1  # one simulation for the storm
    tags = aws["batch"].list_tags_for_resource(resourceArn=event["detail"]["jobArn"])["tags"]
    assert tags["regcred:diagnosis"] == "role_denied"
    assert rotation.calls == []
    current = parse(
        aws["secretsmanager"].get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"]
    )
    assert current.token_id == old.token_id


def test_a_rejected_static_credential_asks_for_an_import_and_never_rotates(
    aws: dict[str, Any],
    stack: Any,
    stack_env: dict[str, str],
    remediate: tuple[Any, SecretsManagerRotation],
) -> None:
    import subprocess

    from devstack.stack import write_htpasswd
    from tests.integration.conftest import cli_env

    app, rotation = remediate
    # Given a static secret onboarded with a credential the registry then deletes
    user, token = stack.new_static_credential()
    name = f"batch/static-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        ["regcred", "onboard", name, "--provider", "static", "--username", user,
         "--image", stack_env["REGCRED_STATIC_SEED_IMAGE"]],
        env=cli_env(stack_env), input=token + "\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    users = stack._static_users()
    users.pop(user)
    write_htpasswd(Path(stack_env["REGCRED_STATIC_HTPASSWD"]), users)
    arn = aws["secretsmanager"].describe_secret(SecretId=name)["ARN"]
    static_env = dict(stack_env)
    static_env.update(
        REGCRED_REGISTRY=stack_env["REGCRED_STATIC_REGISTRY"],
        REGCRED_SEED_IMAGE=stack_env["REGCRED_STATIC_SEED_IMAGE"],
    )
    event = failed_job(aws, static_env, arn)
    # When its jobs fail to pull
    result = app.handler(event, LambdaContext())
    # Then remediation says a person must import a new token, and no RotateSecret is attempted
    assert result["class"] == "auth" and result["diagnosis"] == "import_needed", result
    assert rotation.calls == []
    tags = aws["batch"].list_tags_for_resource(resourceArn=event["detail"]["jobArn"])["tags"]
    assert tags["regcred:diagnosis"] == "import_needed"


# -- the open loop closed: jobs held for an asynchronous rotation, resubmitted when it succeeds --------------


class Container:
    """One execution environment of the deployed function: its own remediator (caches, claims), the same
    table, topic and account; ``use`` makes it the one the handler runs in."""

    def __init__(self, app: Any, start_rotation: Any) -> None:
        self.app = app
        self.remediator = app.build_remediator(start_rotation=start_rotation)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.app._remediator = self.remediator
        result: dict[str, Any] = self.app.handler(event, LambdaContext())
        return result


def storm(
    aws: dict[str, Any], env: dict[str, str], secret_arn: str, jobs: int
) -> tuple[str, list[dict[str, Any]]]:
    """``jobs`` real jobs in moto on one queue and definition naming the secret, and their FAILED events."""
    batch = aws["batch"]
    queue = batch_queue(batch, aws["iam"])
    image = f"{env['REGCRED_REGISTRY']}/{env['REGCRED_SEED_IMAGE']}"
    definition = job_definition(batch, image, secret_arn)
    template = json.loads((EVENTS / "remediate_batch_auth_failure.json").read_text())
    events = []
    for i in range(jobs):
        job = batch.submit_job(
            jobName=f"etl-{i}", jobQueue=queue, jobDefinition=definition, parameters={"part": str(i)}
        )
        event = copy.deepcopy(template)
        event["id"] = str(uuid.uuid4())
        event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = event["detail"]
        detail.update(
            jobId=job["jobId"],
            jobArn=job["jobArn"],
            jobName=f"etl-{i}",
            jobQueue=queue,
            jobDefinition=definition,
        )
        detail["parameters"] = {"part": str(i)}
        detail["container"]["image"] = image
        detail["container"].pop("repositoryCredentials")  # found in the job definition
        event["resources"] = [job["jobArn"]]
        events.append(event)
    return queue, events


def rotation_event(secret_arn: str, name: str) -> dict[str, Any]:
    sample = {"RotationSucceeded": "succeeded", "RotationFailed": "failed"}[name]
    event = json.loads((EVENTS / f"remediate_rotation_{sample}.json").read_text())
    event["id"] = str(uuid.uuid4())
    event["detail"]["additionalEventData"]["SecretId"] = secret_arn
    return event


def queue_jobs(aws: dict[str, Any], queue: str) -> dict[str, dict[str, Any]]:
    ids = [
        j["jobId"]
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
        for j in aws["batch"].list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    ]
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 100):
        found.update(
            {j["jobId"]: j for j in aws["batch"].describe_jobs(jobs=ids[start : start + 100])["jobs"]}
        )
    return found


@pytest.fixture
def topic_messages(aws: dict[str, Any], stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """A topic of this test's own, subscribed by a queue; returns a reader of the messages published."""
    sqs = boto3.client("sqs", endpoint_url=stack_env["AWS_ENDPOINT_URL"])
    topic = aws["sns"].create_topic(Name=f"regcred-{uuid.uuid4().hex[:6]}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"notes-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("REGCRED_TOPIC_ARN", topic)
    monkeypatch.setenv("REGCRED_RESUBMIT", "true")

    def read() -> list[str]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        return [json.loads(m["Body"])["Message"] for m in messages]

    return read


def test_a_storm_is_held_and_each_job_resubmitted_once_when_the_rotation_succeeds_even_delivered_twice(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str, topic_messages: Any
) -> None:
    app = load("remediate")
    rotation = SecretsManagerRotation()
    one, two = Container(app, rotation), Container(app, rotation)
    try:
        # Given a secret with rotation enabled whose token was revoked at the vendor, and 40 jobs failing on
        # it, each event delivered twice (to either container)
        arn, old = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret)
        hub(stack_env).revoke(old.token_id or "")
        queue, events = storm(aws, stack_env, arn, 40)
        results = [(one, two)[(i + i // 40) % 2].invoke(e) for i, e in enumerate(events + events)]
        # Then one rotation, every job held for it (each once), none resubmitted yet
        assert rotation.calls == [arn]
        assert {r["diagnosis"] for r in results} == {"rotation_started"}
        holds = [r["hold"] for r in results]
        assert holds.count("held") == 40 and holds.count("already_held") == 40
        tags = aws["batch"].list_tags_for_resource(resourceArn=events[7]["detail"]["jobArn"])["tags"]
        assert tags["regcred:held"] == "awaiting-rotation"
        assert len(queue_jobs(aws, queue)) == 40
        # When Secrets Manager's RotationSucceeded arrives, twice (at either container)
        first = one.invoke(rotation_event(arn, "RotationSucceeded"))
        second = two.invoke(rotation_event(arn, "RotationSucceeded"))
    finally:
        app._remediator = None
    # Then each held job was resubmitted exactly once, and the second delivery found none
    originals = {e["detail"]["jobId"] for e in events}
    assert first["result"] == "resubmitted" and set(first["resubmitted"]) == originals
    assert first["skipped"] == {} and first["held"] == 0
    assert second["result"] == "nothing_held" and second["resubmitted"] == {}
    jobs = queue_jobs(aws, queue)
    assert len(jobs) == 80
    for original, new in first["resubmitted"].items():
        assert jobs[new]["tags"]["regcred:resubmission-of"] == original
        assert jobs[new]["parameters"] == jobs[original]["parameters"]
        assert jobs[original]["tags"]["regcred:resubmitted-as"] == new
    # And the credential the resubmitted jobs will pull with is the new one, which pulls
    new_value = parse(
        aws["secretsmanager"].get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"]
    )
    assert new_value.token_id != old.token_id and pulls(stack_env, new_value) == 200
    assert new_value.password not in json.dumps(topic_messages())


def test_a_failed_rotation_is_counted_and_notified_once_and_resubmits_nothing(
    aws: dict[str, Any],
    stack_env: dict[str, str],
    admin_secret: str,
    topic_messages: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = load("remediate")
    started: list[str] = []  # RotateSecret as Secrets Manager does it: asynchronously (here: never)
    one, two = Container(app, started.append), Container(app, started.append)
    try:
        arn, old = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret)
        hub(stack_env).revoke(old.token_id or "")
        queue, events = storm(aws, stack_env, arn, 5)
        for i, event in enumerate(events):
            (one, two)[i % 2].invoke(event)
        assert started == [arn]
        topic_messages()  # the rotation_started notification
        capsys.readouterr()
        # When Secrets Manager reports the rotation failed, twice
        results = [c.invoke(rotation_event(arn, "RotationFailed")) for c in (one, two)]
    finally:
        app._remediator = None
    # Then the metric for each delivery (dimension service only), one notification, no resubmission
    assert [r["result"] for r in results] == ["notified", "coalesced"]
    assert all(r["resubmitted"] == {} and r["held"] == 5 for r in results)
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if '"SecretsManagerRotationFailed"' in line]
    assert len(records) == 2
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]] for r in records)
    notes = topic_messages()
    assert len(notes) == 1 and "RotationFailed" in notes[0] and "held for this rotation: 5" in notes[0]
    assert old.password not in notes[0]
    assert len(queue_jobs(aws, queue)) == 5
    tags = aws["batch"].list_tags_for_resource(resourceArn=events[0]["detail"]["jobArn"])["tags"]
    assert tags["regcred:held"] == "awaiting-rotation"


# -- a storm through RemediationQueue: batches, two containers, throttling ---------------------------------


class RemediationQueue:
    """RemediationQueue in moto_server, with its dead-letter queue and the template's maxReceiveCount, and the
    event source mapping's part: receive a batch, invoke, delete what succeeded. A message the handler
    reports failed is made visible again at once (the mapping waits out the visibility timeout)."""

    def __init__(self, endpoint: str) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=endpoint)
        properties = load_template()["Resources"]["RemediationQueue"]["Properties"]
        self.max_receives = int(properties["RedrivePolicy"]["maxReceiveCount"])
        name = f"remediation-{uuid.uuid4().hex[:6]}"
        self.dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        self.url = self.sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": "60",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": self._arn(self.dlq), "maxReceiveCount": self.max_receives}
                ),
            },
        )["QueueUrl"]
        self.arn = self._arn(self.url)
        self.failed: list[str] = []  # message ids, once per failed delivery
        self.invocations = 0

    def _arn(self, url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attributes["QueueArn"])

    def send(self, bodies: list[str]) -> list[str]:
        """As the rules deliver them: each event one message, its body the event; their ids, in order."""
        ids = []
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
            sent = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            assert not sent.get("Failed"), sent
            ids += [m["MessageId"] for m in sorted(sent["Successful"], key=lambda m: int(m["Id"]))]
        return ids

    def empty(self) -> bool:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])["Attributes"]
        return (
            attributes["ApproximateNumberOfMessages"]
            == attributes["ApproximateNumberOfMessagesNotVisible"]
            == "0"
        )

    def drain(self, containers: list[Container], batch_size: int, until: Any = None) -> None:
        """Each batch to the next container, until the queue is empty (or ``until()``)."""
        for _ in range(10_000):
            if until is not None and until():
                return
            messages = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=batch_size, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                if self.empty():
                    return
                continue
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn,
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
            response = containers[self.invocations % len(containers)].invoke({"Records": records})
            self.invocations += 1
            assert set(response) == {"batchItemFailures"}, response
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            self.failed += sorted(failed)
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        raise AssertionError("the queue did not drain")

    def dead_letters(self) -> list[str]:
        found: list[str] = []
        while messages := self.sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10).get("Messages"):
            for m in messages:
                found.append(m["Body"])
                self.sqs.delete_message(QueueUrl=self.dlq, ReceiptHandle=m["ReceiptHandle"])
        return found


class TagThrottle:
    """Batch answering TagResource with 429 TooManyRequestsException, as AWS throttles: every request for the
    job ``unlucky`` while ``armed``, and a seeded tenth of the others. The answer takes the place of the
    request, which never reaches moto_server; botocore retries it."""

    def __init__(self, clients: list[Any], unlucky: str, rate: float = 0.1) -> None:
        self.unlucky, self.rate, self.armed = unlucky, rate, True
        self.rng = random.Random(11)
        self.throttled = 0
        for client in clients:
            client.meta.events.register_first("before-send.batch.TagResource", self._send)

    def _send(self, request: Any, **_: Any) -> AWSResponse | None:
        if not (self.armed and self.unlucky in request.url) and self.rng.random() >= self.rate:
            return None
        self.throttled += 1
        body = MockRawResponse(json.dumps({"message": "Too Many Requests"}))
        headers = {"x-amzn-ErrorType": "TooManyRequestsException:", "Content-Type": "application/json"}
        return AWSResponse(request.url, 429, headers, body)  # type: ignore[arg-type]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries as regcred.aws configures them, without their waits."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def test_a_storm_through_the_queue_tags_every_job_rotates_each_dead_secret_once_and_dead_letters_the_poison(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str, no_backoff: None
) -> None:
    # Given two secrets whose tokens were revoked at the vendor, 25 real jobs failing on each and 10 on a
    # healthy secret's rate limit, each event delivered twice (EventBridge is at-least-once) but one, and a
    # poison message among them
    rotation = SecretsManagerRotation()
    dead = [stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret) for _ in range(2)]
    healthy, _ = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret)
    for _arn, old in dead:
        hub(stack_env).revoke(old.token_id or "")
    events = [e for arn, _old in dead for e in storm(aws, stack_env, arn, 25)[1]]
    rate_limit = json.loads((EVENTS / "remediate_batch_rate_limit.json").read_text())["detail"]
    for event in storm(aws, stack_env, healthy, 10)[1]:
        event["detail"]["attempts"] = rate_limit["attempts"]
        event["detail"]["container"]["reason"] = rate_limit["container"]["reason"]
        events.append(event)
    unlucky = events[3]["detail"]["jobId"]
    bodies = [json.dumps(e) for e in events] + [json.dumps(e) for e in events if e is not events[3]]
    random.Random(5).shuffle(bodies)
    poison = "CannotPullContainerError: not an event"
    bodies.insert(17, poison)
    queue = RemediationQueue(stack_env["AWS_ENDPOINT_URL"])
    ids = queue.send(bodies)
    poisoned = ids[17]
    [unlucky_id] = [i for b, i in zip(bodies, ids, strict=True) if unlucky in b]
    # And two containers whose Batch client is throttled on a tenth of TagResource requests, and on every
    # attempt for one job until its message has failed once
    app = load("remediate")
    containers = [Container(app, rotation) for _ in range(2)]
    throttle = TagThrottle([c.remediator.batch for c in containers], unlucky)
    batch_size = int(load_template()["Parameters"]["RemediationBatchSize"]["Default"])
    try:
        # When the queue is taken in batches
        queue.drain(containers, batch_size, until=lambda: unlucky_id in queue.failed)
        throttle.armed = False
        queue.drain(containers, batch_size)
    finally:
        app._remediator = None
    # Then every job is tagged, each dead secret was rotated once, and its new token pulls
    assert sorted(rotation.calls) == sorted(arn for arn, _ in dead)
    for event in events:
        job_tags = aws["batch"].list_tags_for_resource(resourceArn=event["detail"]["jobArn"])["tags"]
        expected = (
            "rate_limited"
            if "toomanyrequests" in event["detail"]["container"]["reason"]
            else "rotation_started"
        )
        assert job_tags.get("regcred:diagnosis") == expected, (event["detail"]["jobId"], job_tags)
    for arn, old in dead:
        new = parse(
            aws["secretsmanager"].get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"]
        )
        assert new.token_id != old.token_id and pulls(stack_env, new) == 200
    # And the poison message failed alone, at each of its deliveries, and waits in the dead-letter queue; the
    # unlucky job's message failed once (its TagResource throttled past botocore's retries) and was tagged
    # on its redelivery; no other message failed, and the others were throttled within their retries
    assert queue.failed.count(poisoned) == queue.max_receives
    assert [i for i in queue.failed if i != poisoned] == [unlucky_id]
    assert throttle.throttled > containers[0].remediator.batch.meta.config.retries["total_max_attempts"]
    assert queue.dead_letters() == [poison]
    assert queue.empty()
