"""The rotate function's handler, driven with the four Secrets Manager events on the local stack."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from devstack.lambda_local import LambdaContext, load
from regcred.errors import RegcredError, RotationError
from regcred.rotation import CURRENT, PREVIOUS
from regcred.secret import parse
from tests.aws_setup import stack_managed_secret
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack


@pytest.fixture
def rotate_app(stack_env: dict[str, str]) -> Any:
    module = load("rotate")
    module._rotator = None  # clients are built from this test's environment
    return module


@pytest.fixture
def managed_secret(sm: Any, stack_env: dict[str, str], admin_secret: str) -> str:
    """A managed secret with rotation enabled, holding a token minted at the fake."""
    arn, _ = stack_managed_secret(sm, stack_env, admin_secret, prefix="handler")
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"]
    return arn


def test_four_events_rotate_the_secret_and_logs_carry_no_secret(
    rotate_app: Any,
    sm: Any,
    stack_env: dict[str, str],
    managed_secret: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    old = parse(sm.get_secret_value(SecretId=managed_secret, VersionStage=CURRENT)["SecretString"])
    token = str(uuid.uuid4())
    # When Secrets Manager invokes the function once per step
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        event = {"SecretId": managed_secret, "ClientRequestToken": token, "Step": step}
        assert rotate_app.handler(event, LambdaContext()) is None
    # Then the new AWSCURRENT pulls from the real registry and the old one is AWSPREVIOUS
    new = parse(sm.get_secret_value(SecretId=managed_secret, VersionStage=CURRENT)["SecretString"])
    previous = parse(sm.get_secret_value(SecretId=managed_secret, VersionStage=PREVIOUS)["SecretString"])
    assert new.token_id != old.token_id and previous.token_id == old.token_id
    repository, _, tag = stack_env["REGCRED_SEED_IMAGE"].partition(":")
    assert manifest_status(stack_env["REGCRED_REGISTRY"], new.username, new.password, repository, tag) == 200
    # And the logs name the step with the token as correlation id, never the event or a secret
    out, err = capfd.readouterr()
    logs = [
        json.loads(line) for line in (out + err).splitlines() if line.startswith("{") and '"level"' in line
    ]
    done = [entry for entry in logs if entry.get("message") == "rotation step done"]
    assert [entry["step"] for entry in done] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert {entry["correlation_id"] for entry in done} == {token}
    for secret in (new.password, old.password, stack_env["REGCRED_DOCKERHUB_ADMIN_TOKEN"]):
        assert secret not in out + err
    metrics = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for blob in metrics for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"RotationStepSucceeded", "RotationStepDuration", "RotationDuration"} <= names
    assert {blob.get("provider") for blob in metrics} == {"dockerhub"}


def test_a_failed_step_raises_and_is_counted(
    rotate_app: Any, sm: Any, managed_secret: str, capfd: pytest.CaptureFixture[str]
) -> None:
    event = {"SecretId": managed_secret, "ClientRequestToken": str(uuid.uuid4()), "Step": "testSecret"}
    with pytest.raises(RotationError, match="does not exist"):
        rotate_app.handler(event, LambdaContext())
    out, _ = capfd.readouterr()
    assert "RotationStepFailed" in out
    # The alarm's metric carries the service dimension alone (RotationFailedAlarm matches exactly that).
    blobs = [json.loads(line) for line in out.splitlines() if '"RotationFailed"' in line]
    assert len(blobs) == 1
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert blobs[0]["RotationFailed"] == [1.0] and blobs[0]["service"]


def test_an_event_that_is_not_a_rotation_is_refused(rotate_app: Any) -> None:
    with pytest.raises(RegcredError, match="not a Secrets Manager rotation event"):
        rotate_app.handler({"detail-type": "Scheduled Event"}, LambdaContext())


def test_an_aws_error_is_counted_and_logged_by_its_code(
    rotate_app: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    event = {"SecretId": "no/such/secret", "ClientRequestToken": str(uuid.uuid4()), "Step": "createSecret"}
    with pytest.raises(RegcredError, match="does not exist"):
        rotate_app.handler(event, LambdaContext())
    out, err = capfd.readouterr()
    assert "RotationStepFailed" in out
    failed = [json.loads(line) for line in (out + err).splitlines() if '"rotation step failed"' in line]
    assert failed and failed[0]["reason"] == "secret no/such/secret does not exist"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([], "JSON object"),
        ("createSecret", "JSON object"),
        (None, "JSON object"),
        ({"SecretId": "", "ClientRequestToken": str(uuid.uuid4()), "Step": "createSecret"}, "SecretId"),
        ({"SecretId": "s", "ClientRequestToken": "", "Step": "createSecret"}, "ClientRequestToken"),
        ({"SecretId": "s", "ClientRequestToken": "short", "Step": "createSecret"}, "ClientRequestToken"),
        ({"SecretId": "s", "ClientRequestToken": "../" * 20, "Step": "createSecret"}, "ClientRequestToken"),
        ({"SecretId": "s", "ClientRequestToken": str(uuid.uuid4()), "Step": ""}, "Step"),
        ({"SecretId": "s", "ClientRequestToken": str(uuid.uuid4()), "Step": ["createSecret"]}, "Step"),
        ({"SecretId": {"a": 1}, "ClientRequestToken": str(uuid.uuid4()), "Step": "createSecret"}, "SecretId"),
        ({"SecretId": "s\nX", "ClientRequestToken": str(uuid.uuid4()), "Step": "createSecret"}, "SecretId"),
    ],
)
def test_malformed_rotation_events_get_one_clear_error(
    rotate_app: Any, capfd: pytest.CaptureFixture[str], event: Any, field: str
) -> None:
    from regcred.errors import InvalidEvent

    with pytest.raises(InvalidEvent, match=field) as caught:
        rotate_app.handler(event, LambdaContext())
    assert "not a Secrets Manager rotation event" in str(caught.value)
    out, _ = capfd.readouterr()
    assert "RotationEventInvalid" in out
