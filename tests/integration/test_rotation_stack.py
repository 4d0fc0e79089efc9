"""Rotation end to end on the local stack: the real CLI, moto_server, the real distribution registry
and the Docker Hub fake as vendor API and token realm."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest

from regcred.rotation import CURRENT, PENDING, PREVIOUS, stage_holder
from regcred.secret import parse
from tests.aws_setup import rotation_function
from tests.integration.conftest import cli_env
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack


def regcred(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["regcred", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def onboard(
    env: dict[str, str], name: str, admin_secret: str, image: str, *extra: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`regcred onboard` of a Docker Hub secret on the stack's registry and API fake."""
    return regcred(
        env,
        "onboard",
        name,
        "--provider",
        "dockerhub",
        "--admin-secret",
        admin_secret,
        "--registry",
        env["REGCRED_REGISTRY"],
        "--api",
        env["REGCRED_DOCKERHUB_API"],
        "--image",
        image,
        *extra,
        stdin=stdin,
    )


def rotating(function: str, schedule: str = "rate(30 days)") -> tuple[str, ...]:
    """The onboard flags that enable rotation by ``function`` on ``schedule``."""
    return ("--rotation-lambda", function, "--schedule", schedule)


def value(sm: Any, secret: str, stage: str) -> Any:
    return parse(sm.get_secret_value(SecretId=secret, VersionStage=stage)["SecretString"])


def pulls(env: dict[str, str], secret_value: Any) -> int:
    repository, _, tag = env["REGCRED_SEED_IMAGE"].partition(":")
    return manifest_status(
        env["REGCRED_REGISTRY"], secret_value.username, secret_value.password, repository, tag
    )


@pytest.fixture
def onboarded(stack_env: dict[str, str], admin_secret: str) -> str:
    name = f"batch/{uuid.uuid4().hex[:8]}"
    done = onboard(stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("arn:aws:secretsmanager:")
    return name


def test_onboard_creates_a_tagged_secret_whose_token_pulls(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    meta = sm.describe_secret(SecretId=onboarded)
    tags = {t["Key"]: t["Value"] for t in meta["Tags"]}
    assert tags["regcred:managed"] == "true" and tags["regcred:provider"] == "dockerhub"
    current = value(sm, onboarded, CURRENT)
    assert current.password.startswith("dckr_pat_") and current.token_id
    assert pulls(stack_env, current) == 200
    check = regcred(stack_env, "check", onboarded, "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert [i["status"] for i in report["images"]] == ["ok"]
    assert current.password not in check.stdout + check.stderr


def test_rotate_local_promotes_a_new_token_and_the_old_one_still_pulls_until_retired(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    old = value(sm, onboarded, CURRENT)
    # When the four steps run in process, as Secrets Manager would run them
    done = regcred(stack_env, "rotate", onboarded, "--local")
    assert done.returncode == 0, done.stderr
    # Then AWSCURRENT is a new token, AWSPREVIOUS the old one, and both pull from the real registry
    stages = sm.describe_secret(SecretId=onboarded)["VersionIdsToStages"]
    assert stage_holder(stages, PENDING) is None
    new = value(sm, onboarded, CURRENT)
    previous = value(sm, onboarded, PREVIOUS)
    assert new.token_id != old.token_id and previous.token_id == old.token_id
    assert pulls(stack_env, new) == 200
    assert pulls(stack_env, previous) == 200
    assert regcred(stack_env, "check", onboarded, "--stage", "AWSPREVIOUS").returncode == 0
    # When the grace period is over and the previous token is retired
    sm.tag_resource(SecretId=onboarded, Tags=[{"Key": "regcred:grace", "Value": "0s"}])
    retire = regcred(stack_env, "retire", onboarded)
    assert retire.stdout.startswith("retired: "), retire.stdout + retire.stderr
    # Then the real registry refuses the old token and still serves the new one
    assert pulls(stack_env, previous) == 401
    check = regcred(stack_env, "check", onboarded, "--stage", "AWSPREVIOUS", "--json")
    assert check.returncode == 1
    assert json.loads(check.stdout)["images"][0]["status"] == "credentials_rejected"
    assert regcred(stack_env, "check", onboarded).returncode == 0


def test_check_says_which_images_fail_and_exits_1(stack_env: dict[str, str], sm: Any, onboarded: str) -> None:
    done = regcred(
        stack_env,
        "check",
        onboarded,
        "--image",
        stack_env["REGCRED_SEED_IMAGE"],
        "--image",
        "nobody/missing:1.0",
    )
    assert done.returncode == 1
    assert "ok" in done.stdout and ("not_found" in done.stdout or "no_access" in done.stdout)


def test_check_exits_2_when_the_registry_is_unreachable(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    # The registry comes from configuration: the deployer allows a loopback port nobody listens on, and the
    # secret's regcred:registry tag picks it.
    sm.tag_resource(SecretId=onboarded, Tags=[{"Key": "regcred:registry", "Value": "127.0.0.1:9"}])
    sm.put_secret_value(
        SecretId=onboarded,
        SecretString=json.dumps({"username": "u", "password": "p-unreachable-1"}),
        VersionStages=["AWSCURRENT"],
    )
    done = regcred(
        stack_env, "--allow-registry-host", "http://127.0.0.1:9", "check", onboarded, "--image", "a/b:1"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unreachable" in done.stdout


def test_check_refuses_a_value_that_names_another_registry(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    # Whoever may write the value cannot send the credential elsewhere: nothing is sent.
    sm.put_secret_value(
        SecretId=onboarded,
        SecretString=json.dumps({"username": "u", "password": "p-elsewhere-1", "registry": "127.0.0.1:9"}),
        VersionStages=["AWSCURRENT"],
    )
    done = regcred(stack_env, "check", onboarded)
    assert done.returncode != 0
    assert "names registry '127.0.0.1:9'" in done.stderr and "nothing was minted or sent" in done.stderr


def test_onboard_refuses_an_image_the_token_cannot_pull_and_revokes_it(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    name = f"batch/{uuid.uuid4().hex[:8]}"
    done = onboard(stack_env, name, admin_secret, "nobody/missing:1.0")
    assert done.returncode == 1
    assert "nothing was stored" in done.stderr
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=name)


def test_onboard_imports_a_token_from_stdin(
    stack_env: dict[str, str], sm: Any, onboarded: str, admin_secret: str
) -> None:
    existing = value(sm, onboarded, CURRENT)
    name = f"imported/{uuid.uuid4().hex[:8]}"
    done = onboard(
        stack_env,
        name,
        admin_secret,
        stack_env["REGCRED_SEED_IMAGE"],
        "--username",
        existing.username,
        stdin=existing.password + "\n",
    )
    assert done.returncode == 0, done.stderr
    imported = value(sm, name, CURRENT)
    assert imported.password == existing.password and imported.token_id is None


def test_onboard_with_a_rotation_lambda_enables_rotation_and_a_later_rotation_works(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    # Given a rotation function in moto (its Lambda backend without Docker: invocations succeed, no code runs)
    function = rotation_function(stack_env)
    name = f"batch/{uuid.uuid4().hex[:8]}"
    # When the secret is onboarded with that function and a schedule
    done = onboard(
        stack_env,
        name,
        admin_secret,
        stack_env["REGCRED_SEED_IMAGE"],
        *rotating(function),
    )
    assert done.returncode == 0, done.stderr
    # Then the secret names the function, the admin secret is marked for the function's IAM condition,
    # and RotateSecret's configuration test (a pending copy of AWSCURRENT) does not stop a rotation
    assert sm.describe_secret(SecretId=name)["RotationLambdaARN"] == function
    admin_tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=admin_secret)["Tags"]}
    assert admin_tags["regcred:admin"] == "true"
    before = value(sm, name, CURRENT)
    assert regcred(stack_env, "rotate", name, "--local").returncode == 0
    assert value(sm, name, PREVIOUS).token_id == before.token_id
    assert pulls(stack_env, value(sm, name, CURRENT)) == 200 and pulls(stack_env, before) == 200
    # And a mismatched pair of flags is refused before anything is minted
    half = regcred(
        stack_env,
        "onboard",
        f"batch/{uuid.uuid4().hex[:8]}",
        "--provider",
        "dockerhub",
        "--admin-secret",
        admin_secret,
        "--image",
        stack_env["REGCRED_SEED_IMAGE"],
        "--rotation-lambda",
        function,
    )
    assert half.returncode == 64 and "go together" in half.stderr
