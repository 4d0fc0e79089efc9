"""events/: every sample is documented, env.json names only functions the template has, and the rotation
events parse as AWS delivers them (and nothing else does)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from devstack.cfn import load_template
from regcred.events import failure_of, parse_event, rotation_of

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def template_functions() -> set[str]:
    resources = load_template()["Resources"]
    return {name for name, resource in resources.items() if resource["Type"] == "AWS::Serverless::Function"}


def test_every_sample_is_listed_in_the_readme_with_its_function() -> None:
    readme = (EVENTS / "README.md").read_text()
    functions = template_functions()
    for path in EVENTS.glob("*.json"):
        row = next((line for line in readme.splitlines() if f"`{path.name}`" in line), None)
        assert row, f"{path.name} is not in events/README.md"
        if path.name == "env.json":
            continue
        if path.name.startswith("sweep_") and "SweepFunction" not in functions:
            assert "SweepFunction (not in the template yet)" in row
            continue
        assert any(f"| {name} |" in row for name in functions), f"{path.name}: no function named"


def test_env_json_names_template_functions() -> None:
    env = json.loads((EVENTS / "env.json").read_text())
    assert set(env) <= template_functions()
    assert {"RotateFunction", "RemediateFunction"} <= template_functions()


# -- Secrets Manager's rotation events, as the rotation-events rule delivers them ---------------------

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/dockerhub-pull-AbCdEf"
ROTATION_SAMPLES = {
    "remediate_rotation_succeeded.json": "RotationSucceeded",
    "remediate_rotation_failed.json": "RotationFailed",
    "remediate_rotation_abandoned.json": "RotationAbandoned",
}


def rotation_sample(name: str = "remediate_rotation_succeeded.json") -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("name", "event_name"), sorted(ROTATION_SAMPLES.items()))
def test_each_rotation_sample_has_the_cloudtrail_shape_and_parses(name: str, event_name: str) -> None:
    event = rotation_sample(name)
    # The shape AWS documents: a CloudTrail service event, the secret's ARN in additionalEventData
    assert event["source"] == "aws.secretsmanager"
    assert event["detail-type"] == "AWS Service Event via CloudTrail"
    assert event["detail"]["eventType"] == "AwsServiceEvent"
    assert event["detail"]["eventSource"] == "secretsmanager.amazonaws.com"
    notice = rotation_of(parse_event(event))  # type: ignore[arg-type]
    assert (notice.name, notice.secret_arn, notice.event_id) == (event_name, ARN, event["id"])
    assert notice.succeeded is (event_name == "RotationSucceeded")
    assert (notice.error is not None) is (event_name == "RotationFailed")


def test_the_secret_may_be_under_service_event_details_instead() -> None:
    event = rotation_sample()
    del event["detail"]["additionalEventData"]
    event["detail"]["serviceEventDetails"] = {"secretId": ARN}
    assert rotation_of(parse_event(event)).secret_arn == ARN  # type: ignore[arg-type]
    event["detail"]["additionalEventData"] = {"SecretId": ARN}  # both, agreeing
    assert rotation_of(parse_event(event)).secret_arn == ARN  # type: ignore[arg-type]


def test_fields_aws_adds_are_allowed() -> None:
    event = rotation_sample()
    event["replay-name"] = "archive-replay"
    event["new-top-level"] = {"x": 1}
    event["detail"]["tlsDetails"] = {"tlsVersion": "TLSv1.3"}
    event["detail"]["additionalEventData"]["RotationToken"] = "abc"
    event["detail"]["sessionCredentialFromConsole"] = "true"
    assert rotation_of(parse_event(event)).secret_arn == ARN  # type: ignore[arg-type]


def test_a_secret_name_other_services_manage_is_a_valid_arn() -> None:
    event = rotation_sample()
    rds = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0a1b2c3d-4e5f-Zy9Xw8"
    event["detail"]["additionalEventData"]["SecretId"] = rds
    assert rotation_of(parse_event(event)).secret_arn == rds  # type: ignore[arg-type]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = event
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()
HOSTILE: dict[str, Callable[[dict[str, Any]], None]] = {
    "no secret at all": _set("detail.additionalEventData", _DELETE),
    "secret id null": _set("detail.additionalEventData.SecretId", None),
    "secret id a number": _set("detail.additionalEventData.SecretId", 42),
    "secret id a list": _set("detail.additionalEventData.SecretId", [ARN]),
    "secret id an object": _set("detail.additionalEventData.SecretId", {"arn": ARN}),
    "a name, not an ARN": _set("detail.additionalEventData.SecretId", "batch/dockerhub-pull"),
    "partial ARN (no suffix)": _set("detail.additionalEventData.SecretId", ARN[: -len("-AbCdEf")]),
    "another service's ARN": _set(
        "detail.additionalEventData.SecretId", "arn:aws:lambda:us-east-1:123456789012:function:x-AbCdEf"
    ),
    "newline injected": _set("detail.additionalEventData.SecretId", ARN + "\n" + ARN),
    "space in the name": _set("detail.additionalEventData.SecretId", ARN.replace("dockerhub-pull", "a b")),
    "non-ASCII digits in the account": _set(
        "detail.additionalEventData.SecretId", ARN.replace("123456789012", "١٢٣٤٥٦٧٨٩٠١٢")
    ),
    "name too long": _set("detail.additionalEventData.SecretId", ARN.replace("dockerhub-pull", "x" * 600)),
    "another account's secret": _set(
        "detail.additionalEventData.SecretId", ARN.replace("123456789012", "210987654321")
    ),
    "another region's secret": _set(
        "detail.additionalEventData.SecretId", ARN.replace("us-east-1", "eu-west-1")
    ),
    "two different secrets": _set(
        "detail.serviceEventDetails", {"secretId": ARN.replace("AbCdEf", "ZzZzZz")}
    ),
    "an API call, not a service event": _set("detail-type", "AWS API Call via CloudTrail"),
    "another event name": _set("detail.eventName", "RotationStarted"),
    "another event source": _set("detail.eventSource", "kms.amazonaws.com"),
    "another source": _set("source", "aws.kms"),
    "detail not an object": _set("detail", "RotationSucceeded"),
    "detail missing": _set("detail", _DELETE),
    "no time": _set("time", _DELETE),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_malformed_or_hostile_rotation_event_raises(case: str) -> None:
    # Raised, so that the handler's event goes to the dead-letter queue (as for Batch and ECS events)
    event = rotation_sample()
    HOSTILE[case](event)
    with pytest.raises(ValidationError):
        parse_event(event)


@pytest.mark.parametrize("raw", [None, [], "RotationSucceeded", 7, {"source": "aws.secretsmanager"}])
def test_what_is_not_an_event_at_all_raises(raw: Any) -> None:
    with pytest.raises(ValidationError):
        parse_event(raw)


def test_a_rotation_event_reports_no_pull_failure() -> None:
    with pytest.raises(TypeError):
        failure_of(parse_event(rotation_sample()))


def test_a_pull_failure_carries_its_time_and_what_a_resubmission_needs() -> None:
    event = json.loads((EVENTS / "remediate_batch_auth_failure.json").read_text())
    event["detail"]["arrayProperties"] = {"size": 4, "statusSummary": {}}
    event["detail"]["shareIdentifier"] = "teamA"
    failure = failure_of(parse_event(event))
    assert failure.failed_at == datetime(2026, 11, 28, 9, 15, 2, tzinfo=UTC).timestamp()
    assert (failure.array_size, failure.share_identifier) == (4, "teamA")


def test_an_ecs_tasks_execution_role_override_is_the_role_remediation_checks() -> None:
    # RunTask's overrides.executionRoleArn replaces the task definition's role for that task.
    from regcred import jobs

    event = json.loads((EVENTS / "remediate_ecs_task_auth_failure.json").read_text())
    assert failure_of(parse_event(event)).execution_role is None
    override = "arn:aws:iam::111122223333:role/override-execution"
    event["detail"]["overrides"]["executionRoleArn"] = override
    failure = failure_of(parse_event(event))
    assert failure.execution_role == override

    definition = {
        "executionRoleArn": "arn:aws:iam::111122223333:role/definition-execution",
        "containerDefinitions": [{"name": "FargateApp", "image": "acme/app:1.0"}],
    }
    cache = jobs.DefinitionCache(lambda arn: definition)
    assert jobs.link(failure, cache, cache).role == override
    event["detail"]["overrides"].pop("executionRoleArn")
    assert jobs.link(failure_of(parse_event(event)), cache, cache).role == definition["executionRoleArn"]
