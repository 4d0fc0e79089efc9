"""RemediateFunction as deployed, on a real Batch job in moto whose job definition names a managed secret.

The deployed function starts a rotation with RotateSecret, which moto (without Docker-run Lambdas) does not
carry out; so these tests assert on what is real: the handler's returned JSON and the job's tags in moto.
A healthy credential (the token is live at the fake and pulls from the real registry) is diagnosed
`transient`: the job is tagged and the secret is not touched."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from regcred.rotation import CURRENT, PENDING
from regcred.secret import parse
from tests.aws_setup import batch_queue, hub, job_definition
from tests.sam.conftest import onboard
from tests.sam.sam import Sam, load_event

pytestmark = pytest.mark.sam


def _batch_job(aws: dict[str, Any], env: dict[str, str], secret_arn: str) -> dict[str, str]:
    """A job in moto whose definition pulls the seed image from the real registry with ``secret_arn``."""
    batch = aws["batch"]
    queue = batch_queue(batch, aws["iam"])
    image = f"{env['REGCRED_REGISTRY']}/{env['REGCRED_SEED_IMAGE']}"
    definition = job_definition(batch, image, secret_arn)
    job = batch.submit_job(jobName="nightly-etl", jobQueue=queue, jobDefinition=definition)
    return {
        "jobId": job["jobId"],
        "jobArn": job["jobArn"],
        "queue": queue,
        "definition": definition,
        "image": image,
    }


def _event_for(sample: str, job: dict[str, str]) -> dict[str, Any]:
    """The sample event re-targeted at the job; the secret is left to be found in the job definition."""
    event = load_event(sample)
    detail = event["detail"]
    detail.update(
        jobId=job["jobId"], jobArn=job["jobArn"], jobQueue=job["queue"], jobDefinition=job["definition"]
    )
    detail["container"]["image"] = job["image"]
    detail["container"].pop("repositoryCredentials", None)
    event["resources"] = [job["jobArn"]]
    event["id"] = str(uuid.uuid4())
    return event


def _regcred_tags(aws: dict[str, Any], job_arn: str) -> dict[str, str]:
    tags = aws["batch"].list_tags_for_resource(resourceArn=job_arn)["tags"]
    return {k: v for k, v in tags.items() if k.startswith("regcred:")}


def test_auth_failure_with_a_live_token_tags_the_job_transient_and_does_not_rotate(
    sam: Sam, aws: dict[str, Any], env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    arn, value = onboard(aws, env, admin_secret, "remediate")
    versions_before = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    job = _batch_job(aws, env, arn)
    # When the job's FAILED event (an auth failure) reaches the deployed function
    call = sam.invoke_ok("RemediateFunction", _event_for("remediate_batch_auth_failure.json", job))
    # Then it classified it, found the secret in the job definition, probed the real registry (the token
    # pulls), and tagged the job in moto
    result = call.payload
    assert result["class"] == "auth"
    assert result["diagnosis"] == "transient"
    assert result["secret"] == arn
    assert result["actions"] == ["probed"]
    assert result["tagged"] is True and result["duplicate"] is False
    tags = _regcred_tags(aws, job["jobArn"])
    assert tags["regcred:pull-failure"] == "auth"
    assert tags["regcred:diagnosis"] == "transient"
    # And no rotation: the secret's versions and AWSCURRENT are as they were
    assert sm.describe_secret(SecretId=arn)["VersionIdsToStages"] == versions_before
    current = parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    assert current.token_id == value.token_id
    assert not any(PENDING in labels for labels in versions_before.values())


def test_auth_failure_with_a_revoked_token_is_diagnosed_from_the_registry_and_tagged(
    sam: Sam, aws: dict[str, Any], env: dict[str, str], admin_secret: str
) -> None:
    arn, value = onboard(aws, env, admin_secret, "revoked")
    job = _batch_job(aws, env, arn)
    # Given the token was revoked at the vendor: the real registry refuses it
    hub(env).revoke(value.token_id or "")
    # When the job's FAILED event reaches the deployed function
    call = sam.invoke_ok("RemediateFunction", _event_for("remediate_batch_auth_failure.json", job))
    # Then the probe saw the rejection and the function asked Secrets Manager to rotate (RotateSecret;
    # what moto does with it is not asserted), and the job carries the diagnosis
    result = call.payload
    assert result["class"] == "auth"
    assert result["diagnosis"] == "rotation_started"
    assert "probed" in result["actions"]
    assert result["secret"] == arn
    assert _regcred_tags(aws, job["jobArn"]) == {
        "regcred:pull-failure": "auth",
        "regcred:diagnosis": "rotation_started",
        "regcred:secret": aws["secretsmanager"].describe_secret(SecretId=arn)["Name"],
    }


def test_a_succeeded_job_is_ignored_and_not_tagged(
    sam: Sam, aws: dict[str, Any], env: dict[str, str], admin_secret: str
) -> None:
    arn, _ = onboard(aws, env, admin_secret, "succeeded")
    job = _batch_job(aws, env, arn)
    call = sam.invoke_ok("RemediateFunction", _event_for("remediate_batch_succeeded.json", job))
    assert call.payload == {"ignored": "status SUCCEEDED"}
    assert _regcred_tags(aws, job["jobArn"]) == {}
