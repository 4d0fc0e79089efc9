"""The remediate handler on every sample in events/, against moto: what `sam local invoke -e` feeds it."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber
from pydantic import ValidationError

from devstack.lambda_local import LambdaContext, load
from regcred import aws
from regcred.coalesce import Coalescer
from regcred.remediation import Remediator, Settings
from tests.aws_setup import coalesce_table

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXPECTED = {
    "remediate_batch_auth_failure.json": ("auth", "secret_missing"),
    "remediate_batch_ambiguous_denial.json": ("auth_or_not_found", "secret_missing"),
    "remediate_batch_secret_access_denied.json": ("secret_retrieval", "secret_missing"),
    "remediate_batch_rate_limit.json": ("rate_limit", "rate_limited"),
    "remediate_batch_manifest_unknown.json": ("not_found", "not_found"),
    "remediate_ecs_task_auth_failure.json": ("auth", "no_repository_credentials"),
}
# Rotation events: the sample secret does not exist here; RotationSucceeded does nothing without ResubmitJobs.
ROTATION_EXPECTED = {
    "remediate_rotation_succeeded.json": ("RotationSucceeded", "resubmit_disabled"),
    "remediate_rotation_failed.json": ("RotationFailed", "secret_missing"),
    "remediate_rotation_abandoned.json": ("RotationAbandoned", "secret_missing"),
}


@pytest.fixture
def app() -> Iterator[Any]:
    with mock_aws():
        module = load("remediate")
        module._remediator = Remediator(
            sm=boto3.client("secretsmanager"),
            batch=boto3.client("batch"),
            iam=boto3.client("iam"),
            ecs=boto3.client("ecs"),
            coalescer=Coalescer(None, None, 900),
            settings=Settings(),
        )
        yield module
        module._remediator = None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_failure_sample_is_classified_and_diagnosed(app: Any, name: str) -> None:
    # The samples name a secret that does not exist in this empty account: the diagnosis says so.
    result = app.handler(json.loads((EVENTS / name).read_text()), LambdaContext())
    assert (result["class"], result["diagnosis"]) == EXPECTED[name]


def test_every_remediation_sample_is_covered() -> None:
    assert {p.name for p in EVENTS.glob("remediate_*.json")} == set(EXPECTED) | set(ROTATION_EXPECTED) | {
        "remediate_batch_succeeded.json"
    } | set(SQS_SAMPLES)


@pytest.mark.parametrize("name", sorted(ROTATION_EXPECTED))
def test_each_rotation_sample_is_handled(app: Any, name: str) -> None:
    result = app.handler(json.loads((EVENTS / name).read_text()), LambdaContext())
    assert (result["rotation_event"], result["result"]) == ROTATION_EXPECTED[name]
    assert (
        result["secret"] == "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/dockerhub-pull-AbCdEf"
    )
    assert result["resubmitted"] == {} and result["held"] == 0
    assert json.loads(json.dumps(result)) == result


def emf(out: str, name: str) -> list[dict[str, Any]]:
    """The EMF records on stdout that carry the metric ``name``."""
    found = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            metrics = record["_aws"]["CloudWatchMetrics"][0]
            if any(m["Name"] == name for m in metrics["Metrics"]):
                found.append(record)
    return found


def test_a_managed_secrets_failed_rotation_is_one_metric_with_the_service_dimension_only(
    app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(
        Name="batch/dockerhub-pull",
        SecretString="{}",
        Tags=[{"Key": "regcred:managed", "Value": "true"}],
    )["ARN"]
    event = json.loads((EVENTS / "remediate_rotation_failed.json").read_text())
    event["detail"]["additionalEventData"]["SecretId"] = arn
    result = app.handler(event, LambdaContext())
    assert result["rotation_event"] == "RotationFailed" and result["result"] == "no_topic"
    records = emf(capsys.readouterr().out, "SecretsManagerRotationFailed")
    assert len(records) == 1
    record = records[0]
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "regcred"
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert record["SecretsManagerRotationFailed"] == [1.0]
    # No other dimension, nor any other property
    assert set(record) == {"_aws", "service", "SecretsManagerRotationFailed"}


def test_a_missing_secrets_failed_rotation_is_not_counted(
    app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app.handler(json.loads((EVENTS / "remediate_rotation_failed.json").read_text()), LambdaContext())
    assert emf(capsys.readouterr().out, "SecretsManagerRotationFailed") == []


@pytest.mark.parametrize(
    "secret",
    [
        "batch/dockerhub-pull",  # a name: the event always carries the ARN
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/dockerhub-pull-AbCdEf\nx",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:batch/dockerhub-pull-AbCdEf",
    ],
)
def test_a_rotation_event_with_a_bad_secret_raises_so_that_it_reaches_the_dead_letter_queue(
    app: Any, secret: str
) -> None:
    event = json.loads((EVENTS / "remediate_rotation_succeeded.json").read_text())
    event["detail"]["additionalEventData"]["SecretId"] = secret
    with pytest.raises(ValidationError):
        app.handler(event, LambdaContext())


def test_a_success_event_is_ignored(app: Any) -> None:
    result = app.handler(json.loads((EVENTS / "remediate_batch_succeeded.json").read_text()), LambdaContext())
    assert result == {"ignored": "status SUCCEEDED"}


def test_an_event_it_cannot_parse_raises_so_that_it_reaches_the_dead_letter_queue(app: Any) -> None:
    with pytest.raises(ValidationError):
        app.handler({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}, LambdaContext())


# -- batches of RemediationQueue (the event source mapping's SQS events) ---------------------------------

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:regcred-RemediationQueue"
# The SQS samples: the failed message ids of each (their other events are handled).
SQS_SAMPLES = {
    "remediate_sqs_batch.json": [],
    "remediate_sqs_poison.json": [
        "f26c8d4e-3a9b-4e7f-8cb2-4d8f6a1b9c56",
        "0a37d9e5-4bac-4f80-9dc3-5e9a7b2cad67",
    ],
}


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


def record(body: str, message_id: str | None = None, receives: int = 1) -> dict[str, Any]:
    """One message as the event source mapping hands it to the function."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB-handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receives), "SentTimestamp": "1795857302000"},
        "messageAttributes": {},
        "md5OfBody": "-",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def failed_job(name: str = "remediate_batch_rate_limit.json") -> dict[str, Any]:
    """A sample failure event of a job of its own."""
    event = sample(name)
    job = str(uuid.uuid4())
    event["id"] = str(uuid.uuid4())
    event["detail"].update(jobId=job, jobArn=f"arn:aws:batch:us-east-1:123456789012:job/{job}")
    event["resources"] = [event["detail"]["jobArn"]]
    return event


def batch(*bodies: Any) -> dict[str, Any]:
    return {"Records": [record(b if isinstance(b, str) else json.dumps(b)) for b in bodies]}


def failed_ids(response: dict[str, Any]) -> list[str]:
    assert set(response) == {"batchItemFailures"}, response  # exactly what the event source mapping reads
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def tags(event: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = boto3.client("batch").list_tags_for_resource(
        resourceArn=event["detail"]["jobArn"]
    )["tags"]
    return found


def test_the_sqs_samples_carry_the_direct_samples() -> None:
    # What `sam local invoke` feeds the function either way: the batch samples wrap the direct ones.
    directs = {json.dumps(json.loads(p.read_text()), sort_keys=True) for p in EVENTS.glob("remediate_*.json")}
    for name, failing in SQS_SAMPLES.items():
        records = sample(name)["Records"]
        assert {r["eventSource"] for r in records} == {"aws:sqs"}, name
        for r in records:
            if r["messageId"] in failing:
                continue
            assert json.dumps(json.loads(r["body"]), sort_keys=True) in directs, (name, r["messageId"])
            assert r["md5OfBody"] == hashlib.md5(r["body"].encode(), usedforsecurity=False).hexdigest()


@pytest.mark.parametrize("name", sorted(SQS_SAMPLES))
def test_each_sqs_sample_reports_exactly_its_poison_messages(app: Any, name: str) -> None:
    event = sample(name)
    assert failed_ids(app.handler(event, LambdaContext())) == SQS_SAMPLES[name]
    # And the events among them were handled: their jobs are tagged
    for r in event["Records"]:
        if r["messageId"] in SQS_SAMPLES[name]:
            continue
        body = json.loads(r["body"])
        if body["source"] == "aws.batch" and body["detail"]["status"] == "FAILED":
            assert tags(body)["regcred:diagnosis"], r["messageId"]


POISON = {
    "not JSON": "job 7fa832d1 failed to pull",
    "truncated JSON": json.dumps(sample("remediate_batch_auth_failure.json"))[:300],
    "empty": "",
    "a JSON array": "[1, 2]",
    "JSON null": "null",
    "a JSON string": '"CannotPullContainerError"',
    "nested too deep": "[" * 100_000 + "]" * 100_000,
    "larger than any EventBridge event": json.dumps({"source": "aws.batch", "pad": "x" * 300_000}),
    "an S3 event": json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
    "a Batch event without its job": json.dumps(
        {**sample("remediate_batch_auth_failure.json"), "detail": {}}
    ),
    "a rotation event of another account": json.dumps(sample("remediate_rotation_failed.json")).replace(
        "arn:aws:secretsmanager:us-east-1:123456789012:", "arn:aws:secretsmanager:us-east-1:210987654321:"
    ),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_a_poison_message_fails_alone(app: Any, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    before, after = failed_job(), failed_job("remediate_batch_manifest_unknown.json")
    event = batch(before, POISON[case], after)
    poison_id = event["Records"][1]["messageId"]
    assert failed_ids(app.handler(event, LambdaContext())) == [poison_id]
    assert tags(before)["regcred:diagnosis"] == "rate_limited"
    assert tags(after)["regcred:diagnosis"] == "not_found"
    # The failure is logged with the message id and the error's type, never the body
    out = capsys.readouterr()
    logged = [json.loads(line) for line in out.err.splitlines() if line.startswith("{")]
    failures = [r for r in logged if r.get("message", "").startswith("event failed")]
    assert [r["message_id"] for r in failures] == [poison_id]
    assert failures[0]["error"] in ("InvalidEvent", "ValidationError")
    if len(POISON[case]) > 20:
        assert POISON[case][:200] not in out.err + out.out


def test_a_batch_whose_every_message_fails_is_reported_not_raised(app: Any) -> None:
    # Raised, the invocation would count as an error and the whole batch would come back; reported, each
    # message is delivered again on its own and the metrics of the invocation go out.
    event = batch("x", "[]", "null")
    assert failed_ids(app.handler(event, LambdaContext())) == [r["messageId"] for r in event["Records"]]


def test_an_event_not_started_for_lack_of_time_fails_unstarted(app: Any) -> None:
    @dataclass
    class LateContext(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 35_000  # 25 s once the handler's margin is taken: less than an event may need

    event = batch(failed_job(), failed_job())
    assert failed_ids(app.handler(event, LateContext())) == [r["messageId"] for r in event["Records"]]


def test_a_direct_event_and_a_batch_of_it_give_the_same_tags(app: Any) -> None:
    direct, queued = (
        failed_job("remediate_batch_auth_failure.json"),
        failed_job("remediate_batch_auth_failure.json"),
    )
    result = app.handler(direct, LambdaContext())
    assert failed_ids(app.handler(batch(queued), LambdaContext())) == []
    assert result["tagged"] and tags(direct) == tags(queued)


# -- throttling: botocore's retries within the invocation, then the redelivery ---------------------------


class Throttle:
    """Answers the requests ``matches`` picks as AWS answers a throttled request, before moto sees them (a
    throttled request is not carried out); every other request goes to moto. Counts the requests."""

    def __init__(self, client: Any, matches: Callable[[str, Any], bool], times: int) -> None:
        self.service = client.meta.service_model.service_name
        self.matches, self.left, self.requests = matches, times, Counter[str]()
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", self._send)

    def _send(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        self.requests[operation] += 1
        if self.left > 0 and self.matches(operation, request):
            self.left -= 1
            if self.service == "batch":
                status, headers = 429, {"x-amzn-ErrorType": "TooManyRequestsException:"}
                body = {"message": "Too Many Requests"}
            else:
                status, headers = 400, {}
                body = {
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded.",
                }
            return AWSResponse(request.url, status, headers, MockRawResponse(json.dumps(body)))  # type: ignore[arg-type]
        response: AWSResponse | None = botocore_stubber(event_name=event_name, request=request, **kwargs)
        return response


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries as configured, without their backoff waits."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def deployed(no_backoff: None) -> Iterator[Any]:
    """The handler with the remediator as the function builds it: regcred.aws clients (retries), a coalesce
    table, claims that are given back (build_remediator, against moto)."""
    with mock_aws():
        coalesce_table(boto3.client("dynamodb"), "coalesce")
        with pytest.MonkeyPatch.context() as env:
            env.setenv("REGCRED_COALESCE_TABLE", "coalesce")
            env.delenv("REGCRED_TOPIC_ARN", raising=False)
            module = load("remediate")
            module._remediator = module.build_remediator()
            yield module
            module._remediator = None


def attempts(client: Any) -> int:
    """How many times botocore sends a request that keeps being throttled (the first and its retries)."""
    return int(client.meta.config.retries["total_max_attempts"])


def test_the_functions_clients_retry_throttling_within_the_invocation() -> None:
    # What makes a throttle a retry rather than a failed event: regcred.aws's botocore configuration.
    # Standard mode retries TooManyRequestsException, ThrottlingException and
    # ProvisionedThroughputExceededException with backoff (legacy mode knows fewer codes); not adaptive mode,
    # whose rate limiter slows a client's every call after one throttle (bench/storm.py measures it).
    client = aws.client("batch", region_name="us-east-1")
    assert client.meta.config.retries["mode"] == "standard"
    assert attempts(client) >= 3


def test_a_throttled_tag_is_retried_within_the_invocation(deployed: Any) -> None:
    event = failed_job()
    job = event["detail"]["jobId"]
    throttle = Throttle(deployed._remediator.batch, lambda op, r: op == "TagResource" and job in r.url, 2)
    assert failed_ids(deployed.handler(batch(event), LambdaContext())) == []
    assert tags(event)["regcred:diagnosis"] == "rate_limited"
    assert throttle.requests["TagResource"] == 3  # two answered 429, the third carried out


def test_a_tag_still_throttled_after_the_retries_fails_only_its_message_and_is_tagged_on_redelivery(
    deployed: Any,
) -> None:
    first, unlucky, last = failed_job(), failed_job("remediate_batch_manifest_unknown.json"), failed_job()
    job = unlucky["detail"]["jobId"]
    sent = attempts(deployed._remediator.batch)
    throttle = Throttle(deployed._remediator.batch, lambda op, r: op == "TagResource" and job in r.url, sent)
    event = batch(first, unlucky, last)
    # When every attempt of the one job's TagResource is throttled
    assert failed_ids(deployed.handler(event, LambdaContext())) == [event["Records"][1]["messageId"]]
    # Then the others are tagged, it is not; and SQS delivers it again, alone
    assert tags(first) and tags(last) and tags(unlucky) == {}
    assert throttle.requests["TagResource"] == 2 + sent
    again = {"Records": [{**event["Records"][1], "attributes": {"ApproximateReceiveCount": "2"}}]}
    assert failed_ids(deployed.handler(again, LambdaContext())) == []
    assert tags(unlucky)["regcred:diagnosis"] == "not_found"


def test_throttled_claims_are_retried_and_one_probe_is_made(deployed: Any) -> None:
    # A storm for one secret that regcred does not manage: the probe's claim is a conditional PutItem.
    ddb = deployed._remediator.coalescer._ddb
    throttle = Throttle(ddb, lambda op, r: op in ("PutItem", "UpdateItem"), 3)
    events = [failed_job("remediate_batch_auth_failure.json") for _ in range(5)]
    assert failed_ids(deployed.handler(batch(*events), LambdaContext())) == []
    assert {tags(e)["regcred:diagnosis"] for e in events} == {"secret_missing"}
    assert throttle.left == 0
    secret = events[0]["detail"]["container"]["repositoryCredentials"]["credentialsParameter"]
    item = boto3.client("dynamodb").get_item(TableName="coalesce", Key={"pk": {"S": f"probe#{secret}"}})[
        "Item"
    ]
    assert item["diagnosis"]["S"] == "secret_missing"


def test_a_probe_whose_aws_call_still_fails_gives_its_claim_back_for_the_redelivery(deployed: Any) -> None:
    # Given a managed secret whose value is no credential, and Secrets Manager throttling every attempt of
    # the first DescribeSecret
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(
        Name="batch/dockerhub-pull", SecretString="{}", Tags=[{"Key": "regcred:managed", "Value": "true"}]
    )["ARN"]
    client = deployed._remediator.store.sm
    Throttle(client, lambda op, r: op == "DescribeSecret", attempts(client))
    event = failed_job("remediate_batch_auth_failure.json")
    event["detail"]["container"]["repositoryCredentials"]["credentialsParameter"] = arn
    message = batch(event)
    # When its first delivery fails on it
    assert failed_ids(deployed.handler(message, LambdaContext())) == [message["Records"][0]["messageId"]]
    # Then the redelivery probes (it does not find the claim taken with no diagnosis, and tag "coalesced")
    assert failed_ids(deployed.handler(message, LambdaContext())) == []
    assert tags(event)["regcred:diagnosis"] not in ("coalesced", "")
    assert tags(event)["regcred:diagnosis"] == "secret_misconfigured"
