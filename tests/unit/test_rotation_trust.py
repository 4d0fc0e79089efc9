"""Rotation under hostile or broken input: copied values, foreign token ids, routing a value tries to steer,
an open registry, mints whose outcome is unknown, crashes at every point of createSecret, bad tags."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from regcred import config, labels
from regcred.errors import ConfigurationError, RotationRetryable, RotationTestFailed, SecretFormatError
from regcred.rotation import CURRENT, PENDING, PREVIOUS, RetireResult, Step, stage_holder
from regcred.secret import SecretValue, parse, render
from tests.rotation_doubles import (
    IMAGE,
    NAME,
    REGISTRY,
    Crash,
    MemoryVendor,
    Registry,
    current,
    make_rotator,
    onboard,
    rotate,
    stages_of,
)


def previous(sm: Any, arn: str) -> SecretValue:
    return parse(sm.get_secret_value(SecretId=arn, VersionStage=PREVIOUS)["SecretString"])


def put_current(sm: Any, arn: str, value: SecretValue) -> None:
    """Write AWSCURRENT directly, as whoever may write the secret's value could."""
    sm.put_secret_value(SecretId=arn, SecretString=render(value), VersionStages=[CURRENT])


# -- revoke only what regcred minted for this secret ------------------------------------------------


def test_a_copied_value_cannot_revoke_the_original_secrets_token(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a second managed secret whose value was copied from the first (same token id)
    original = current(sm, secret)
    copy = onboard(sm, vendor, "batch/copy")
    put_current(sm, copy, original)
    rotator = make_rotator(sm, vendor, registry)
    # When the copy is rotated twice (its AWSPREVIOUS, the copied token, is replaced and would be revoked)
    rotate(rotator, copy)
    rotate(rotator, copy)
    # Then the original's token was never revoked, nor even asked to be
    assert original.token_id in vendor.live()
    assert original.token_id not in vendor.revoke_calls
    assert current(sm, secret) == original


def test_retire_refuses_a_previous_token_minted_for_another_secret(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    clock = {"now": __import__("datetime").datetime.now(__import__("datetime").UTC)}
    rotator = make_rotator(sm, vendor, registry, now=lambda: clock["now"])
    foreign = vendor.issue(labels.label_for("team-b/secret", "onboard-x"), None)
    rotate(rotator, secret)
    # Given AWSPREVIOUS rewritten to name another secret's token
    prev_id = stage_holder(stages_of(sm, secret), PREVIOUS)
    assert prev_id is not None
    old = previous(sm, secret)
    hostile = SecretValue(old.username, old.password, REGISTRY, "dockerhub", foreign.token_id)
    sm.put_secret_value(SecretId=secret, SecretString=render(hostile), VersionStages=["hostile"])
    hostile_id = stage_holder(stages_of(sm, secret), "hostile")
    sm.update_secret_version_stage(
        SecretId=secret, VersionStage=PREVIOUS, MoveToVersionId=hostile_id, RemoveFromVersionId=prev_id
    )
    clock["now"] += __import__("datetime").timedelta(hours=2)
    # When retirement runs after the grace period
    assert rotator.retire_previous(secret) is RetireResult.REFUSED
    # Then the foreign token lives, and regcred did not mark anything retired
    assert foreign.token_id in vendor.live()
    tags = config.tags_to_dict(sm.describe_secret(SecretId=secret)["Tags"])
    assert config.RETIRED_TOKEN not in tags


@pytest.mark.parametrize(
    "token_id",
    ["../../v2/orgs/acme", "tok-%2e%2e", "tok-12345678/../x", "", "tok-" + "a" * 300, "tok-1\r\nX: y"],
)
def test_token_ids_not_in_the_vendor_format_are_never_revoked(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry, token_id: str
) -> None:
    # Given AWSCURRENT claiming a token id that is not in the vendor's format
    value = current(sm, secret)
    put_current(
        sm, secret, SecretValue(value.username, value.password, REGISTRY, "dockerhub", token_id or None)
    )
    rotator = make_rotator(sm, vendor, registry)
    # When two rotations replace it (the second would revoke the credential leaving AWSPREVIOUS)
    rotate(rotator, secret)
    rotate(rotator, secret)
    # Then no revocation was ever asked for that id
    assert token_id not in vendor.revoke_calls
    assert len(vendor.live()) <= 3


# -- routing comes from configuration, never from the value -----------------------------------------


def test_a_value_naming_another_registry_is_refused_before_anything_is_minted(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    value = current(sm, secret)
    put_current(
        sm,
        secret,
        SecretValue(value.username, value.password, "attacker.example", "dockerhub", value.token_id),
    )
    rotator = make_rotator(sm, vendor, registry)
    issued = vendor.issued
    with pytest.raises(ConfigurationError, match=r"attacker\.example") as caught:
        rotator.run(secret, str(uuid.uuid4()), Step.CREATE)
    assert "nothing was minted or sent" in str(caught.value)
    assert vendor.issued == issued
    assert registry.calls == 0


def test_the_pull_check_goes_to_the_configured_registry_only(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotate(make_rotator(sm, vendor, registry), secret)
    assert registry.routes, "the pull check ran"
    assert {r.registry.host for r in registry.routes} == {REGISTRY}
    assert {r.registry.scheme for r in registry.routes} == {"https"}


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (config.REGISTRY, "attacker.example"),
        (config.REGISTRY, "http://registry.example.test"),
        (config.API, "https://attacker.example"),
        (config.API, "http://hub.docker.com"),
        (config.REALM_HOSTS, "attacker.example"),
    ],
)
def test_a_tag_may_pick_among_allowed_hosts_but_never_add_one(
    sm: Any, vendor: MemoryVendor, registry: Registry, tag: str, value: str
) -> None:
    arn = onboard(sm, vendor, "batch/tagged", **{tag: value})
    issued = vendor.issued
    with pytest.raises(ConfigurationError) as caught:
        make_rotator(sm, vendor, registry).run(arn, str(uuid.uuid4()), Step.CREATE)
    assert tag in str(caught.value)
    assert vendor.issued == issued and registry.calls == 0


def test_a_value_naming_another_provider_is_refused(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    value = current(sm, secret)
    put_current(sm, secret, SecretValue(value.username, value.password, REGISTRY, "gitlab", value.token_id))
    issued = vendor.issued
    with pytest.raises(ConfigurationError, match="provider"):
        make_rotator(sm, vendor, registry).run(secret, str(uuid.uuid4()), Step.CREATE)
    assert vendor.issued == issued


# -- no orphan on any path ---------------------------------------------------------------------------


def test_an_abandoned_rotation_that_crashed_after_minting_is_cleaned_by_the_next_one(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a createSecret killed between the mint and PutSecretValue (a timeout or OOM kill), never retried
    real_put = sm.put_secret_value

    def killed(**kwargs: Any) -> Any:
        raise Crash

    sm.put_secret_value = killed
    rotator = make_rotator(sm, vendor, registry)
    with pytest.raises(Crash):
        rotator.run(secret, str(uuid.uuid4()), Step.CREATE)
    sm.put_secret_value = real_put
    assert len(vendor.live()) == 2  # the onboarded credential and the orphan
    # When Secrets Manager starts a new rotation with a new token
    rotate(rotator, secret)
    # Then the orphan is gone and only AWSCURRENT and AWSPREVIOUS live
    assert vendor.live() == {current(sm, secret).token_id, previous(sm, secret).token_id}


def test_a_failed_test_revokes_every_credential_its_rotation_minted(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a rotation whose createSecret crashed once after minting, then succeeded on retry
    real_put = sm.put_secret_value
    calls = {"n": 0}

    def crash_once(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Crash
        return real_put(**kwargs)

    sm.put_secret_value = crash_once
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    with pytest.raises(Crash):
        rotator.run(secret, token, Step.CREATE)
    rotator.run(secret, token, Step.CREATE)
    sm.put_secret_value = real_put
    minted = {k for k, t in vendor.tokens.items() if labels.rotation_of(t.label) == token}
    assert len(minted) == 2
    # When its testSecret fails for good
    registry.narrowed = True
    with pytest.raises(RotationTestFailed):
        rotator.run(secret, token, Step.TEST)
    # Then both are revoked and AWSCURRENT's credential is the only live one
    assert not (minted & vendor.live())
    assert vendor.live() == {current(sm, secret).token_id}


@pytest.mark.parametrize("crash_point", ["list_tokens", "issue", "put_secret_value", "describe_secret_after"])
def test_a_crash_anywhere_in_create_secret_leaves_no_orphan_once_the_rotation_finishes(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry, crash_point: str
) -> None:
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    original: dict[str, Any] = {}

    def arm(target: Any, name: str, after: bool = False) -> None:
        real = getattr(target, name)
        original[name] = (target, real)

        def dying(*args: Any, **kwargs: Any) -> Any:
            if after:
                real(*args, **kwargs)
            raise Crash

        setattr(target, name, dying)

    if crash_point == "list_tokens":
        arm(vendor, "list_tokens")
    elif crash_point == "issue":
        arm(vendor, "issue", after=True)
    elif crash_point == "put_secret_value":
        arm(sm, "put_secret_value")
    else:
        arm(sm, "put_secret_value", after=True)
    with pytest.raises(Crash):
        rotator.run(secret, token, Step.CREATE)
    for name, (target, real) in original.items():
        setattr(target, name, real)
    # Secrets Manager retries the step with the same token, then the rotation goes on
    for step in Step:
        rotator.run(secret, token, step)
    assert vendor.live() == {current(sm, secret).token_id, previous(sm, secret).token_id}


def test_a_mint_whose_outcome_is_unknown_is_not_sent_again_and_is_revoked_by_label(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    vendor.unknown_outcome = True
    issued = vendor.issued
    with pytest.raises(RotationRetryable, match="not repeated"):
        rotator.run(secret, token, Step.CREATE)
    # Exactly one mint request, and the credential it created was found by its label and revoked
    assert vendor.issued == issued + 1
    assert {labels.rotation_of(t.label) for t in vendor.tokens.values() if t.active} == {
        labels.rotation_of(next(iter(vendor.tokens.values())).label)
    }
    assert stage_holder(stages_of(sm, secret), PENDING) is None
    # The retried step mints once more and the rotation completes
    vendor.unknown_outcome = False
    for step in Step:
        rotator.run(secret, token, step)
    assert vendor.live() == {current(sm, secret).token_id, previous(sm, secret).token_id}


def test_an_open_registry_cannot_prove_a_credential(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    before = current(sm, secret)
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    rotator.run(secret, token, Step.CREATE)
    pending = parse(
        sm.get_secret_value(SecretId=secret, VersionId=token, VersionStage=PENDING)["SecretString"]
    )
    registry.open = True
    with pytest.raises(RotationTestFailed, match="without credentials"):
        rotator.run(secret, token, Step.TEST)
    assert pending.token_id not in vendor.live()
    assert current(sm, secret) == before
    assert stage_holder(stages_of(sm, secret), PENDING) is None


def test_the_test_step_asks_the_check_to_prove_the_credential_was_needed(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    seen: list[bool] = []
    real = registry.__call__

    def recording(
        route: Any, credential: Any, images: Any, *, deadline: Any = None, prove: bool = False
    ) -> Any:
        seen.append(prove)
        return real(route, credential, images, deadline=deadline, prove=prove)

    rotator = make_rotator(sm, vendor, registry)
    rotator._check = recording
    rotate(rotator, secret)
    assert seen == [True]


# -- bad input gets a clear error, never a traceback --------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "value", "fragment"),
    [
        (config.TTL, "0s", "between"),
        (config.TTL, "99999999999d", "duration"),
        (config.TTL, "\u0663\u0660d", "duration"),  # Arabic-Indic digits are not 30
        (config.GRACE, "91d", "between"),
        (config.GRACE, "-1h", "duration"),
        (config.GRACE, "2h", "shorter than"),  # with a ttl of 1h below
    ],
)
def test_durations_out_of_range_are_refused_with_the_tag_named(
    sm: Any, vendor: MemoryVendor, registry: Registry, tag: str, value: str, fragment: str
) -> None:
    extra = {config.TTL: "1h"} if fragment == "shorter than" else {}
    arn = onboard(sm, vendor, "batch/durations", **{tag: value, **extra})
    issued = vendor.issued
    with pytest.raises(ConfigurationError, match=fragment) as caught:
        make_rotator(sm, vendor, registry).run(arn, str(uuid.uuid4()), Step.CREATE)
    assert tag in str(caught.value)
    assert vendor.issued == issued


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"username": "u", "password": "p", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"username": "u", "password": "' + "p" * 70_000 + '"}',
        "NaN",
        '{"username": "u", "password": "p", "x": NaN}',
        "\udcff",
    ],
    ids=["deep-array", "deep-extra", "oversized", "nan", "nan-field", "surrogate"],
)
def test_hostile_secret_values_are_a_format_error(text: str) -> None:
    with pytest.raises(SecretFormatError):
        parse(text)


def test_a_broken_current_value_fails_create_with_a_clear_error(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    sm.put_secret_value(SecretId=secret, SecretString=json.dumps({"username": "u"}), VersionStages=[CURRENT])
    issued = vendor.issued
    with pytest.raises(SecretFormatError, match="password"):
        make_rotator(sm, vendor, registry).run(secret, str(uuid.uuid4()), Step.CREATE)
    assert vendor.issued == issued


def test_one_unparseable_image_in_the_tag_does_not_stop_the_rotation(
    sm: Any, vendor: MemoryVendor, registry: Registry
) -> None:
    arn = onboard(sm, vendor, "batch/bad-image", **{config.IMAGES: f"{IMAGE} Bad/IMAGE:: {REGISTRY}/x@md5:0"})
    outcome = make_rotator(sm, vendor, registry).run(arn, str(uuid.uuid4()), Step.CREATE)
    assert outcome.outcome.value == "created"
    assert len(outcome.skipped_images) == 2


def test_batch_client_is_optional_for_tagged_images(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # The SAM tier invokes the function without Batch permissions for tagged secrets: nothing asks Batch.
    rotator = make_rotator(sm, vendor, registry, batch=boto3.client("batch", region_name="eu-west-3"))
    assert rotator.probe_images(rotator.context(rotator.describe(secret))).images == (IMAGE,)
    assert NAME in secret
