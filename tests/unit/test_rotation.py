"""The rotation state machine against moto's Secrets Manager, an in-memory vendor and a pull check
that accepts exactly the credentials the vendor holds live."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from regcred import config, labels
from regcred.errors import (
    ConfigurationError,
    RotationError,
    RotationRetryable,
    RotationTestFailed,
)
from regcred.providers import VendorToken
from regcred.rotation import (
    CURRENT,
    PENDING,
    PREVIOUS,
    RetireResult,
    Rotator,
    Step,
    guard,
    matches_secret,
    stage_holder,
)
from regcred.secret import parse, render
from tests.rotation_doubles import (
    DEPLOYMENT,
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


def test_full_rotation_promotes_a_new_credential_and_keeps_the_old_as_previous(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a managed secret whose credential pulls
    old = current(sm, secret)
    # When the four steps run
    token = rotate(make_rotator(sm, vendor, registry), secret)
    # Then AWSCURRENT holds a new live credential, AWSPREVIOUS the old one, AWSPENDING is gone
    new = current(sm, secret)
    stages = stages_of(sm, secret)
    assert new.token_id != old.token_id
    assert stage_holder(stages, CURRENT) == token
    assert stage_holder(stages, PENDING) is None
    assert (
        parse(sm.get_secret_value(SecretId=secret, VersionStage=PREVIOUS)["SecretString"]).token_id
        == old.token_id
    )
    assert vendor.live() == {old.token_id, new.token_id}
    assert new.registry == REGISTRY and new.provider == "dockerhub"
    tags = config.tags_to_dict(sm.describe_secret(SecretId=secret)["Tags"])
    assert tags[config.PROMOTED_VERSION] == token


def test_every_step_run_twice_changes_nothing_the_second_time(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    outcomes = []
    for step in Step:
        outcomes.append(str(rotator.run(secret, token, step)))
        outcomes.append(str(rotator.run(secret, token, step)))
    assert outcomes[:2] == ["created", "exists"]
    assert outcomes[-1] == "already_current"
    assert vendor.issued == 2  # the onboarding token and exactly one rotation token
    assert len(vendor.live()) == 2
    assert stage_holder(stages_of(sm, secret), CURRENT) == token


def test_concurrent_create_leaves_no_orphan(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given two createSecret calls for one token that both reach the vendor before either stores
    barrier = threading.Barrier(2, timeout=10)
    vendor.on_issue = barrier.wait
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    errors: list[BaseException] = []

    def create() -> None:
        try:
            rotator.run(secret, token, Step.CREATE)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    vendor.on_issue = None
    assert not errors
    assert vendor.issued == 3  # onboarding + one per racer
    # When the rotation completes
    for step in (Step.SET, Step.TEST, Step.FINISH):
        rotator.run(secret, token, step)
    # Then only the stored credential and the previous one are alive
    assert vendor.live() == {
        current(sm, secret).token_id,
        parse(sm.get_secret_value(SecretId=secret, VersionStage=PREVIOUS)["SecretString"]).token_id,
    }


def test_crash_between_vendor_call_and_put_is_recovered_without_orphan(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a createSecret that dies right after the vendor minted a credential
    real_put = sm.put_secret_value

    def dying_put(**kwargs: Any) -> Any:
        raise Crash

    sm.put_secret_value = dying_put
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    with pytest.raises(Crash):
        rotator.run(secret, token, Step.CREATE)
    orphan = next(k for k, t in vendor.tokens.items() if t.label == labels.label_for(NAME, token))
    assert orphan in vendor.live()
    # When Secrets Manager retries the step, and the rotation goes on
    sm.put_secret_value = real_put
    rotator.run(secret, token, Step.CREATE)
    pending = parse(
        sm.get_secret_value(SecretId=secret, VersionId=token, VersionStage=PENDING)["SecretString"]
    )
    assert pending.token_id != orphan
    for step in (Step.SET, Step.TEST, Step.FINISH):
        rotator.run(secret, token, step)
    # Then the orphan is revoked and only AWSCURRENT's and AWSPREVIOUS's credentials live
    assert orphan not in vendor.live()
    assert vendor.find_by_label(labels.label_for(NAME, token)) == [
        VendorToken(pending.token_id, labels.label_for(NAME, token), True)
    ]
    assert len(vendor.live()) == 2


def test_failed_test_revokes_pending_and_leaves_current_untouched(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a registry that silently narrows the new token's scope
    before = current(sm, secret)
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    rotator.run(secret, token, Step.CREATE)
    rotator.run(secret, token, Step.SET)
    pending = parse(
        sm.get_secret_value(SecretId=secret, VersionId=token, VersionStage=PENDING)["SecretString"]
    )
    registry.narrowed = True
    # When testSecret runs
    with pytest.raises(RotationTestFailed) as caught:
        rotator.run(secret, token, Step.TEST)
    # Then the pending credential is dead, AWSCURRENT is the same live credential, AWSPENDING is gone
    assert "no_access" in str(caught.value)
    assert pending.password not in str(caught.value)
    assert pending.token_id not in vendor.live()
    assert current(sm, secret) == before and before.token_id in vendor.live()
    assert stage_holder(stages_of(sm, secret), PENDING) is None
    # A retry of the same rotation is refused; a new rotation works once the registry is fixed
    with pytest.raises(RotationError):
        rotator.run(secret, token, Step.FINISH)
    registry.narrowed = False
    rotate(rotator, secret)
    assert current(sm, secret).token_id != before.token_id


def test_configuration_test_on_a_copy_of_current_never_revokes_current(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given what RotateSecret(RotateImmediately=False) does: an AWSPENDING copy of AWSCURRENT
    before = current(sm, secret)
    token = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=secret, ClientRequestToken=token, SecretString=render(before), VersionStages=[PENDING]
    )
    rotator = make_rotator(sm, vendor, registry)
    # When testSecret runs and passes, nothing is revoked
    assert str(rotator.run(secret, token, Step.TEST)) == "pulls"
    assert before.token_id in vendor.live()
    # And when it fails, the current credential is still not revoked
    registry.narrowed = True
    with pytest.raises(RotationTestFailed, match="nothing was revoked"):
        rotator.run(secret, token, Step.TEST)
    assert before.token_id in vendor.live()
    assert current(sm, secret) == before


def test_unreachable_registry_keeps_pending_for_a_retry(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = make_rotator(sm, vendor, registry)
    token = str(uuid.uuid4())
    rotator.run(secret, token, Step.CREATE)
    registry.down = True
    with pytest.raises(RotationRetryable):
        rotator.run(secret, token, Step.TEST)
    pending = parse(
        sm.get_secret_value(SecretId=secret, VersionId=token, VersionStage=PENDING)["SecretString"]
    )
    assert pending.token_id in vendor.live()
    registry.down = False
    rotator.run(secret, token, Step.TEST)
    rotator.run(secret, token, Step.FINISH)
    assert current(sm, secret).token_id == pending.token_id


def test_at_most_two_live_credentials_after_many_rotations(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = make_rotator(sm, vendor, registry)
    for _ in range(4):
        rotate(rotator, secret)
    previous = parse(sm.get_secret_value(SecretId=secret, VersionStage=PREVIOUS)["SecretString"])
    assert vendor.live() == {current(sm, secret).token_id, previous.token_id}
    assert vendor.issued == 5


def test_a_new_rotation_revokes_a_stale_pending_credential(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a rotation abandoned after createSecret (its pending credential still live)
    rotator = make_rotator(sm, vendor, registry)
    stale = str(uuid.uuid4())
    rotator.run(secret, stale, Step.CREATE)
    stale_token = parse(sm.get_secret_value(SecretId=secret, VersionId=stale)["SecretString"]).token_id
    # When a new rotation runs
    rotate(rotator, secret)
    # Then the abandoned credential is revoked
    assert stale_token not in vendor.live()
    assert len(vendor.live()) == 2


def test_retire_previous_waits_for_grace_and_a_proven_current(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    clock = {"now": datetime.now(UTC)}
    rotator = make_rotator(sm, vendor, registry, now=lambda: clock["now"])
    old = current(sm, secret)
    rotate(rotator, secret)
    assert rotator.retire_previous(secret) is RetireResult.IN_GRACE
    assert old.token_id in vendor.live()
    clock["now"] += timedelta(hours=2)  # grace is 1h
    registry.down = True
    assert rotator.retire_previous(secret) is RetireResult.CURRENT_UNPROVEN
    assert old.token_id in vendor.live()
    registry.down = False
    assert rotator.retire_previous(secret) is RetireResult.RETIRED
    assert old.token_id not in vendor.live()
    assert rotator.retire_previous(secret) is RetireResult.ALREADY_RETIRED
    assert current(sm, secret).token_id in vendor.live()


def test_rotation_refused_when_not_enabled_and_required(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = Rotator(sm, deployment=DEPLOYMENT, provider_factory=lambda ctx: vendor, check=registry)
    with pytest.raises(RotationError, match="not enabled"):
        rotator.run(secret, str(uuid.uuid4()), Step.CREATE)
    assert vendor.issued == 1


def test_no_probe_image_refuses_before_minting(sm: Any, vendor: MemoryVendor, registry: Registry) -> None:
    arn = onboard(sm, vendor, "no-images", **{config.IMAGES: ""})
    with pytest.raises(ConfigurationError, match="regcred:images"):
        make_rotator(sm, vendor, registry).run(arn, str(uuid.uuid4()), Step.CREATE)
    assert vendor.issued == 1


def test_probe_images_come_from_active_batch_job_definitions(
    sm: Any, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a secret without an images tag, named by 3 job definitions (one on another registry)
    arn = onboard(sm, vendor, "from-batch", **{config.IMAGES: ""})
    batch = boto3.client("batch", region_name="us-east-1")
    for i, (image, parameter) in enumerate(
        [
            (f"{REGISTRY}/acme/one:1", arn),
            (f"{REGISTRY}/acme/two:2", "from-batch"),
            ("other.example/acme/three:3", arn),
            (f"{REGISTRY}/acme/unrelated:4", "another-secret"),
            (f"{REGISTRY}/Acme/NotDocker:5", arn),  # Docker refuses it: reported and skipped
            ("acme/app:6", arn),  # Docker Hub, as Docker reads a name without a registry
        ]
    ):
        batch.register_job_definition(
            jobDefinitionName=f"jd{i}",
            type="container",
            containerProperties={
                "image": image,
                "vcpus": 1,
                "memory": 128,
                "repositoryCredentials": {"credentialsParameter": parameter},
            },
        )
    rotator = make_rotator(sm, vendor, registry, batch=batch)
    probe = rotator.probe_images(rotator.context(rotator.describe(arn)))
    # Then the probe images are those on this secret's registry that name it; the others are reported
    assert sorted(probe.images) == [f"{REGISTRY}/acme/one:1", f"{REGISTRY}/acme/two:2"]
    assert len(probe.skipped) == 3
    assert any("other.example" in s for s in probe.skipped)
    assert any("registry-1.docker.io/acme/app:6" in s for s in probe.skipped)


def test_guard_follows_the_aws_templates() -> None:
    versions = {"cur": [CURRENT], "pend": [PENDING], "old": [PREVIOUS]}
    assert guard(versions, "pend", Step.TEST, rotation_enabled=True).value == "proceed"
    assert guard(versions, "cur", Step.FINISH, rotation_enabled=True).value == "already_current"
    with pytest.raises(RotationError, match="not AWSPENDING"):
        guard(versions, "old", Step.SET, rotation_enabled=True)
    with pytest.raises(RotationError, match="does not exist"):
        guard(versions, "nope", Step.TEST, rotation_enabled=True)
    assert guard(versions, "nope", Step.CREATE, rotation_enabled=True).value == "proceed"
    with pytest.raises(RotationError, match="not enabled"):
        guard(versions, "pend", Step.TEST, rotation_enabled=False)


def test_step_names_accept_both_spellings() -> None:
    assert Step.parse("create_secret") is Step.CREATE
    assert Step.parse("finishSecret") is Step.FINISH
    with pytest.raises(RotationError, match="createSecret"):
        Step.parse("deleteSecret")


def test_labels_fit_the_vendor_limit_and_keep_the_token() -> None:
    token = str(uuid.uuid4())
    label = labels.label_for("x" * 300, token)
    assert len(label) <= 100 and labels.rotation_of(label) == token
    assert labels.label_for(NAME, token) == f"regcred {labels.owner_of(NAME)} {token} {NAME}"
    assert labels.belongs_to(label, "x" * 300)
    # Two names sharing the part that fits in the label are told apart by the owner hash
    assert not labels.belongs_to(label, "x" * 299 + "y")
    assert not labels.belongs_to(f"regcred {labels.owner_of(NAME)} {token} batch/other", NAME)
    assert not labels.belongs_to("somebody else's token", NAME)


def test_secret_matching_by_arn_partial_arn_and_name() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/registry-AbCdEf"
    assert matches_secret(arn, arn, "batch/registry")
    assert matches_secret(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/registry", arn, "batch/registry"
    )
    assert matches_secret("batch/registry", arn, "batch/registry")
    assert not matches_secret(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/reg", arn, "batch/registry"
    )


def test_a_recorded_step_failure_reads_back_for_its_version_only() -> None:
    from regcred.rotation_rules import StepFailure

    failure = StepFailure(
        "v1", "testSecret", "RotationRetryable", "registry unreachable: 127.0.0.1:9 (timeout)"
    )
    text = failure.tag_text()
    read = StepFailure.of_version(text, "v1")
    assert (
        read is not None and (read.step, read.error) == ("testSecret", "RotationRetryable") and read.retryable
    )
    assert read.reason == "registry unreachable: 127.0.0.1:9 _timeout_"  # parentheses are not tag characters
    assert StepFailure.of_version(text, "v2") is None
    assert not StepFailure("v1", "createSecret", "ConfigurationError", "bad tag").retryable
    assert "!" not in StepFailure("v", "s", "E", "a!b").tag_text()  # within the tag rules
