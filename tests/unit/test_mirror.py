"""The ECR pull-through cache mirror (`regcred.mirror`) against moto's Secrets Manager: what is written, every
refusal (nothing written), idempotency, hostile mirror values, and its place in finishSecret, its retry,
retirement and import."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from regcred import config
from regcred.errors import ConfigurationError
from regcred.mirror import (
    MirrorError,
    MirrorStale,
    MirrorStatus,
    check_binding,
    mirror_problem,
    mirror_string,
    sync_mirror,
)
from regcred.onboarding_checks import check_values
from regcred.rotation import CURRENT, PENDING, PREVIOUS, RetireResult, Step, stage_holder
from regcred.secret import SecretValue, parse
from regcred.store import SecretStore
from tests import leak_guard
from tests.rotation_doubles import (
    NAME,
    MemoryVendor,
    Registry,
    current,
    make_rotator,
    onboard,
    rotate,
    stages_of,
)

MIRROR = "ecr-pullthroughcache/docker-hub"


def make_mirror(sm: Any, name: str = MIRROR, *, bound_to: str | None = NAME, value: str | None = None) -> str:
    tags = [{"Key": config.MIRROR_OF, "Value": bound_to}] if bound_to is not None else []
    request: dict[str, Any] = {"Name": name, "Tags": tags}
    if value is not None:
        request["SecretString"] = value
    arn: str = sm.create_secret(**request)["ARN"]
    return arn


def mirrored(sm: Any, name: str = MIRROR) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    return body


def versions(sm: Any, name: str = MIRROR) -> int:
    return len(sm.list_secret_version_ids(SecretId=name)["Versions"])


def tag_mirror(sm: Any, secret: str, mirror: str = MIRROR) -> None:
    sm.tag_resource(SecretId=secret, Tags=[{"Key": config.ECR_MIRROR, "Value": mirror}])


def store_state(sm: Any, secret: str) -> tuple[SecretStore, Any]:
    store = SecretStore(sm)
    return store, store.describe(secret)


@pytest.fixture
def bound(sm: Any, secret: str) -> str:
    """The managed secret tagged with a mirror that exists and is bound to it (with an empty-ish value)."""
    make_mirror(sm, value='{"username":"nobody","accessToken":"placeholder-000"}')
    tag_mirror(sm, secret)
    return secret


# -- what is written, and only when it differs ----------------------------------------------------------


def test_the_mirror_gets_awscurrent_as_username_and_access_token_once(sm: Any, bound: str) -> None:
    store, state = store_state(sm, bound)
    value = current(sm, bound)
    result = sync_mirror(store, state, value)
    assert result.status is MirrorStatus.WRITTEN and result.mirror == MIRROR and result.version_id
    assert mirrored(sm) == {"username": value.username, "accessToken": value.password}
    before = versions(sm)
    # Idempotent: no new version when the mirror holds it already
    again = sync_mirror(store, state, value)
    assert again.status is MirrorStatus.IN_SYNC and again.version_id is None
    assert versions(sm) == before


def test_extra_keys_in_the_mirror_do_not_cause_a_write(sm: Any, bound: str) -> None:
    value = current(sm, bound)
    sm.put_secret_value(
        SecretId=MIRROR,
        SecretString=json.dumps({"username": value.username, "accessToken": value.password, "note": "x"}),
    )
    store, state = store_state(sm, bound)
    before = versions(sm)
    assert sync_mirror(store, state, value).status is MirrorStatus.IN_SYNC
    assert versions(sm) == before


def test_a_dry_run_writes_nothing(sm: Any, bound: str) -> None:
    store, state = store_state(sm, bound)
    before = mirrored(sm)
    assert sync_mirror(store, state, current(sm, bound), dry_run=True).status is MirrorStatus.WOULD_WRITE
    assert mirrored(sm) == before


def test_a_secret_without_the_tag_has_nothing_to_do(sm: Any, secret: str) -> None:
    store, state = store_state(sm, secret)
    result = sync_mirror(store, state, current(sm, secret))
    assert result.status is MirrorStatus.NOT_CONFIGURED and result.holds_current


def test_mirror_string_holds_exactly_the_two_keys_ecr_reads() -> None:
    text = mirror_string(SecretValue(username="u", password="p-123456", registry="r.test", token_id="t"))
    assert json.loads(text) == {"username": "u", "accessToken": "p-123456"}


# -- refusals: ConfigurationError naming what to set, nothing written ----------------------------------


@pytest.mark.parametrize(
    "mirror", ["other/docker-hub", "arn:aws:secretsmanager:us-east-1:1:secret:ecr-pullthroughcache/x", "x y"]
)
def test_a_mirror_outside_the_prefix_is_a_configuration_error(sm: Any, secret: str, mirror: str) -> None:
    make_mirror(sm, "other/docker-hub")
    tag_mirror(sm, secret, mirror)
    store, state = store_state(sm, secret)
    with pytest.raises(ConfigurationError, match="ecr-pullthroughcache/"):
        sync_mirror(store, state, current(sm, secret))
    assert versions(sm, "other/docker-hub") == 0


@pytest.mark.parametrize("bound_to", [None, "batch/another", ""])
def test_a_mirror_not_bound_to_the_secret_is_refused_with_the_tag_to_set(
    sm: Any, secret: str, bound_to: str | None
) -> None:
    make_mirror(sm, bound_to=bound_to, value='{"username":"keep","accessToken":"keep-me-000"}')
    tag_mirror(sm, secret)
    store, state = store_state(sm, secret)
    with pytest.raises(ConfigurationError) as caught:
        sync_mirror(store, state, current(sm, secret))
    assert f"{config.MIRROR_OF}={NAME}" in str(caught.value) and "nothing was written" in str(caught.value)
    assert mirrored(sm) == {"username": "keep", "accessToken": "keep-me-000"}


def test_a_mirror_that_is_the_secret_itself_is_refused(sm: Any, vendor: MemoryVendor) -> None:
    name = "ecr-pullthroughcache/self"
    arn = onboard(sm, vendor, name, **{config.ECR_MIRROR: name})
    sm.tag_resource(SecretId=arn, Tags=[{"Key": config.MIRROR_OF, "Value": name}])
    before = sm.get_secret_value(SecretId=arn)["SecretString"]
    store, state = store_state(sm, arn)
    with pytest.raises(ConfigurationError, match="names the secret itself"):
        sync_mirror(store, state, current(sm, arn))
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == before


@pytest.mark.parametrize("mark", [config.MANAGED, config.ADMIN_MARK])
def test_a_managed_or_admin_secret_is_never_a_mirror(sm: Any, secret: str, mark: str) -> None:
    make_mirror(sm, value='{"username":"keep","accessToken":"keep-me-000"}')
    sm.tag_resource(SecretId=MIRROR, Tags=[{"Key": mark, "Value": "true"}])
    tag_mirror(sm, secret)
    store, state = store_state(sm, secret)
    with pytest.raises(ConfigurationError, match="must not replace"):
        sync_mirror(store, state, current(sm, secret))
    assert mirrored(sm)["username"] == "keep"


def test_a_missing_mirror_is_refused_and_names_the_command_that_creates_it(sm: Any, secret: str) -> None:
    tag_mirror(sm, secret)
    store, state = store_state(sm, secret)
    with pytest.raises(ConfigurationError) as caught:
        sync_mirror(store, state, current(sm, secret))
    assert "does not exist" in str(caught.value) and f"--ecr-mirror {MIRROR}" in str(caught.value)
    assert check_binding(store, MIRROR, NAME) is None


def test_a_mirror_scheduled_for_deletion_is_refused(sm: Any, bound: str) -> None:
    sm.delete_secret(SecretId=MIRROR, RecoveryWindowInDays=7)
    store, state = store_state(sm, bound)
    with pytest.raises(ConfigurationError, match="scheduled for deletion"):
        sync_mirror(store, state, current(sm, bound))


class DenyingClient:
    """A Secrets Manager client that answers AccessDeniedException for every call on the mirror."""

    def __init__(self, sm: Any, operations: tuple[str, ...]) -> None:
        self.sm = sm
        self.operations = operations

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sm, name)
        if name not in self.operations:
            return method

        def call(**kwargs: Any) -> Any:
            if "ecr-pullthroughcache" in str(kwargs.get("SecretId", "")):
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, name)
            return method(**kwargs)

        return call


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        ("describe_secret", ConfigurationError),
        ("get_secret_value", MirrorError),
        ("put_secret_value", MirrorError),
    ],
)
def test_access_denied_says_which_tag_the_functions_need(
    sm: Any, bound: str, operation: str, error: type[Exception]
) -> None:
    store = SecretStore(DenyingClient(sm, (operation,)))
    with pytest.raises(error) as caught:
        sync_mirror(store, store.describe(bound), current(sm, bound))
    assert config.MIRROR_OF in str(caught.value)
    if error is MirrorError:
        assert "AccessDeniedException" in str(caught.value)


def test_the_onboard_flag_is_checked_before_any_aws_call() -> None:
    values = {"rotation_lambda": None, "schedule": None, "grace": "24h", "ttl": "90d", "name": NAME}
    check_values(**values, ecr_mirror=MIRROR)
    for bad in ("docker-hub", "ecr-pullthroughcache/", "ecr-pullthroughcache/a b", "x" * 600):
        with pytest.raises(ConfigurationError, match="--ecr-mirror"):
            check_values(**values, ecr_mirror=bad)
    with pytest.raises(ConfigurationError, match="another secret"):
        check_values(**{**values, "name": MIRROR}, ecr_mirror=MIRROR)


# -- hostile mirror values: replaced, never quoted -------------------------------------------------------

OLD_TOKEN = "old-token-in-the-mirror-" + "9" * 16

# (value, whether it is unreadable as a pull-through cache credential)
HOSTILE = {
    "not json": ("username=u accessToken=" + OLD_TOKEN, True),
    "a list": (json.dumps([OLD_TOKEN]), True),
    "deep": ("[" * 5000 + "]" * 5000, True),
    # Over Secrets Manager's 64 KiB (an emulator may store it): refused before parsing
    "huge": (json.dumps({"username": "u", "accessToken": OLD_TOKEN, "pad": "x" * 70000}), True),
    "a number token": (json.dumps({"username": "u", "accessToken": 12345678}), True),
    "a null user": (json.dumps({"username": None, "accessToken": OLD_TOKEN}), True),
    "constants": ('{"username": NaN, "accessToken": "' + OLD_TOKEN + '"}', True),
    "a long token": (json.dumps({"username": "u", "accessToken": "t" * 5000}), True),
    "another token": (json.dumps({"username": "u", "accessToken": OLD_TOKEN, "pad": "x" * 60000}), False),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_mirror_value_is_replaced_and_never_shown(
    sm: Any, bound: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    text, unreadable = HOSTILE[case]
    leak_guard.watch(OLD_TOKEN)
    sm.put_secret_value(SecretId=MIRROR, SecretString=text)
    store, state = store_state(sm, bound)
    value = current(sm, bound)
    with caplog.at_level(logging.DEBUG):
        result = sync_mirror(store, state, value)
    assert result.status is MirrorStatus.WRITTEN
    assert result.replaced_unreadable is unreadable
    assert mirrored(sm) == {"username": value.username, "accessToken": value.password}
    assert OLD_TOKEN not in caplog.text and value.password not in caplog.text


def test_a_binary_or_empty_mirror_is_written(sm: Any, secret: str) -> None:
    sm.create_secret(Name=MIRROR, SecretBinary=b"\x00\x01", Tags=[{"Key": config.MIRROR_OF, "Value": NAME}])
    empty = "ecr-pullthroughcache/empty"
    make_mirror(sm, empty)  # created without a value: no AWSCURRENT to compare
    store = SecretStore(sm)
    for mirror in (MIRROR, empty):
        tag_mirror(sm, secret, mirror)
        value = current(sm, secret)
        assert sync_mirror(store, store.describe(secret), value).status is MirrorStatus.WRITTEN
        assert mirrored(sm, mirror)["accessToken"] == value.password


# -- rotation: finishSecret, its retry ------------------------------------------------------------------


def test_a_rotation_writes_the_new_credential_to_the_mirror(
    sm: Any, bound: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotate(make_rotator(sm, vendor, registry), bound)
    new = current(sm, bound)
    assert mirrored(sm) == {"username": new.username, "accessToken": new.password}


def test_a_missing_mirror_fails_finish_after_the_promotion_and_the_retry_repairs_it(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    tag_mirror(sm, secret)
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    for step in (Step.CREATE, Step.SET, Step.TEST):
        rotator.run(secret, token, step)
    # When finishSecret cannot write the mirror
    with pytest.raises(MirrorStale) as caught:
        rotator.run(secret, token, Step.FINISH)
    # Then the rotation is promoted, and the error says so and what to fix
    stages = stages_of(sm, secret)
    assert stage_holder(stages, CURRENT) == token and stage_holder(stages, PENDING) is None
    assert "is AWSCURRENT" in str(caught.value) and "does not exist" in str(caught.value)
    assert "--resume" in str(caught.value)
    # And once the mirror exists, Secrets Manager's retry of finishSecret writes it
    make_mirror(sm)
    assert str(rotator.run(secret, token, Step.FINISH)) == "already_current"
    assert mirrored(sm)["accessToken"] == current(sm, secret).password
    assert len(vendor.live()) == 2


def test_a_crash_between_the_promotion_and_the_mirror_write_is_repaired_by_the_retry(
    sm: Any, bound: str, vendor: MemoryVendor, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotator = make_rotator(sm, vendor, registry)
    old = mirrored(sm)

    def lost(*args: Any, **kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutSecretValue"
        )

    monkeypatch.setattr(SecretStore, "put_current_string", lost)
    token = str(uuid.uuid4())
    for step in (Step.CREATE, Step.SET, Step.TEST):
        rotator.run(secret_id=bound, token=token, step=step)
    with pytest.raises(MirrorStale, match="ThrottlingException"):
        rotator.run(bound, token, Step.FINISH)
    assert stage_holder(stages_of(sm, bound), CURRENT) == token and mirrored(sm) == old
    monkeypatch.undo()
    rotator.run(bound, token, Step.FINISH)
    assert mirrored(sm)["accessToken"] == current(sm, bound).password


def test_a_retried_finish_does_not_write_a_mirror_that_holds_awscurrent(
    sm: Any, bound: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = make_rotator(sm, vendor, registry)
    token = rotate(rotator, bound)
    before = versions(sm)
    rotator.run(bound, token, Step.FINISH)
    assert versions(sm) == before


# -- retirement: never revoke what the mirror may still hold ---------------------------------------------


def _rotated_past_grace(sm: Any, secret: str, vendor: MemoryVendor, registry: Registry) -> Any:
    rotator = make_rotator(sm, vendor, registry)
    rotate(rotator, secret)
    sm.tag_resource(
        SecretId=secret,
        Tags=[
            {"Key": config.GRACE, "Value": "0s"},
            {"Key": config.PROMOTED_AT, "Value": "2020-01-01T00:00:00Z"},
        ],
    )
    return rotator


def test_retire_is_refused_while_the_mirror_cannot_hold_awscurrent(
    sm: Any, bound: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = _rotated_past_grace(sm, bound, vendor, registry)
    previous = parse(sm.get_secret_value(SecretId=bound, VersionStage=PREVIOUS)["SecretString"])
    # Given a mirror whose binding was removed, and that still holds the previous token
    sm.untag_resource(SecretId=MIRROR, TagKeys=[config.MIRROR_OF])
    sm.put_secret_value(SecretId=MIRROR, SecretString=mirror_string(previous))
    # Then the previous credential is kept, and the reason names the tag
    assert rotator.retire_previous(bound) is RetireResult.MIRROR_STALE
    assert rotator.retire_previous(bound, dry_run=True) is RetireResult.MIRROR_STALE
    assert previous.token_id in vendor.live()
    problem = mirror_problem(SecretStore(sm), bound)
    assert problem is not None and f"{config.MIRROR_OF}={NAME}" in problem
    # When the binding is restored, retirement writes the mirror first, then revokes
    sm.tag_resource(SecretId=MIRROR, Tags=[{"Key": config.MIRROR_OF, "Value": NAME}])
    assert mirror_problem(SecretStore(sm), bound) is None
    assert rotator.retire_previous(bound) is RetireResult.RETIRED
    assert previous.token_id not in vendor.live()
    assert mirrored(sm)["accessToken"] == current(sm, bound).password


def test_retire_writes_a_stale_mirror_before_revoking_and_a_dry_run_writes_nothing(
    sm: Any, bound: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = _rotated_past_grace(sm, bound, vendor, registry)
    previous = parse(sm.get_secret_value(SecretId=bound, VersionStage=PREVIOUS)["SecretString"])
    sm.put_secret_value(SecretId=MIRROR, SecretString=mirror_string(previous))
    assert rotator.retire_previous(bound, dry_run=True) is RetireResult.WOULD_RETIRE
    assert mirrored(sm)["accessToken"] == previous.password
    assert rotator.retire_previous(bound, proven_current=stage_holder(stages_of(sm, bound), CURRENT)) is (
        RetireResult.RETIRED
    )
    assert mirrored(sm)["accessToken"] == current(sm, bound).password


def test_retire_of_a_missing_mirror_keeps_the_previous_credential(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = _rotated_past_grace(sm, secret, vendor, registry)
    tag_mirror(sm, secret)
    previous = parse(sm.get_secret_value(SecretId=secret, VersionStage=PREVIOUS)["SecretString"])
    assert rotator.retire_previous(secret) is RetireResult.MIRROR_STALE
    assert previous.token_id in vendor.live()
