"""RotateFunction as deployed: four `sam local invoke` calls, one per Secrets Manager step, rotate a secret
in moto; the new AWSCURRENT pulls from the real registry and the old credential is AWSPREVIOUS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from regcred.rotation import CURRENT, PENDING, PREVIOUS
from regcred.secret import parse
from tests.sam.conftest import onboard
from tests.sam.sam import Sam, load_event
from tests.v2 import manifest_status

pytestmark = pytest.mark.sam
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def test_four_invokes_rotate_the_secret_and_the_new_token_pulls(
    sam: Sam, aws: dict[str, Any], env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    arn, onboarded = onboard(aws, env, admin_secret, "rotate")
    old = parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    assert old.token_id == onboarded.token_id
    token = str(uuid.uuid4())
    # When Secrets Manager invokes the deployed function once per step (the sample events, re-targeted)
    calls = []
    for step in STEPS:
        event = load_event(f"rotate_{step}.json")
        assert event["Step"] == step
        event.update(SecretId=arn, ClientRequestToken=token)
        call = sam.invoke_ok("RotateFunction", event)
        assert call.payload is None  # the handler returns nothing; raising would fail the step
        calls.append(call)

    # Then the new AWSCURRENT is the version of this rotation, and it pulls from the real registry
    new = parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    previous = parse(sm.get_secret_value(SecretId=arn, VersionStage=PREVIOUS)["SecretString"])
    assert new.token_id and new.token_id != old.token_id
    assert previous.token_id == old.token_id
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert CURRENT in stages[token]
    assert not any(PENDING in labels for labels in stages.values())  # finishSecret removed AWSPENDING
    repository, _, tag = env["REGCRED_SEED_IMAGE"].partition(":")
    assert manifest_status(env["REGCRED_REGISTRY"], new.username, new.password, repository, tag) == 200

    # And each container logged its step with the token as correlation id, and no secret value
    done = [r for c in calls for r in c.log_records() if r.get("message") == "rotation step done"]
    assert [r["step"] for r in done] == list(STEPS)
    assert {r["correlation_id"] for r in done} == {token}
    logs = "".join(c.logs + c.stdout for c in calls)
    for secret in (new.password, old.password, env["REGCRED_DOCKERHUB_ADMIN_TOKEN"]):
        assert secret not in logs
