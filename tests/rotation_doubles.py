"""Doubles for rotation tests: an in-memory vendor, a pull check that accepts exactly the credentials the
vendor holds live, and helpers to onboard a secret on moto and drive the four steps."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from regcred import config, labels
from regcred.errors import MintOutcomeUnknown
from regcred.hosts import Origin
from regcred.providers import IssuedCredential, VendorToken, dockerhub
from regcred.registry import Credential, ImageCheck, PullCheck, PullStatus
from regcred.rotation import CURRENT, Rotator, Step
from regcred.routing import Deployment, Routing
from regcred.secret import SecretValue, parse, render

REGISTRY = "registry.example.test"
IMAGE = f"{REGISTRY}/acme/app:1.0"
DEPLOYMENT = Deployment(registry_hosts=frozenset({Origin("https", REGISTRY, 443)}))
NAME = "batch/registry"


@dataclass
class MemoryToken:
    label: str
    password: str
    active: bool = True


class MemoryVendor:
    """A vendor that mints tokens in memory; ``on_issue`` lets a test interleave threads."""

    spec = dockerhub.SPEC

    def __init__(self) -> None:
        self.tokens: dict[str, MemoryToken] = {}
        self.lock = threading.Lock()
        self.on_issue: Any = None
        self.issued = 0
        self.revoke_calls: list[str] = []
        self.unknown_outcome = False

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        token_id = f"tok-{uuid.uuid4().hex[:8]}"
        password = f"pw-{uuid.uuid4().hex}"
        with self.lock:
            self.tokens[token_id] = MemoryToken(label, password)
            self.issued += 1
        if self.on_issue:
            self.on_issue()
        if self.unknown_outcome:
            raise MintOutcomeUnknown("memory vendor: no answer")
        return IssuedCredential("svc", password, token_id, expires_at)

    def list_tokens(self) -> list[VendorToken]:
        with self.lock:
            return [VendorToken(k, t.label, True) for k, t in self.tokens.items() if t.active]

    def find_by_label(self, label: str) -> list[VendorToken]:
        return [t for t in self.list_tokens() if t.label == label]

    def describe_token(self, token_id: str) -> VendorToken | None:
        with self.lock:
            token = self.tokens.get(token_id)
            return VendorToken(token_id, token.label, True) if token and token.active else None

    def valid_token_id(self, token_id: str) -> bool:
        return len(token_id) == 12 and token_id.startswith("tok-")

    def revoke(self, token_id: str) -> None:
        with self.lock:
            self.revoke_calls.append(token_id)
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
        self.open = False
        self.calls = 0
        self.routes: list[Routing] = []

    def __call__(
        self,
        route: Routing,
        credential: Credential,
        images: Sequence[str],
        *,
        deadline: Any = None,
        prove: bool = False,
    ) -> PullCheck:
        self.calls += 1
        self.routes.append(route)
        live = {t.password for t in self.vendor.tokens.values() if t.active}
        if self.down:
            status = PullStatus.UNREACHABLE
        elif self.open:
            status = PullStatus.OPEN
        elif credential.password not in live:
            status = PullStatus.CREDENTIALS_REJECTED
        elif self.narrowed:
            status = PullStatus.NO_ACCESS
        else:
            status = PullStatus.OK
        return PullCheck(route.registry_name, tuple(ImageCheck(i, status, status.value) for i in images))


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


def onboard(sm: Any, vendor: MemoryVendor, name: str = NAME, **tags: str) -> str:
    first = vendor.issue(labels.label_for(name, f"onboard-{uuid.uuid4()}"), None)
    value = SecretValue(
        username=first.username,
        password=first.password,
        registry=REGISTRY,
        provider="dockerhub",
        token_id=first.token_id,
        issued_at=datetime.now(UTC),
    )
    all_tags = {
        config.MANAGED: "true",
        config.PROVIDER: "dockerhub",
        config.REGISTRY: REGISTRY,
        config.IMAGES: IMAGE,
        config.GRACE: "1h",
        **tags,
    }
    arn: str = sm.create_secret(
        Name=name, SecretString=render(value), Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()]
    )["ARN"]
    return arn


@pytest.fixture
def secret(sm: Any, vendor: MemoryVendor) -> str:
    return onboard(sm, vendor)


def make_rotator(sm: Any, vendor: MemoryVendor, registry: Registry, **kwargs: Any) -> Rotator:
    return Rotator(
        sm,
        deployment=DEPLOYMENT,
        provider_factory=lambda ctx: vendor,
        check=registry,
        require_rotation_enabled=False,
        **kwargs,
    )


def current(sm: Any, arn: str) -> SecretValue:
    return parse(sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"])


def stages_of(sm: Any, arn: str) -> dict[str, list[str]]:
    return sm.describe_secret(SecretId=arn)["VersionIdsToStages"]  # type: ignore[no-any-return]


def rotate(rotator: Rotator, arn: str, token: str | None = None) -> str:
    token = token or str(uuid.uuid4())
    for step in Step:
        rotator.run(arn, token, step)
    return token
