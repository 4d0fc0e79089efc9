"""Every provider end to end on the local stack: its fake (the vendor API and the token realm of its own
real registry), moto_server and the real CLI. Each test runs for every provider the stack serves, through
what `.stack/env` exports for it (REGCRED_<PROVIDER>_API, _REGISTRY, _ADMIN_USER, _ADMIN_TOKEN, _SEED_IMAGE,
_ONBOARD_ARGS): onboard, a full rotation (or an import), the old credential pulling until it is retired and
refused after (a fresh login each time: registry bearer tokens outlive a revocation), a retry after a crash
at each step, two concurrent rotations, the vendor's documented errors, and the trust boundary."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from regcred import config, labels
from regcred.cli import main
from regcred.errors import ConfigurationError, RegcredError
from regcred.rotation import CURRENT, PENDING, PREVIOUS, Rotator, Step, stage_holder
from regcred.routing import Deployment
from regcred.secret import SecretValue, parse, render
from tests.integration.conftest import cli_env
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack

MINTING = ("dockerhub", "gitlab", "harbor", "artifactory")
IMPORTING = ("ghcr", "static")
# The create call of each vendor (its fake takes injected faults: devstack/fakes/faults.py).
MINT_PATH = {
    "dockerhub": r"/v2/(orgs/[^/]+/)?access-tokens$",
    "gitlab": r"/api/v4/(projects|groups)/[^/]+/(deploy_tokens|access_tokens)$",
    "harbor": r"/api/v2\.0/robots$",
    "artifactory": r"/access/api/v1/tokens$",
}


class Crash(Exception):
    """A process that dies in the middle of a step (Lambda timeout, out of memory)."""


def var(env: dict[str, str], provider: str, key: str) -> str:
    return env[f"REGCRED_{provider.upper()}_{key}"]


def regcred(
    env: dict[str, str], *args: str, stdin: str | None = None, real: bool = False
) -> subprocess.CompletedProcess[str]:
    """The CLI: in this process (the same `main` the console script runs, without its start-up time), or with
    ``real`` the installed `regcred` command in a process of its own."""
    if real:
        return subprocess.run(
            ["regcred", *args], env=cli_env(env), capture_output=True, text=True, input=stdin, timeout=120,
            check=False,
        )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = saved
    return subprocess.CompletedProcess(["regcred", *args], code, out.getvalue(), err.getvalue())


def admin_secret(sm: Any, env: dict[str, str], provider: str, **tags: str) -> str:
    """A secret with the provider's admin identity from the stack, bound to every secret unless ``tags``."""
    name = f"admin/{provider}-{uuid.uuid4().hex[:8]}"
    binding = tags or {config.ADMIN_MARK: "true", config.ADMIN_FOR: "*"}
    sm.create_secret(
        Name=name,
        Tags=[{"Key": k, "Value": v} for k, v in binding.items()],
        SecretString=json.dumps(
            {"username": var(env, provider, "ADMIN_USER"), "password": var(env, provider, "ADMIN_TOKEN")}
        ),
    )
    return name


def onboard(
    env: dict[str, str], sm: Any, provider: str, *extra: str, token: str | None = None
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """`regcred onboard` with exactly the stack's REGCRED_<PROVIDER>_ONBOARD_ARGS."""
    name = f"batch/{provider}-{uuid.uuid4().hex[:8]}"
    args = ["onboard", name, "--provider", provider, "--image", var(env, provider, "SEED_IMAGE")]
    stdin = None
    args += shlex.split(var(env, provider, "ONBOARD_ARGS"))
    if provider in IMPORTING:
        # A credential of its own: retirement may revoke it (GHCR), so tests never share one.
        user, fresh = fresh_credential(env, provider)
        stdin = (token or fresh) + "\n"
        args += ["--username", user]
    else:
        args += ["--admin-secret", admin_secret(sm, env, provider)]
    return name, regcred(env, *args, *extra, stdin=stdin)


def value(sm: Any, secret: str, stage: str) -> SecretValue:
    return parse(sm.get_secret_value(SecretId=secret, VersionStage=stage)["SecretString"])


def pulls(env: dict[str, str], provider: str, credential: SecretValue) -> int:
    """A fresh /v2/ login and manifest HEAD of the provider's seed image at its real registry."""
    repository, _, tag = var(env, provider, "SEED_IMAGE").partition(":")
    return manifest_status(
        var(env, provider, "REGISTRY"), credential.username, credential.password, repository, tag
    )


def secrets_of(env: dict[str, str], provider: str) -> set[str]:
    """Every credential of the provider the test could leak: the admin token and everything minted."""
    found = {var(env, provider, "ADMIN_TOKEN")}
    minted = env.get(f"REGCRED_{provider.upper()}_MINTED")
    if minted and Path(minted).exists():
        found |= {json.loads(line)["token"] for line in Path(minted).read_text().splitlines() if line.strip()}
    return found


def rotator(sm: Any, env: dict[str, str]) -> Rotator:
    return Rotator(sm, deployment=Deployment.from_env(env), require_rotation_enabled=False)


def live_for(sm: Any, env: dict[str, str], secret: str) -> set[str]:
    """Token ids the vendor lists as live and labelled for ``secret``."""
    r = rotator(sm, env)
    ctx = r.context(r.describe(secret))
    return {t.token_id for t in r.build_provider(ctx).list_tokens() if labels.belongs_to(t.label, secret)}


@pytest.fixture(params=MINTING)
def minting(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=IMPORTING)
def importing(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def onboarded(stack_env: dict[str, str], sm: Any, minting: str) -> str:
    name, done = onboard(stack_env, sm, minting)
    assert done.returncode == 0, done.stdout + done.stderr
    return name


# -- minting providers ----------------------------------------------------------------------------------


def test_rotation_promotes_a_new_credential_and_retires_the_old_one(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str
) -> None:
    old = value(sm, onboarded, CURRENT)
    assert old.provider == minting and old.token_id and pulls(stack_env, minting, old) == 200
    done = regcred(stack_env, "rotate", onboarded, "--local", real=True)
    assert done.returncode == 0, done.stdout + done.stderr
    stages = sm.describe_secret(SecretId=onboarded)["VersionIdsToStages"]
    assert stage_holder(stages, PENDING) is None
    new, previous = value(sm, onboarded, CURRENT), value(sm, onboarded, PREVIOUS)
    assert new.token_id != old.token_id and previous.token_id == old.token_id
    assert pulls(stack_env, minting, new) == 200
    assert pulls(stack_env, minting, previous) == 200  # the old one pulls through its grace period
    assert regcred(stack_env, "retire", onboarded).stdout.startswith("in_grace")
    sm.tag_resource(SecretId=onboarded, Tags=[{"Key": config.GRACE, "Value": "0s"}])
    retire = regcred(stack_env, "retire", onboarded, real=True)
    assert retire.stdout.startswith("retired: "), retire.stdout + retire.stderr
    assert pulls(stack_env, minting, previous) == 401
    assert pulls(stack_env, minting, new) == 200
    assert live_for(sm, stack_env, onboarded) == {new.token_id}
    # regcred's own check calls the retired credential rejected, not narrow, on every vendor (Harbor's realm
    # serves a robot that fails to authenticate as anonymous).
    check = regcred(stack_env, "check", onboarded, "--stage", "AWSPREVIOUS", "--json")
    assert check.returncode == 1
    assert [i["status"] for i in json.loads(check.stdout)["images"]] == ["credentials_rejected"]
    everything = done.stdout + done.stderr + retire.stdout + retire.stderr
    assert not [s for s in secrets_of(stack_env, minting) if s in everything]


def _run_all(r: Rotator, secret: str, token: str, *, twice: bool = False) -> None:
    for step in Step:
        r.run(secret, token, step)
        if twice:
            r.run(secret, token, step)  # Secrets Manager retries a step whose answer it did not get


def test_a_crash_inside_a_step_is_recovered_by_its_retry(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str
) -> None:
    # One rotation per place a process can die: right after each write a rotation makes.
    for where in ("put_pending", "remove_stage", "promote", "write_bookkeeping"):
        before = value(sm, onboarded, CURRENT)
        r = rotator(sm, stack_env)
        real: Callable[..., Any] = getattr(r.store, where)
        state = {"crashed": False}

        def dying(
            *args: Any, real: Callable[..., Any] = real, state: dict[str, bool] = state, **kw: Any
        ) -> Any:
            result = real(*args, **kw)  # the write happened; the process dies before it can go on
            if not state["crashed"]:
                state["crashed"] = True
                raise Crash
            return result

        setattr(r.store, where, dying)
        token = str(uuid.uuid4())
        for step in Step:
            try:
                r.run(onboarded, token, step)
            except Crash:
                r.run(onboarded, token, step)  # the retry of the same step
            r.run(onboarded, token, step)  # and one more, as a duplicate delivery
        assert state["crashed"], f"{where} was never reached"
        new = value(sm, onboarded, CURRENT)
        assert new.token_id != before.token_id, where
        assert value(sm, onboarded, PREVIOUS).token_id == before.token_id, where
        assert pulls(stack_env, minting, new) == 200, where
        # At rest, only AWSCURRENT's and AWSPREVIOUS's credentials are alive: nothing minted was left behind.
        assert live_for(sm, stack_env, onboarded) == {new.token_id, before.token_id}, where


def test_two_concurrent_runs_of_a_rotation_leave_one_credential(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str
) -> None:
    before = value(sm, onboarded, CURRENT)
    token = str(uuid.uuid4())
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=30)

    def racer() -> None:
        r = rotator(sm, stack_env)
        barrier.wait()
        try:
            _run_all(r, onboarded, token)
        except Exception as exc:  # a racer may lose a stage move to the other one: collected below
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not [e for e in errors if isinstance(e, Crash | AssertionError)], errors
    _run_all(rotator(sm, stack_env), onboarded, token)  # whatever a racer left, a retry finishes
    new = value(sm, onboarded, CURRENT)
    assert new.token_id != before.token_id and pulls(stack_env, minting, new) == 200
    assert live_for(sm, stack_env, onboarded) == {new.token_id, before.token_id}


VENDOR_ERRORS = (
    (401, "rejected the admin credential"),
    (403, "lacks a permission|Artifactory refused the token"),
    (404, "not found"),
    (409, "conflict"),
    (429, "retry after 7 s"),
    (500, "vendor-side error"),
    (503, "vendor-side error"),
)


def test_vendor_errors_become_clear_messages_without_secrets(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str
) -> None:
    api = var(stack_env, minting, "API")
    before = value(sm, onboarded, CURRENT)
    for status, words in VENDOR_ERRORS:  # each error its vendor documents, on the create call
        fault: dict[str, Any] = {"method": "POST", "path": MINT_PATH[minting], "status": status, "times": 5}
        if status == 429:
            fault["headers"] = {"Retry-After": "7"}
        assert requests.post(f"{api}/_fake/faults", json=fault, timeout=5).status_code == 201
        try:
            done = regcred(stack_env, "rotate", onboarded, "--local")
        finally:
            requests.delete(f"{api}/_fake/faults", timeout=5)
        output = done.stdout + done.stderr
        assert done.returncode != 0, status
        assert f"HTTP {status}" in output and re.search(words, output), output
        assert not [s for s in secrets_of(stack_env, minting) if s in output]
        assert value(sm, onboarded, CURRENT) == before and pulls(stack_env, minting, before) == 200
    # The next rotation, with the vendor well again, works.
    assert regcred(stack_env, "rotate", onboarded, "--local").returncode == 0


def test_a_mint_whose_answer_is_lost_is_never_sent_again_and_is_revoked(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str
) -> None:
    api = var(stack_env, minting, "API")
    fault = {"method": "POST", "path": MINT_PATH[minting], "drop": True, "after": True, "times": 1}
    assert requests.post(f"{api}/_fake/faults", json=fault, timeout=5).status_code == 201
    r = rotator(sm, stack_env)
    token = str(uuid.uuid4())
    try:
        with pytest.raises(RegcredError, match="not repeated"):
            r.run(onboarded, token, Step.CREATE)
        hits = requests.get(f"{api}/_fake/faults", timeout=5).json()["faults"][0]["hits"]
    finally:
        requests.delete(f"{api}/_fake/faults", timeout=5)
    assert hits == 1
    before = value(sm, onboarded, CURRENT)
    assert live_for(sm, stack_env, onboarded) == {before.token_id}  # the lost one was found and revoked
    _run_all(r, onboarded, token)
    assert pulls(stack_env, minting, value(sm, onboarded, CURRENT)) == 200


# -- the trust boundary, for every minting provider -----------------------------------------------------


@pytest.mark.parametrize(
    "tags",
    [
        {config.ADMIN_MARK: "false", config.ADMIN_FOR: "*"},
        {config.ADMIN_MARK: "true", config.ADMIN_FOR: "team-b/*"},
    ],
    ids=["unmarked", "serves-others"],
)
def test_an_admin_secret_that_may_not_serve_the_secret_mints_nothing(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str, tags: dict[str, str]
) -> None:
    other = admin_secret(sm, stack_env, minting, **tags)
    sm.tag_resource(SecretId=onboarded, Tags=[{"Key": config.ADMIN_SECRET, "Value": other}])
    before = live_for_admin(sm, stack_env, minting)
    with pytest.raises(ConfigurationError, match="may not be used for"):
        rotator(sm, stack_env).run(onboarded, str(uuid.uuid4()), Step.CREATE)
    assert live_for_admin(sm, stack_env, minting) == before


def live_for_admin(sm: Any, env: dict[str, str], provider: str) -> int:
    """How many POST requests (mints) the provider's fake has logged."""
    log = env.get(f"REGCRED_{provider.upper()}_LOG")
    assert log, f"the stack exports no request log for {provider}"
    return sum(1 for line in Path(log).read_text().splitlines() if json.loads(line).get("method") == "POST")


def test_a_copied_value_cannot_revoke_the_originals_credential(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str
) -> None:
    original = value(sm, onboarded, CURRENT)
    copy, done = onboard(stack_env, sm, minting)
    assert done.returncode == 0, done.stderr
    sm.put_secret_value(SecretId=copy, SecretString=render(original), VersionStages=[CURRENT])
    for _ in range(2):  # the copied credential leaves AWSPREVIOUS: a naive rotation would revoke it
        _run_all(rotator(sm, stack_env), copy, str(uuid.uuid4()))
    assert pulls(stack_env, minting, original) == 200
    assert value(sm, onboarded, CURRENT) == original


def test_a_value_that_names_another_registry_is_refused_before_minting(
    stack_env: dict[str, str], sm: Any, minting: str, onboarded: str
) -> None:
    current = value(sm, onboarded, CURRENT)
    hostile = SecretValue(current.username, current.password, "evil.example:443", minting, current.token_id)
    sm.put_secret_value(SecretId=onboarded, SecretString=render(hostile), VersionStages=[CURRENT])
    posts = live_for_admin(sm, stack_env, minting)
    with pytest.raises(ConfigurationError, match=r"names registry 'evil\.example:443'"):
        rotator(sm, stack_env).run(onboarded, str(uuid.uuid4()), Step.CREATE)
    assert live_for_admin(sm, stack_env, minting) == posts


# -- providers regcred cannot mint: import --------------------------------------------------------------


def fresh_credential(env: dict[str, str], provider: str) -> tuple[str, str]:
    done = subprocess.run(
        [
            ".venv/bin/python",
            "-m",
            "devstack.stack",
            "credential",
            provider,
            "--dir",
            env["REGCRED_STACK_DIR"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    made = json.loads(done.stdout)
    return made["username"], made["password"]


def test_import_promotes_a_new_token_and_retirement_follows_the_provider(
    stack_env: dict[str, str], sm: Any, importing: str
) -> None:
    name, done = onboard(stack_env, sm, importing)
    assert done.returncode == 0, done.stdout + done.stderr
    old = value(sm, name, CURRENT)
    assert old.token_id and old.token_id.startswith("sha256-") and pulls(stack_env, importing, old) == 200
    user, token = fresh_credential(stack_env, importing)
    imported = regcred(
        stack_env, "import", name, "--username", user, "--output", "json", stdin=token + "\n", real=True
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    report = json.loads(imported.stdout)
    assert report["result"] == "imported" and token not in imported.stdout + imported.stderr
    new, previous = value(sm, name, CURRENT), value(sm, name, PREVIOUS)
    assert (new.username, new.password) == (user, token) and previous.password == old.password
    assert stage_holder(sm.describe_secret(SecretId=name)["VersionIdsToStages"], PENDING) is None
    assert pulls(stack_env, importing, new) == 200 and pulls(stack_env, importing, previous) == 200
    sm.tag_resource(SecretId=name, Tags=[{"Key": config.GRACE, "Value": "0s"}])
    retire = regcred(stack_env, "retire", name)
    assert retire.returncode == 0, retire.stdout + retire.stderr
    if importing == "ghcr":  # onboarded with --revoke-on-retire true: GitHub revokes the old PAT
        assert retire.stdout.startswith("retired: ")
        assert pulls(stack_env, importing, previous) == 401
    else:  # nothing to revoke with: recorded as retired, and the operator is told to revoke it
        assert retire.stdout.startswith("retired_not_revoked: ")
        assert "yourself" in retire.stdout
    assert pulls(stack_env, importing, new) == 200
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert tags[config.RETIRED_TOKEN] == previous.token_id
    assert regcred(stack_env, "retire", name).stdout.startswith("already_retired")


def test_rotate_secret_on_an_import_provider_fails_in_one_line_naming_import(
    stack_env: dict[str, str], sm: Any, importing: str
) -> None:
    name, done = onboard(stack_env, sm, importing)
    assert done.returncode == 0, done.stderr
    with pytest.raises(ConfigurationError) as caught:
        rotator(sm, stack_env).run(name, str(uuid.uuid4()), Step.CREATE)
    assert f"run `regcred import {name}`" in str(caught.value) and "\n" not in str(caught.value)
    rotate = regcred(stack_env, "rotate", name, "--local")
    assert rotate.returncode != 0 and f"regcred import {name}" in rotate.stderr


def test_an_imported_token_that_cannot_pull_is_never_promoted(
    stack_env: dict[str, str], sm: Any, importing: str
) -> None:
    name, done = onboard(stack_env, sm, importing)
    assert done.returncode == 0, done.stderr
    before = value(sm, name, CURRENT)
    bad = "not-a-real-token-" + uuid.uuid4().hex
    imported = regcred(stack_env, "import", name, "--username", before.username, stdin=bad + "\n")
    assert imported.returncode != 0
    assert bad not in imported.stdout + imported.stderr
    assert value(sm, name, CURRENT) == before
    assert stage_holder(sm.describe_secret(SecretId=name)["VersionIdsToStages"], PENDING) is None


def test_a_crashed_import_is_superseded_by_the_next_one(
    stack_env: dict[str, str], sm: Any, importing: str
) -> None:
    from regcred.importing import Importer

    name, done = onboard(stack_env, sm, importing)
    assert done.returncode == 0, done.stderr
    before = value(sm, name, CURRENT)
    r = rotator(sm, stack_env)
    real = r.store.put_pending

    def dying(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise Crash

    r.store.put_pending = dying  # type: ignore[method-assign]
    user, token = fresh_credential(stack_env, importing)
    with pytest.raises(Crash):
        Importer(r).run(name, username=user, password=token)
    assert value(sm, name, CURRENT) == before  # AWSCURRENT untouched; a stray AWSPENDING is left
    r.store.put_pending = real  # type: ignore[method-assign]
    Importer(r).run(name, username=user, password=token)
    assert value(sm, name, CURRENT).password == token
    assert stage_holder(sm.describe_secret(SecretId=name)["VersionIdsToStages"], PENDING) is None


def test_import_refuses_a_provider_that_mints(stack_env: dict[str, str], sm: Any) -> None:
    name, done = onboard(stack_env, sm, "dockerhub")
    assert done.returncode == 0, done.stderr
    imported = regcred(stack_env, "import", name, "--username", "x", stdin="some-token-value\n")
    assert imported.returncode == 69
    assert f"run `regcred rotate {name}`" in imported.stderr
