"""The remediate handler on every sample in events/, against moto: what `sam local invoke -e` feeds it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from devstack.lambda_local import LambdaContext, load
from regcred.coalesce import Coalescer
from regcred.remediation import Remediator, Settings

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXPECTED = {
    "remediate_batch_auth_failure.json": ("auth", "secret_missing"),
    "remediate_batch_ambiguous_denial.json": ("auth_or_not_found", "secret_missing"),
    "remediate_batch_secret_access_denied.json": ("secret_retrieval", "secret_missing"),
    "remediate_batch_rate_limit.json": ("rate_limit", "rate_limited"),
    "remediate_batch_manifest_unknown.json": ("not_found", "not_found"),
    "remediate_ecs_task_auth_failure.json": ("auth", "no_repository_credentials"),
}


@pytest.fixture
def app() -> Iterator[Any]:
    with mock_aws():
        module = load("remediate")
        module._remediator = Remediator(
            sm=boto3.client("secretsmanager"),
            batch=boto3.client("batch"),
            iam=boto3.client("iam"),
            ecs=boto3.client("ecs"),
            coalescer=Coalescer(None, None, 900),
            settings=Settings(),
        )
        yield module
        module._remediator = None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_failure_sample_is_classified_and_diagnosed(app: Any, name: str) -> None:
    # The samples name a secret that does not exist in this empty account: the diagnosis says so.
    result = app.handler(json.loads((EVENTS / name).read_text()), LambdaContext())
    assert (result["class"], result["diagnosis"]) == EXPECTED[name]


def test_every_remediation_sample_is_covered() -> None:
    assert {p.name for p in EVENTS.glob("remediate_*.json")} == set(EXPECTED) | {
        "remediate_batch_succeeded.json"
    }


def test_a_success_event_is_ignored(app: Any) -> None:
    result = app.handler(json.loads((EVENTS / "remediate_batch_succeeded.json").read_text()), LambdaContext())
    assert result == {"ignored": "status SUCCEEDED"}


def test_an_event_it_cannot_parse_raises_so_that_it_reaches_the_dead_letter_queue(app: Any) -> None:
    with pytest.raises(ValidationError):
        app.handler({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}, LambdaContext())
