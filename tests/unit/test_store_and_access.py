"""The secret store (every Secrets Manager call goes through it) and the execution-role check that diagnose
and remediation share, on moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from regcred.access import AWS_MANAGED_SM_KEY, Decision, check_role, resolve_key
from regcred.secret import SecretValue
from regcred.store import (
    CURRENT,
    EMULATOR_ALLOWANCES,
    PENDING,
    PREVIOUS,
    SecretAccessDenied,
    SecretNotFound,
    SecretStore,
)

ROLE = "arn:aws:iam::123456789012:role/exec"
VALUE = SecretValue(username="u", password="p-1", token_id="t-1")


def make(sm: Any, name: str = "batch/s", **kwargs: Any) -> str:
    arn: str = sm.create_secret(
        Name=name, SecretString=json.dumps({"username": "u", "password": "p-0"}), **kwargs
    )["ARN"]
    return arn


class Denying:
    """A Secrets Manager client whose DescribeSecret is refused, as IAM refuses unmanaged secrets."""

    def describe_secret(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeSecret")


def test_describe_reads_tags_stages_and_managed(sm: Any) -> None:
    arn = make(sm, Tags=[{"Key": "regcred:managed", "Value": "true"}])
    state = SecretStore(sm).describe("batch/s")
    assert state.arn == arn and state.name == "batch/s" and state.managed
    assert state.holder(CURRENT) is not None and state.kms_key_id is None and not state.deleted
    with pytest.raises(SecretNotFound, match="nope does not exist"):
        SecretStore(sm).describe("nope")
    with pytest.raises(SecretAccessDenied, match="AccessDeniedException"):
        SecretStore(Denying()).describe("x")


def test_reads_name_a_stage_and_placeholders_read_as_none(sm: Any) -> None:
    arn = make(sm)
    store = SecretStore(sm)
    assert store.read(arn, stage=CURRENT).password == "p-0"
    with pytest.raises(SecretNotFound, match="no AWSPENDING"):
        store.read(arn, stage=PENDING)
    sm.put_secret_value(
        SecretId=arn, ClientRequestToken="a" * 32, SecretString="not json", VersionStages=["X"]
    )
    assert store.read_unstaged(arn, "a" * 32) is None
    assert store.read_unstaged(arn, "b" * 32) is None
    assert not store.pending_stored(arn, "c" * 32)


def test_put_pending_then_promote_moves_previous(sm: Any) -> None:
    arn = make(sm)
    store = SecretStore(sm)
    first = store.describe(arn).holder(CURRENT)
    token = "1" * 32
    assert store.put_pending(arn, token, VALUE)
    assert store.pending_stored(arn, token)
    after = store.promote(store.describe(arn), token)
    assert after.holder(CURRENT) == token and after.holder(PREVIOUS) == first
    store.remove_stage(arn, PENDING, token)
    assert store.describe(arn).holder(PENDING) is None


def test_put_pending_reports_a_lost_race() -> None:
    class Exists:
        def put_secret_value(self, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "ResourceExistsException", "Message": "x"}}, "PutSecretValue"
            )

    assert SecretStore(Exists()).put_pending("arn", "t" * 32, VALUE) is False


def test_only_bookkeeping_tags_are_written(sm: Any) -> None:
    arn = make(sm)
    store = SecretStore(sm)
    store.write_bookkeeping(arn, {"regcred:promoted-version": "v"})
    with pytest.raises(ValueError, match="regcred:managed"):
        store.write_bookkeeping(arn, {"regcred:managed": "true"})
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=arn)["Tags"]}
    assert tags == {"regcred:promoted-version": "v"}


def test_list_managed_pages_through_every_tagged_secret(sm: Any) -> None:
    for i in range(5):
        make(sm, f"m/{i}", Tags=[{"Key": "regcred:managed", "Value": "true"}])
    make(sm, "plain/x")
    names = sorted(s.name for s in SecretStore(sm).list_managed(page_size=2))
    assert names == [f"m/{i}" for i in range(5)]


def test_the_emulator_allowances_are_named() -> None:
    assert len(EMULATOR_ALLOWANCES) == 3 and all(EMULATOR_ALLOWANCES)


# -- the execution role ---------------------------------------------------------------------------


class Iam:
    """iam:SimulatePrincipalPolicy answers by action (moto does not simulate policies)."""

    def __init__(self, decisions: dict[str, str]) -> None:
        self.decisions = decisions
        self.calls: list[tuple[str, str]] = []

    def simulate_principal_policy(self, **kwargs: Any) -> Any:
        action, resource = kwargs["ActionNames"][0], kwargs["ResourceArns"][0]
        self.calls.append((action, resource))
        if self.decisions.get("role") == "missing":
            raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "x"}}, "SimulatePrincipalPolicy")
        return {"EvaluationResults": [{"EvalDecision": self.decisions.get(action, "implicitDeny")}]}


@pytest.fixture
def kms(sm: Any) -> Any:
    return boto3.client("kms", region_name="us-east-1")


def test_a_key_alias_is_resolved_to_its_key_arn(sm: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/regcred-test", TargetKeyId=key["KeyId"])
    make(sm, KmsKeyId="alias/regcred-test")
    state = SecretStore(sm).describe("batch/s")
    assert resolve_key(kms, state.kms_key_id, state.arn).arn == key["Arn"]
    iam = Iam({"secretsmanager:GetSecretValue": "allowed", "kms:Decrypt": "allowed"})
    access = check_role(ROLE, state, iam=iam, store=SecretStore(sm), kms=kms)
    assert access.ok and iam.calls[1] == ("kms:Decrypt", key["Arn"])


def test_the_aws_managed_key_needs_no_decrypt(sm: Any, kms: Any) -> None:
    assert resolve_key(kms, None, "arn:aws:secretsmanager:us-east-1:1:secret:x").arn is None
    assert resolve_key(None, AWS_MANAGED_SM_KEY, "arn").arn is None
    # Without a KMS client an alias cannot be resolved: unknown, never a guess.
    assert resolve_key(None, "alias/custom", "arn").unknown
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"
    assert resolve_key(None, "1234abcd", arn).arn == "arn:aws:kms:us-east-1:123456789012:key/1234abcd"


@pytest.mark.parametrize(
    ("decisions", "expect"),
    [
        ({"secretsmanager:GetSecretValue": "allowed", "kms:Decrypt": "allowed"}, "ok"),
        ({"secretsmanager:GetSecretValue": "implicitDeny", "kms:Decrypt": "allowed"}, "secret"),
        ({"secretsmanager:GetSecretValue": "allowed", "kms:Decrypt": "explicitDeny"}, "key"),
        ({"role": "missing"}, "missing"),
    ],
)
def test_diagnose_and_remediation_read_the_same_answer(
    sm: Any, kms: Any, decisions: dict[str, str], expect: str
) -> None:
    from regcred.coalesce import Coalescer
    from regcred.remediation import Diagnosis, Remediator

    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/shared", TargetKeyId=key["KeyId"])
    arn = make(sm, KmsKeyId="alias/shared", Tags=[{"Key": "regcred:managed", "Value": "true"}])
    access = check_role(
        ROLE, SecretStore(sm).describe(arn), iam=Iam(decisions), store=SecretStore(sm), kms=kms
    )
    remediator = Remediator(
        sm=sm, batch=None, iam=Iam(decisions), kms=kms, coalescer=Coalescer(None, None, 60)
    )
    diagnosis = remediator._simulate(ROLE, arn)
    expected = {
        "ok": Diagnosis.ROLE_OK,
        "secret": Diagnosis.ROLE_DENIED,
        "key": Diagnosis.KMS_DENIED,
        "missing": Diagnosis.ROLE_DENIED,
    }[expect]
    assert diagnosis is expected
    assert access.ok is (expect == "ok")
    if expect == "key":
        assert access.denied[0].resource == key["Arn"] and access.denied[0].decision is Decision.EXPLICIT_DENY
    if expect == "missing":
        assert access.role_missing
