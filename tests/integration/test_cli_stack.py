"""The operator CLI on the local stack, as a user with `.stack/env` sourced drives it: JSON on every command
(errors included), exit codes, --dry-run writing nothing, onboarding that can be resumed, rotate refusing a
secret without rotation, --wait, and Ctrl-C. State is read back with boto3 and the vendor fake's listing."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest

from regcred.cli import main
from regcred.store import CURRENT, PENDING, PREVIOUS
from tests.aws_setup import hub, rotation_function
from tests.integration.test_rotation_stack import onboard, regcred, rotating, value

pytestmark = pytest.mark.stack


def snapshot(sm: Any, env: dict[str, str], *names: str) -> dict[str, Any]:
    """Every secret's versions and tags, and every live token at the vendor."""
    secrets: dict[str, Any] = {}
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for meta in page["SecretList"]:
            secrets[meta["Name"]] = (
                sorted((k, tuple(sorted(v))) for k, v in (meta.get("SecretVersionsToStages") or {}).items()),
                sorted((t["Key"], t["Value"]) for t in meta.get("Tags") or []),
                meta.get("RotationEnabled"),
            )
    tokens = sorted(t.token_id for t in hub(env).list_tokens() if t.active)
    return {"secrets": secrets, "tokens": tokens}


def onboard_here(env: dict[str, str], name: str, admin_secret: str, *extra: str) -> int:
    """`regcred onboard` in this process (so that a test can patch the library under it)."""
    args = ["onboard", name, "--provider", "dockerhub", "--admin-secret", admin_secret]
    return main([*args, "--image", env["REGCRED_SEED_IMAGE"], *extra])


def js(done: Any) -> dict[str, Any]:
    assert done.stdout.count("\n") == 1, done.stdout + done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    assert body["exit_code"] == done.returncode
    return body


@pytest.fixture
def onboarded(stack_env: dict[str, str], admin_secret: str) -> str:
    name = f"batch/{uuid.uuid4().hex[:8]}"
    done = onboard(stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"])
    assert done.returncode == 0, done.stderr
    return name


# -- JSON and exit codes on every command -------------------------------------------------------------


def test_every_command_answers_json_with_the_fields_a_script_needs(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    check = js(regcred(stack_env, "check", onboarded, "--output", "json"))
    assert check["status"] == "ok" and check["ok"] is True and check["images"][0]["status"] == "ok"
    assert check["token_id"] and check["registry"] == stack_env["REGCRED_REGISTRY"]
    show = js(regcred(stack_env, "show", onboarded, "--json"))
    assert [v["stages"] for v in show["versions"]] == [[CURRENT]]
    listing = js(regcred(stack_env, "list", "--json"))
    mine = [s for s in listing["secrets"] if s["secret"] == onboarded]
    assert mine and mine[0]["provider"] == "dockerhub" and mine[0]["expires_in_s"] > 0
    retire = js(regcred(stack_env, "retire", onboarded, "--json"))
    assert retire["result"] == "no_previous" and retire["status"] == "ok"
    local = js(regcred(stack_env, "rotate", onboarded, "--local", "--json"))
    assert local["status"] == "promoted" and [s["step"] for s in local["steps"]][:1] == ["createSecret"]
    diagnose = js(regcred(stack_env, "diagnose", "no-such-job", "--json"))
    assert diagnose["exit_code"] == 2 and diagnose["checks"][0]["ok"] is False
    classify = regcred(stack_env, "classify", "--json", "toomanyrequests: Too Many Requests")
    assert json.loads(classify.stdout)["class"] == "rate_limit"
    for argv in (["show", "no/such"], ["check", "no/such"], ["rotate", "no/such"], ["retire", "no/such"]):
        error = js(regcred(stack_env, *argv, "--json"))
        assert error["exit_code"] == 69 and "no/such" in error["error"], argv
    password = value(sm, onboarded, CURRENT).password
    for done in (check, show, listing, local):
        assert password not in json.dumps(done)


def test_an_unreachable_registry_is_exit_2_and_not_worded_as_a_failing_credential(
    stack_env: dict[str, str], onboarded: str
) -> None:
    env = dict(stack_env)
    # A closed loopback port the deployment allows: the registry cannot be reached.
    env["REGCRED_ALLOWED_REGISTRY_HOSTS"] += " http://127.0.0.1:9"
    done = regcred(env, "check", onboarded, "--image", "127.0.0.1:9/acme/app:1")
    assert done.returncode == 64  # not the secret's registry: a usage error, never a result code
    done = regcred(env, "check", onboarded, "--timeout", "3", "--allow-registry-host", "http://127.0.0.1:9")
    assert done.returncode == 0  # the flag adds a host; the secret's own registry still answers


# -- rotate ------------------------------------------------------------------------------------------


def test_rotate_refuses_a_secret_without_rotation_and_says_how_to_enable_it(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    before = snapshot(sm, stack_env)
    done = regcred(stack_env, "rotate", onboarded)
    assert done.returncode == 69
    assert "not enabled" in done.stderr and "--rotation-lambda" in done.stderr and "--local" in done.stderr
    assert snapshot(sm, stack_env) == before


def test_rotate_dry_run_checks_everything_and_writes_nothing(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    assert regcred(stack_env, "rotate", onboarded, "--local").returncode == 0
    before = snapshot(sm, stack_env)
    plan = js(regcred(stack_env, "rotate", onboarded, "--dry-run", "--json"))
    assert plan.get("status") == "dry_run", plan.get("error")
    assert plan["current_pulls"] is True
    assert plan["move"][PREVIOUS]["to"] == plan["move"][CURRENT]["from"]
    assert plan["revoke"]["previous_revocation"] == "would_revoke"
    assert plan["revoke"]["previous_token"] == value(sm, onboarded, PREVIOUS).token_id
    assert snapshot(sm, stack_env) == before
    text = regcred(stack_env, "rotate", onboarded, "--dry-run")
    assert text.returncode == 0 and "would mint" in text.stdout and "nothing was minted" in text.stdout


def test_retire_dry_run_revokes_nothing(stack_env: dict[str, str], sm: Any, onboarded: str) -> None:
    assert regcred(stack_env, "rotate", onboarded, "--local").returncode == 0
    sm.tag_resource(
        SecretId=onboarded,
        Tags=[
            {"Key": "regcred:grace", "Value": "0"},
            {"Key": "regcred:promoted-at", "Value": "2020-01-01T00:00:00Z"},
        ],
    )
    before = snapshot(sm, stack_env)
    dry = js(regcred(stack_env, "retire", onboarded, "--dry-run", "--json"))
    assert dry["result"] == "would_retire" and dry["exit_code"] == 0
    assert snapshot(sm, stack_env) == before
    assert js(regcred(stack_env, "retire", onboarded, "--json"))["result"] == "retired"
    assert value(sm, onboarded, PREVIOUS).token_id not in snapshot(sm, stack_env)["tokens"]


def test_rotate_wait_follows_a_rotation_until_promoted(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    function = rotation_function(stack_env)
    name = f"batch/{uuid.uuid4().hex[:8]}"
    done = onboard(
        stack_env,
        name,
        admin_secret,
        stack_env["REGCRED_SEED_IMAGE"],
        *rotating(function),
    )
    assert done.returncode == 0, done.stderr
    waited = js(regcred(stack_env, "rotate", name, "--wait", "--timeout", "30", "--json"))
    assert waited.get("status") == "promoted", waited.get("error")
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"][waited["version_id"]] == [CURRENT]


def test_rotate_wait_reports_the_step_that_failed(
    stack_env: dict[str, str], sm: Any, onboarded: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The rotate function records a failed step in regcred:last-rotation-failure; --wait reads it."""
    from regcred.store import SecretStore

    monkeypatch.setattr("regcred.cli.rotation._POLL_S", 0.01)
    for key, val in stack_env.items():
        monkeypatch.setenv(key, val)
    version = "f" * 32

    def start(self: SecretStore, arn: str) -> str:
        self.sm.put_secret_value(
            SecretId=arn, ClientRequestToken=version, SecretString="{}", VersionStages=[PENDING]
        )
        self.sm.update_secret_version_stage(SecretId=arn, VersionStage=PENDING, RemoveFromVersionId=version)
        self.write_bookkeeping(
            arn, {"regcred:last-rotation-failure": f"{version} testSecret RotationTestFailed: cannot pull"}
        )
        return version

    monkeypatch.setattr(SecretStore, "start_rotation", start)
    real_describe = SecretStore.describe

    def enabled(self: SecretStore, secret_id: str) -> Any:
        return dataclasses.replace(real_describe(self, secret_id), rotation_enabled=True)

    monkeypatch.setattr(SecretStore, "describe", enabled)
    code = main(["rotate", onboarded, "--wait", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 1 and body["step"] == "testSecret" and "cannot pull" in body["error"]
    assert "AWSCURRENT is unchanged" in body["error"]


# -- onboard -----------------------------------------------------------------------------------------


def test_onboard_dry_run_validates_everything_and_writes_nothing(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    function = rotation_function(stack_env)
    name = f"batch/{uuid.uuid4().hex[:8]}"
    before = snapshot(sm, stack_env)
    plan = js(
        onboard(
            stack_env,
            name,
            admin_secret,
            stack_env["REGCRED_SEED_IMAGE"],
            *rotating(function),
            "--dry-run",
            "--json",
        )
    )
    assert plan["status"] == "dry_run" and any("would mint" in line for line in plan["plan"])
    assert any(line.startswith("checked: the admin credential works at") for line in plan["plan"])
    assert snapshot(sm, stack_env) == before
    # Each of these is refused before anything is minted, naming what to fix.
    bad = {
        ("--schedule", "rate(1 hours)"): (64, "every 4 hours"),
        ("--ttl", "5m"): (64, "--ttl"),
        ("--image", "ghcr.io/acme/app:1"): (69, "not on"),
    }
    for (flag, val), (code, needle) in bad.items():
        extra = ["--rotation-lambda", function, flag, val] if flag == "--schedule" else [flag, val]
        done = onboard(stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"], *extra)
        assert done.returncode == code and needle in done.stderr, (flag, done.stderr)
    no_permission = rotation_function(stack_env, permission=False)
    done = onboard(
        stack_env,
        name,
        admin_secret,
        stack_env["REGCRED_SEED_IMAGE"],
        *rotating(no_permission),
    )
    assert done.returncode == 69 and "add-permission" in done.stderr
    missing = no_permission.replace("rotate-", "gone-")
    done = onboard(
        stack_env,
        name,
        admin_secret,
        stack_env["REGCRED_SEED_IMAGE"],
        *rotating(missing),
    )
    assert done.returncode == 69 and "no such function" in done.stderr
    assert snapshot(sm, stack_env) == before


def test_a_rerun_says_how_to_finish_and_resume_enables_rotation(
    stack_env: dict[str, str], sm: Any, onboarded: str, admin_secret: str
) -> None:
    again = onboard(stack_env, onboarded, admin_secret, stack_env["REGCRED_SEED_IMAGE"])
    assert again.returncode == 69
    assert (
        "exists already" in again.stderr and "--resume" in again.stderr and "regcred rotate" in again.stderr
    )
    function = rotation_function(stack_env)
    dry = js(
        regcred(
            stack_env,
            "onboard",
            onboarded,
            "--resume",
            *rotating(function, "rate(7 days)"),
            "--dry-run",
            "--json",
        )
    )
    assert dry["status"] == "dry_run" and any("would enable rotation" in line for line in dry["plan"])
    assert not sm.describe_secret(SecretId=onboarded).get("RotationEnabled")
    done = js(
        regcred(
            stack_env,
            "onboard",
            onboarded,
            "--resume",
            *rotating(function, "rate(7 days)"),
            "--json",
        )
    )
    assert done["status"] == "resumed" and done["rotation_enabled"] is True
    meta = sm.describe_secret(SecretId=onboarded)
    assert meta["RotationEnabled"] and meta["RotationLambdaARN"] == function


def test_a_failure_after_the_secret_exists_names_the_resume_command(
    stack_env: dict[str, str], sm: Any, admin_secret: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from botocore.exceptions import ClientError

    from regcred.store import SecretStore

    for key, val in stack_env.items():
        monkeypatch.setenv(key, val)
    function = rotation_function(stack_env)

    def denied(self: SecretStore, *args: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "x"}}, "RotateSecret")

    monkeypatch.setattr(SecretStore, "enable_rotation", denied)
    name = f"batch/{uuid.uuid4().hex[:8]}"
    code = onboard_here(stack_env, name, admin_secret, *rotating(function), "--json")
    body = json.loads(capsys.readouterr().out)
    assert code == 69 and body["secret_created"] is True
    assert (
        body["resume"]
        == f"regcred onboard {name} --resume --rotation-lambda {function} --schedule 'rate(30 days)'"
    )
    assert "its credential pulls" in body["error"]
    assert value(sm, name, CURRENT).token_id in snapshot(sm, stack_env)["tokens"]


def test_ctrl_c_while_proving_a_minted_token_revokes_it_and_exits_130(
    stack_env: dict[str, str], sm: Any, admin_secret: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from regcred.rotation import Rotator

    for key, val in stack_env.items():
        monkeypatch.setenv(key, val)
    before = snapshot(sm, stack_env)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Rotator, "check", interrupted)
    name = f"batch/{uuid.uuid4().hex[:8]}"
    code = onboard_here(stack_env, name, admin_secret)
    err = capsys.readouterr().err
    assert code == 130
    assert (
        err.splitlines()[-1]
        == f"regcred: interrupted: the token minted for {name} was revoked; nothing was stored"
    )
    assert "{" not in err  # no library log line: the CLI speaks for itself
    after = snapshot(sm, stack_env)
    assert after["tokens"] == before["tokens"]  # the minted token was revoked
    assert name not in after["secrets"]


def test_ctrl_c_during_a_local_rotation_says_what_was_left(
    stack_env: dict[str, str], onboarded: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from regcred.rotation import Rotator, Step

    for key, val in stack_env.items():
        monkeypatch.setenv(key, val)
    real = Rotator.run

    def run(self: Rotator, secret_id: str, token: str, step: Any, **kwargs: Any) -> Any:
        if step is Step.TEST:
            raise KeyboardInterrupt
        return real(self, secret_id, token, step, **kwargs)

    monkeypatch.setattr(Rotator, "run", run)
    code = main(["rotate", onboarded, "--local", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 130, body
    assert "AWSPENDING" in body["left"] and "orphan" in body["left"]


def test_import_refuses_an_empty_token_and_never_echoes_one(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    name = f"batch/{uuid.uuid4().hex[:8]}"
    done = onboard(
        stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"], "--username", "alice", stdin="\n"
    )
    assert done.returncode == 64 and "empty" in done.stderr
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=name)


def test_import_prompts_without_echo_on_a_terminal(
    stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import getpass
    import sys

    prompts: list[str] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or "")
    for key, val in stack_env.items():
        monkeypatch.setenv(key, val)
    code = main(
        [
            "onboard",
            "batch/x",
            "--provider",
            "dockerhub",
            "--admin-secret",
            "a",
            "--username",
            "alice",
            "--image",
            "x:1",
        ]
    )
    assert code == 64 and prompts and "not echoed" in prompts[0]


def test_the_stack_is_the_default_registry_and_api(
    stack_env: dict[str, str], sm: Any, admin_secret: str
) -> None:
    name = f"batch/{uuid.uuid4().hex[:8]}"
    done = regcred(
        stack_env,
        "onboard",
        name,
        "--provider",
        "dockerhub",
        "--admin-secret",
        admin_secret,
        "--image",
        stack_env["REGCRED_SEED_IMAGE"],
    )
    assert done.returncode == 0, done.stderr
    assert "REGCRED_DOCKERHUB_REGISTRY" in done.stderr
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert tags["regcred:registry"] == stack_env["REGCRED_REGISTRY"]
    assert tags["regcred:api"] == stack_env["REGCRED_DOCKERHUB_API"]
    # Told to use Docker Hub itself while the stack's environment is sourced: refused, nothing sent.
    env = {**stack_env, "REGCRED_DOCKERHUB_REGISTRY": "", "REGCRED_DOCKERHUB_API": ""}
    refused = regcred(
        env,
        "onboard",
        f"{name}-2",
        "--provider",
        "dockerhub",
        "--admin-secret",
        admin_secret,
        "--image",
        "acme/app:1",
    )
    assert refused.returncode == 69 and "REGCRED_LOCAL_ONLY" in refused.stderr


def test_debug_shows_the_library_logs_on_stderr_and_never_a_secret(
    stack_env: dict[str, str], sm: Any, onboarded: str
) -> None:
    quiet = regcred(stack_env, "rotate", onboarded, "--local")
    loud = regcred(stack_env, "rotate", onboarded, "--local", "--debug")
    assert quiet.returncode == loud.returncode == 0
    assert "{" not in quiet.stderr  # without --debug the library says nothing
    logs = [json.loads(line) for line in loud.stderr.splitlines() if line.startswith("{")]
    assert any(entry.get("message") == "rotation finished" for entry in logs)
    assert not any(line.startswith("{") for line in loud.stdout.splitlines())  # stdout is the result alone
    for stage in (CURRENT, PREVIOUS):
        secret = value(sm, onboarded, stage).password
        assert secret not in loud.stdout and secret not in loud.stderr
