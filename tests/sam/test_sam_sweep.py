"""SweepFunction as deployed, invoked with events/sweep_schedule.json against the stack (moto_server, the real
registry, the Docker Hub fake).

A managed secret is rotated in this process (moto cannot run the rotate function), its grace period set to
0s; the deployed sweep must then prove AWSCURRENT, retire the previous token (which the real registry then
refuses on a fresh login), and record both in the secret's bookkeeping tags."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from regcred import config
from regcred.rotation import Rotator, Step
from regcred.routing import Deployment
from regcred.secret import parse
from regcred.store import CURRENT
from regcred.sweep import SweepRecord
from tests.sam.conftest import onboard
from tests.sam.sam import Sam, load_event
from tests.v2 import manifest_status

pytestmark = pytest.mark.sam


def _pulls(env: dict[str, str], username: str, password: str) -> int:
    repository, _, tag = env["REGCRED_SEED_IMAGE"].partition(":")
    return manifest_status(env["REGCRED_REGISTRY"], username, password, repository, tag)


def test_the_scheduled_sweep_proves_the_secret_and_retires_the_previous_token(
    sam: Sam, aws: dict[str, Any], env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    arn, old = onboard(aws, env, admin_secret, "sweep")
    sm.tag_resource(SecretId=arn, Tags=[{"Key": config.GRACE, "Value": "0s"}])
    rotator = Rotator(
        sm, batch=aws["batch"], deployment=Deployment.from_env(env), require_rotation_enabled=False
    )
    token = str(uuid.uuid4())
    for step in Step:
        rotator.run(arn, token, step)
    new = parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    assert new.token_id != old.token_id and _pulls(env, old.username, old.password) == 200
    # When the schedule's event reaches the deployed function
    call = sam.invoke_ok("SweepFunction", load_event("sweep_schedule.json"))
    result = call.payload
    # Then it swept every managed secret in the invocation (no fan-out), ours among them
    assert result["fanned_out"] == 0 and result["swept"] >= 1, result
    mine = [r for r in result["reports"] if r["arn"] == arn]
    assert mine, result
    report = mine[0]
    assert report["valid"] is True and report["failure"] is None and report["retired"] == "retired"
    # And the previous token is revoked: the real registry refuses it on a fresh login; AWSCURRENT pulls
    assert _pulls(env, old.username, old.password) == 401
    assert _pulls(env, new.username, new.password) == 200
    tags = config.tags_to_dict(sm.describe_secret(SecretId=arn)["Tags"])
    assert tags[config.RETIRED_TOKEN] == old.token_id
    record = SweepRecord.parse(tags[config.SWEEP])
    assert record is not None and record.valid is True and record.previous == "retired"
    assert tags[config.VALID_AT] == record.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The deployed function emitted the fleet counters and this secret's health
    assert '"SecretsSwept"' in call.logs and '"CredentialValid"' in call.logs, call.tail()
