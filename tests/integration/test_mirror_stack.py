"""The ECR pull-through cache mirror on the local stack: `regcred onboard --ecr-mirror`, rotation (the CLI's
in-process driver and the rotate function's handler), a failure between the promotion and the mirror write
repaired by the retried finishSecret, retirement refused while the mirror is stale, and an import. The
mirror's username and accessToken are proven against the real registry with a fresh login, as ECR's
pull-through cache would use them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devstack.lambda_local import LambdaContext, load
from regcred import config
from regcred.errors import RegcredError
from regcred.mirror import MirrorStale, mirror_problem
from regcred.rotation import CURRENT, PENDING, PREVIOUS, RetireResult, Rotator, stage_holder
from regcred.routing import Deployment
from regcred.store import SecretStore
from tests.aws_setup import hub, rotation_function
from tests.integration.test_rotation_stack import onboard, pulls, regcred, rotating, value
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack


def mirror_name() -> str:
    return f"ecr-pullthroughcache/hub-{uuid.uuid4().hex[:8]}"


def mirrored(sm: Any, mirror: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sm.get_secret_value(SecretId=mirror)["SecretString"])
    return body


def tags_of(sm: Any, secret: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=secret).get("Tags") or []}


def mirror_pulls(env: dict[str, str], body: dict[str, Any]) -> int:
    """The mirror's credential, as a pull-through cache rule would log in with it: a fresh /v2/ login."""
    repository, _, tag = env["REGCRED_SEED_IMAGE"].partition(":")
    return manifest_status(env["REGCRED_REGISTRY"], body["username"], body["accessToken"], repository, tag)


def holds_current(sm: Any, secret: str, mirror: str) -> bool:
    current = value(sm, secret, CURRENT)
    return mirrored(sm, mirror) == {"username": current.username, "accessToken": current.password}


def live_tokens(env: dict[str, str]) -> set[str]:
    return {t.token_id for t in hub(env).list_tokens() if t.active}


def in_process(sm: Any, env: dict[str, str]) -> Rotator:
    return Rotator(sm, deployment=Deployment.from_env(env), require_rotation_enabled=False)


@pytest.fixture
def mirrored_secret(stack_env: dict[str, str], admin_secret: str) -> tuple[str, str]:
    """A Docker Hub secret onboarded with --ecr-mirror (the mirror created by onboarding)."""
    name, mirror = f"batch/{uuid.uuid4().hex[:8]}", mirror_name()
    done = onboard(stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"], "--ecr-mirror", mirror)
    assert done.returncode == 0, done.stdout + done.stderr
    return name, mirror


# -- onboarding -------------------------------------------------------------------------------------------


def test_onboard_with_a_mirror_writes_awscurrent_to_a_new_bound_mirror(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    name, mirror = f"batch/{uuid.uuid4().hex[:8]}", mirror_name()
    image = stack_env["REGCRED_SEED_IMAGE"]
    # A dry run checks everything and creates nothing
    tokens = live_tokens(stack_env)
    dry = onboard(stack_env, name, admin_secret, image, "--ecr-mirror", mirror, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    report = json.loads(dry.stdout)
    assert report["ecr_mirror"] == {"name": mirror, "status": "would_create"}
    assert any(f"would create ECR mirror {mirror}" in line for line in report["plan"])
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=mirror)
    assert live_tokens(stack_env) == tokens
    # When the secret is onboarded with the mirror
    done = onboard(stack_env, name, admin_secret, image, "--ecr-mirror", mirror, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ecr_mirror"] == {"name": mirror, "status": "created"}
    # Then the mirror is bound to it and holds AWSCURRENT's username and token, which pull
    assert tags_of(sm, name)[config.ECR_MIRROR] == mirror
    assert tags_of(sm, mirror) == {config.MIRROR_OF: name}
    assert "KmsKeyId" not in sm.describe_secret(SecretId=mirror)  # aws/secretsmanager: what ECR reads
    assert holds_current(sm, name, mirror)
    assert mirror_pulls(stack_env, mirrored(sm, mirror)) == 200
    assert value(sm, name, CURRENT).password not in done.stdout + done.stderr


def test_onboard_refuses_an_existing_mirror_bound_to_nobody_before_minting(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    name, mirror = f"batch/{uuid.uuid4().hex[:8]}", mirror_name()
    sm.create_secret(Name=mirror, SecretString='{"username":"someone","accessToken":"theirs-0000"}')
    tokens = live_tokens(stack_env)
    done = onboard(stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"], "--ecr-mirror", mirror)
    assert done.returncode == 69, done.stdout + done.stderr
    assert f"{config.MIRROR_OF}={name}" in done.stderr
    assert live_tokens(stack_env) == tokens  # nothing minted
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=name)
    assert mirrored(sm, mirror) == {"username": "someone", "accessToken": "theirs-0000"}
    # A name outside the prefix is a usage error, before any AWS call
    bad = onboard(stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"], "--ecr-mirror", "hub/x")
    assert bad.returncode == 64 and "ecr-pullthroughcache/" in bad.stderr


def test_onboard_writes_an_existing_mirror_bound_to_the_secret(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    name, mirror = f"batch/{uuid.uuid4().hex[:8]}", mirror_name()
    sm.create_secret(
        Name=mirror,
        SecretString="not json at all",
        Tags=[{"Key": config.MIRROR_OF, "Value": name}],
    )
    done = onboard(
        stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"], "--ecr-mirror", mirror, "--json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ecr_mirror"] == {"name": mirror, "status": "written"}
    assert holds_current(sm, name, mirror)


# -- rotation ---------------------------------------------------------------------------------------------


def test_a_rotation_updates_the_mirror_and_only_once(
    stack_env: dict[str, str], sm: Any, mirrored_secret: tuple[str, str]
) -> None:
    name, mirror = mirrored_secret
    old = mirrored(sm, mirror)
    done = regcred(stack_env, "rotate", name, "--local")
    assert done.returncode == 0, done.stdout + done.stderr
    assert holds_current(sm, name, mirror) and mirrored(sm, mirror) != old
    assert mirror_pulls(stack_env, mirrored(sm, mirror)) == 200
    versions = len(sm.list_secret_version_ids(SecretId=mirror)["Versions"])
    # `regcred onboard --resume` finds it in sync: no new version
    resumed = regcred(stack_env, "onboard", name, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(resumed.stdout)["ecr_mirror"]["status"] == "in_sync"
    assert len(sm.list_secret_version_ids(SecretId=mirror)["Versions"]) == versions


def test_a_failure_between_the_promotion_and_the_mirror_write_is_repaired_by_the_retried_finish(
    stack_env: dict[str, str],
    sm: Any,
    admin_secret: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given a secret whose rotation the rotate function drives
    name, mirror = f"batch/{uuid.uuid4().hex[:8]}", mirror_name()
    function = rotation_function(stack_env)
    done = onboard(
        stack_env,
        name,
        admin_secret,
        stack_env["REGCRED_SEED_IMAGE"],
        "--ecr-mirror",
        mirror,
        *rotating(function),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    app = load("rotate")
    app._rotator = None  # clients from this test's environment
    old = mirrored(sm, mirror)
    token = str(uuid.uuid4())

    def step(name_: str) -> None:
        app.handler({"SecretId": name, "ClientRequestToken": token, "Step": name_}, LambdaContext())

    for name_ in ("createSecret", "setSecret", "testSecret"):
        step(name_)
    # When the mirror write fails right after the promotion (the answer lost, throttled...)
    real_put = SecretStore.put_current_string

    def lost(self: SecretStore, secret_id: str, secret_string: str) -> str | None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "-"}}, "PutSecretValue")

    monkeypatch.setattr(SecretStore, "put_current_string", lost)
    with pytest.raises(MirrorStale) as caught:
        step("finishSecret")
    # Then the rotation stays promoted, the step failed saying what happened, and the mirror is stale
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stage_holder(stages, CURRENT) == token and stage_holder(stages, PENDING) is None
    assert "is AWSCURRENT" in str(caught.value) and "ThrottlingException" in str(caught.value)
    assert tags_of(sm, name)[config.LAST_FAILURE].startswith(f"{token} finishSecret MirrorStale")
    assert mirrored(sm, mirror) == old
    # And the retry Secrets Manager makes of finishSecret (same token) writes it
    monkeypatch.setattr(SecretStore, "put_current_string", real_put)
    step("finishSecret")
    assert holds_current(sm, name, mirror) and mirror_pulls(stack_env, mirrored(sm, mirror)) == 200
    out, err = capfd.readouterr()
    for secret in (value(sm, name, CURRENT).password, value(sm, name, PREVIOUS).password):
        assert secret not in out + err


def test_the_resume_command_an_unwritable_mirror_names_repairs_it(
    stack_env: dict[str, str], sm: Any, mirrored_secret: tuple[str, str]
) -> None:
    name, mirror = mirrored_secret
    sm.untag_resource(SecretId=mirror, TagKeys=[config.MIRROR_OF])
    failed = regcred(stack_env, "rotate", name, "--local")
    assert failed.returncode != 0
    assert "is AWSCURRENT" in failed.stderr and f"{config.MIRROR_OF}={name}" in failed.stderr
    assert not holds_current(sm, name, mirror)
    sm.tag_resource(SecretId=mirror, Tags=[{"Key": config.MIRROR_OF, "Value": name}])
    resumed = regcred(stack_env, "onboard", name, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert holds_current(sm, name, mirror)


# -- retirement -------------------------------------------------------------------------------------------


def test_retire_is_refused_while_the_mirror_is_stale(
    stack_env: dict[str, str], sm: Any, mirrored_secret: tuple[str, str]
) -> None:
    name, mirror = mirrored_secret
    assert regcred(stack_env, "rotate", name, "--local").returncode == 0
    previous = value(sm, name, PREVIOUS)
    sm.tag_resource(SecretId=name, Tags=[{"Key": config.GRACE, "Value": "0s"}])
    # Given a mirror left on the previous token, that regcred may not write (its binding removed)
    sm.put_secret_value(
        SecretId=mirror,
        SecretString=json.dumps({"username": previous.username, "accessToken": previous.password}),
    )
    sm.untag_resource(SecretId=mirror, TagKeys=[config.MIRROR_OF])
    rotator = in_process(sm, stack_env)
    # Then retirement keeps the previous credential: the pull-through cache still uses it
    assert rotator.retire_previous(name) is RetireResult.MIRROR_STALE
    assert rotator.retire_previous(name, dry_run=True) is RetireResult.MIRROR_STALE
    assert pulls(stack_env, previous) == 200 and mirror_pulls(stack_env, mirrored(sm, mirror)) == 200
    problem = mirror_problem(SecretStore(sm), name)
    assert problem and f"{config.MIRROR_OF}={name}" in problem
    # When the binding is back, `regcred retire` writes AWSCURRENT to the mirror, then revokes
    sm.tag_resource(SecretId=mirror, Tags=[{"Key": config.MIRROR_OF, "Value": name}])
    retire = regcred(stack_env, "retire", name)
    assert retire.stdout.startswith("retired: "), retire.stdout + retire.stderr
    assert pulls(stack_env, previous) == 401
    assert holds_current(sm, name, mirror) and mirror_pulls(stack_env, mirrored(sm, mirror)) == 200


# -- import -----------------------------------------------------------------------------------------------


def test_an_imported_token_is_mirrored_on_promotion(stack_env: dict[str, str], sm: Any) -> None:
    from tests.integration import test_providers_stack as providers

    mirror = mirror_name()
    name, done = providers.onboard(stack_env, sm, "static", "--ecr-mirror", mirror)
    assert done.returncode == 0, done.stdout + done.stderr
    assert holds_current(sm, name, mirror)
    user, token = providers.fresh_credential(stack_env, "static")
    imported = providers.regcred(stack_env, "import", name, "--username", user, stdin=token + "\n")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert mirrored(sm, mirror) == {"username": user, "accessToken": token}
    assert token not in imported.stdout + imported.stderr
    # An import of the token AWSCURRENT holds already repairs a stale mirror
    sm.put_secret_value(SecretId=mirror, SecretString="{}")
    again = providers.regcred(stack_env, "import", name, "--username", user, stdin=token + "\n")
    assert again.returncode == 0, again.stdout + again.stderr
    assert mirrored(sm, mirror) == {"username": user, "accessToken": token}


def test_mirror_errors_never_carry_a_value(
    stack_env: dict[str, str], sm: Any, mirrored_secret: tuple[str, str]
) -> None:
    name, mirror = mirrored_secret
    current = value(sm, name, CURRENT)
    sm.tag_resource(SecretId=mirror, Tags=[{"Key": config.MIRROR_OF, "Value": "batch/someone-else"}])
    with pytest.raises(RegcredError) as caught:
        in_process(sm, stack_env).mirror_promoted(SecretStore(sm).describe(name), "v", current)
    assert current.password not in str(caught.value) and mirror in str(caught.value)


def test_the_sweep_repairs_a_mirror_someone_edited_and_records_it(
    stack_env: dict[str, str], sm: Any, mirrored_secret: tuple[str, str]
) -> None:
    from regcred.sweep import Sweeper, SweepRecord

    name, mirror = mirrored_secret
    sm.put_secret_value(SecretId=mirror, SecretString=json.dumps({"username": "x", "accessToken": "stale"}))
    assert not holds_current(sm, name, mirror)
    sweeper = Sweeper(sm, rotator=in_process(sm, stack_env))
    report = sweeper.sweep_secret(sm.describe_secret(SecretId=name)["ARN"])
    assert report.valid is True and report.mirror == "written"
    assert holds_current(sm, name, mirror) and mirror_pulls(stack_env, mirrored(sm, mirror)) == 200
    record = SweepRecord.parse(tags_of(sm, name)["regcred:sweep"])
    assert record is not None and record.mirror == "written"
    # In sync now: the next sweep writes no new version of the mirror
    versions = len(sm.list_secret_version_ids(SecretId=mirror)["Versions"])
    assert Sweeper(sm, rotator=in_process(sm, stack_env)).sweep_secret(name).mirror == "in_sync"
    assert len(sm.list_secret_version_ids(SecretId=mirror)["Versions"]) == versions
