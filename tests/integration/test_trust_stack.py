"""The trust boundary end to end on the local stack (moto_server, the real registry, the Docker Hub fake):
the admin credential is bound to the secrets it serves, a copied value cannot revoke the original's token,
and a rotation with every logger at DEBUG logs no secret."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from regcred import config
from regcred.errors import ConfigurationError
from regcred.rotation import CURRENT, PREVIOUS, Rotator, Step
from regcred.routing import Deployment
from regcred.secret import parse, render
from tests.aws_setup import stack_managed_secret
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack


def rotator(sm: Any, env: dict[str, str]) -> Rotator:
    return Rotator(sm, deployment=Deployment.from_env(env), require_rotation_enabled=False)


def mint_requests(env: dict[str, str]) -> int:
    lines = Path(env["REGCRED_DOCKERHUB_LOG"]).read_text().splitlines()
    return sum(
        1
        for line in lines
        if json.loads(line)["method"] == "POST" and "access-tokens" in json.loads(line)["path"]
    )


def admin(sm: Any, env: dict[str, str], **tags: str) -> str:
    name = f"admin/{uuid.uuid4().hex[:8]}"
    sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {
                "username": env["REGCRED_DOCKERHUB_ADMIN_USER"],
                "password": env["REGCRED_DOCKERHUB_ADMIN_TOKEN"],
            }
        ),
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    return name


def seed(env: dict[str, str]) -> tuple[str, str]:
    repository, _, tag = env["REGCRED_SEED_IMAGE"].partition(":")
    return repository, tag


@pytest.mark.parametrize(
    "tags",
    [
        {},  # not marked as an admin secret at all
        {config.ADMIN_MARK: "true"},  # marked, but serves nobody
        {config.ADMIN_MARK: "true", config.ADMIN_FOR: "team-b/* other/exact"},  # serves other secrets
        {config.ADMIN_MARK: "true", config.ADMIN_FOR: "*", config.MANAGED: "true"},  # itself a managed secret
    ],
    ids=["unmarked", "serves-nobody", "serves-others", "is-managed"],
)
def test_an_admin_secret_the_managed_secret_may_not_use_is_refused_before_minting(
    sm: Any, stack_env: dict[str, str], admin_secret: str, tags: dict[str, str]
) -> None:
    arn, _ = stack_managed_secret(sm, stack_env, admin_secret)
    sm.tag_resource(SecretId=arn, Tags=[{"Key": config.ADMIN_SECRET, "Value": admin(sm, stack_env, **tags)}])
    before = mint_requests(stack_env)
    with pytest.raises(ConfigurationError, match="admin"):
        rotator(sm, stack_env).run(arn, str(uuid.uuid4()), Step.CREATE)
    assert mint_requests(stack_env) == before


def test_an_admin_secret_bound_by_prefix_serves_the_secrets_under_it(
    sm: Any, stack_env: dict[str, str], admin_secret: str
) -> None:
    arn, _ = stack_managed_secret(sm, stack_env, admin_secret, prefix="team-a")
    bound = admin(sm, stack_env, **{config.ADMIN_MARK: "true", config.ADMIN_FOR: "team-a/*"})
    sm.tag_resource(SecretId=arn, Tags=[{"Key": config.ADMIN_SECRET, "Value": bound}])
    token = str(uuid.uuid4())
    for step in Step:
        rotator(sm, stack_env).run(arn, token, step)
    new = parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])
    assert manifest_status(stack_env["REGCRED_REGISTRY"], new.username, new.password, *seed(stack_env)) == 200


def test_a_copied_value_cannot_revoke_the_originals_token(
    sm: Any, stack_env: dict[str, str], admin_secret: str
) -> None:
    # Given a second managed secret whose value someone copied from the first
    original_arn, original = stack_managed_secret(sm, stack_env, admin_secret)
    copy_arn, _ = stack_managed_secret(sm, stack_env, admin_secret)
    sm.put_secret_value(SecretId=copy_arn, SecretString=render(original), VersionStages=[CURRENT])
    # When the copy rotates twice (the copied token leaves AWSPREVIOUS and would be revoked)
    for _ in range(2):
        token = str(uuid.uuid4())
        for step in Step:
            rotator(sm, stack_env).run(copy_arn, token, step)
    # Then the original credential still pulls at the real registry (a fresh login)
    status = manifest_status(
        stack_env["REGCRED_REGISTRY"], original.username, original.password, *seed(stack_env)
    )
    assert status == 200
    assert parse(sm.get_secret_value(SecretId=original_arn, VersionStage=CURRENT)["SecretString"]) == original


def test_a_rotation_with_every_logger_at_debug_logs_no_secret(
    sm: Any, stack_env: dict[str, str], admin_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    # As Lambda's ApplicationLogLevel=DEBUG does: the root logger at DEBUG (the leak guard reads caplog).
    caplog.set_level(logging.DEBUG)
    arn, _ = stack_managed_secret(sm, stack_env, admin_secret)
    token = str(uuid.uuid4())
    for step in Step:
        rotator(sm, stack_env).run(arn, token, step)
    assert any(r.name.startswith("regcred") and r.levelno == logging.DEBUG for r in caplog.records)
    assert not [
        r
        for r in caplog.records
        if r.name.startswith(("botocore", "urllib3")) and r.levelno < logging.WARNING
    ]
    previous = parse(sm.get_secret_value(SecretId=arn, VersionStage=PREVIOUS)["SecretString"])
    assert previous.password not in caplog.text
