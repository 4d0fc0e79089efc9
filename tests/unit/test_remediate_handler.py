"""The remediate handler on every sample in events/, against moto: what `sam local invoke -e` feeds it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from devstack.lambda_local import LambdaContext, load
from regcred.coalesce import Coalescer
from regcred.remediation import Remediator, Settings

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
    }


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
