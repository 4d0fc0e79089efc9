"""The rotation state machine against moto's Secrets Manager, an in-memory vendor and a pull check
that accepts exactly the credentials the vendor holds live."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from regcred import config
from regcred.errors import ConfigurationError, RotationError, RotationRetryable, RotationTestFailed
from regcred.providers import IssuedCredential, Strategy, VendorToken
from regcred.registry import Credential, ImageCheck, PullCheck, PullStatus
from regcred.rotation import (
    CURRENT,
    PENDING,
    PREVIOUS,
    Rotator,
    Step,
    guard,
    label_for,
    matches_secret,
    stage_holder,
)
from regcred.secret import SecretValue, parse, render

REGISTRY = "registry.example.test"
IMAGE = f"{REGISTRY}/acme/app:1.0"


@dataclass
class MemoryToken:
    label: str
    password: str
    active: bool = True


class MemoryVendor:
    """A vendor that mints tokens in memory; ``on_issue`` lets a test interleave threads."""

    name = "memory"
    strategy = Strategy.OVERLAP
    registry = REGISTRY
    realm_hosts: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.tokens: dict[str, MemoryToken] = {}
        self.lock = threading.Lock()
        self.on_issue: Any = None
        self.issued = 0

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        token_id = f"tok-{uuid.uuid4().hex[:8]}"
        password = f"pw-{uuid.uuid4().hex}"
        with self.lock:
            self.tokens[token_id] = MemoryToken(label, password)
            self.issued += 1
        if self.on_issue:
            self.on_issue()
        return IssuedCredential("svc", password, token_id, expires_at)

    def find_by_label(self, label: str) -> list[VendorToken]:
        with self.lock:
            return [
                VendorToken(k, t.label, True) for k, t in self.tokens.items() if t.label == label and t.active
            ]

    def revoke(self, token_id: str) -> None:
        with self.lock:
            if token_id in self.tokens:
                self.tokens[token_id].active = False

    def live(self) -> set[str]:
        return {k for k, t in self.tokens.items() if t.active}


class Registry:
    """The pull check: a credential pulls iff the vendor holds it live (and the registry is up)."""

    def __init__(self, vendor: MemoryVendor) -> None:
        self.vendor = vendor
        self.down = False
        self.narrowed = False
        self.calls = 0

    def __call__(
        self, registry: str, realm_hosts: frozenset[str], credential: Credential, images: Sequence[str]
    ) -> PullCheck:
        self.calls += 1
        live = {t.password for t in self.vendor.tokens.values() if t.active}
        if self.down:
            status = PullStatus.UNREACHABLE
        elif credential.password not in live:
            status = PullStatus.CREDENTIALS_REJECTED
        elif self.narrowed:
            status = PullStatus.NO_ACCESS
        else:
            status = PullStatus.OK
        return PullCheck(registry, tuple(ImageCheck(i, status, status.value) for i in images))


class Crash(BaseException):
    """A process death: no ``except Exception`` handler runs."""


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def vendor() -> MemoryVendor:
    return MemoryVendor()


@pytest.fixture
def registry(vendor: MemoryVendor) -> Registry:
    return Registry(vendor)


@pytest.fixture
def sm(aws: None) -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def secret(sm: Any, vendor: MemoryVendor) -> str:
    first = vendor.issue("onboard", None)
    value = SecretValue(
        username=first.username,
        password=first.password,
        registry=REGISTRY,
        provider="dockerhub",
        token_id=first.token_id,
        issued_at=datetime.now(UTC),
    )
    arn: str = sm.create_secret(
        Name="batch/registry",
        SecretString=render(value),
        Tags=[
            {"Key": config.MANAGED, "Value": "true"},
            {"Key": config.PROVIDER, "Value": "dockerhub"},
            {"Key": config.IMAGES, "Value": IMAGE},
            {"Key": config.GRACE, "Value": "1h"},
        ],
    )["ARN"]
    return arn


def make_rotator(sm: Any, vendor: MemoryVendor, registry: Registry, **kwargs: Any) -> Rotator:
    return Rotator(
        sm,
        provider_factory=lambda cfg, value: vendor,
        check=registry,
        require_rotation_enabled=False,
        **kwargs,
    )


def current(sm: Any, arn: str) -> SecretValue:
    return parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])


def labels(sm: Any, arn: str) -> dict[str, list[str]]:
    return sm.describe_secret(SecretId=arn)["VersionIdsToStages"]  # type: ignore[no-any-return]


def rotate(rotator: Rotator, arn: str, token: str | None = None) -> str:
    token = token or str(uuid.uuid4())
    for step in Step:
        rotator.run(arn, token, step)
    return token


def test_full_rotation_promotes_a_new_credential_and_keeps_the_old_as_previous(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a managed secret whose credential pulls
    old = current(sm, secret)
    # When the four steps run
    token = rotate(make_rotator(sm, vendor, registry), secret)
    # Then AWSCURRENT holds a new live credential, AWSPREVIOUS the old one, AWSPENDING is gone
    new = current(sm, secret)
    stages = labels(sm, secret)
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
    assert stage_holder(labels(sm, secret), CURRENT) == token


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
    orphan = next(k for k, t in vendor.tokens.items() if t.label == label_for("batch/registry", token))
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
    assert vendor.find_by_label(label_for("batch/registry", token)) == [
        VendorToken(pending.token_id, label_for("batch/registry", token), True)
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
    assert stage_holder(labels(sm, secret), PENDING) is None
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
    assert rotator.retire_previous(secret) == "in_grace"
    assert old.token_id in vendor.live()
    clock["now"] += timedelta(hours=2)  # grace is 1h
    registry.down = True
    assert rotator.retire_previous(secret) == "current_unproven"
    assert old.token_id in vendor.live()
    registry.down = False
    assert rotator.retire_previous(secret) == "retired"
    assert old.token_id not in vendor.live()
    assert rotator.retire_previous(secret) == "already_retired"
    assert current(sm, secret).token_id in vendor.live()


def test_rotation_refused_when_not_enabled_and_required(
    sm: Any, secret: str, vendor: MemoryVendor, registry: Registry
) -> None:
    rotator = Rotator(sm, provider_factory=lambda cfg, value: vendor, check=registry)
    with pytest.raises(RotationError, match="not enabled"):
        rotator.run(secret, str(uuid.uuid4()), Step.CREATE)
    assert vendor.issued == 1


def test_no_probe_image_refuses_before_minting(sm: Any, vendor: MemoryVendor, registry: Registry) -> None:
    first = vendor.issue("onboard", None)
    arn = sm.create_secret(
        Name="no-images",
        SecretString=render(SecretValue("svc", first.password, REGISTRY, "dockerhub", first.token_id)),
        Tags=[{"Key": config.MANAGED, "Value": "true"}, {"Key": config.PROVIDER, "Value": "dockerhub"}],
    )["ARN"]
    with pytest.raises(ConfigurationError, match="regcred:images"):
        make_rotator(sm, vendor, registry).run(arn, str(uuid.uuid4()), Step.CREATE)
    assert vendor.issued == 1


def test_probe_images_come_from_active_batch_job_definitions(
    sm: Any, vendor: MemoryVendor, registry: Registry
) -> None:
    # Given a secret without an images tag, named by 3 job definitions (one on another registry)
    first = vendor.issue("onboard", None)
    arn = sm.create_secret(
        Name="from-batch",
        SecretString=render(SecretValue("svc", first.password, REGISTRY, "dockerhub", first.token_id)),
        Tags=[{"Key": config.MANAGED, "Value": "true"}, {"Key": config.PROVIDER, "Value": "dockerhub"}],
    )["ARN"]
    batch = boto3.client("batch", region_name="us-east-1")
    for i, (image, parameter) in enumerate(
        [
            (f"{REGISTRY}/acme/one:1", arn),
            (f"{REGISTRY}/acme/two:2", "from-batch"),
            ("other.example/acme/three:3", arn),
            (f"{REGISTRY}/acme/unrelated:4", "another-secret"),
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
    state = rotator.describe(arn)
    # Then the probe images are those on this secret's registry that name it
    assert sorted(rotator.probe_images(state, REGISTRY)) == [
        f"{REGISTRY}/acme/one:1",
        f"{REGISTRY}/acme/two:2",
    ]


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
    label = label_for("x" * 300, token)
    assert len(label) <= 100 and label.endswith(token)
    assert label_for("batch/registry", token) == f"regcred batch/registry {token}"


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
