"""Coalescing claims in DynamoDB (moto): one owner per key per window, across containers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from regcred.coalesce import Coalescer
from tests.aws_setup import coalesce_table


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        coalesce_table(client, "t")
        yield client


def test_one_owner_per_window_and_losers_learn_the_diagnosis(ddb: Any) -> None:
    clock = {"t": 1_000_000.0}
    a = Coalescer(ddb, "t", 900, now=lambda: clock["t"])
    b = Coalescer(ddb, "t", 900, now=lambda: clock["t"])
    assert a.claim("probe#s").owner
    # b loses before a recorded anything, and keeps using its cached answer for a while
    assert b.claim("probe#s").diagnosis is None
    a.record("probe#s", "rotation_started")
    calls = b.ddb_calls
    assert b.claim("probe#s").diagnosis is None and b.ddb_calls == calls
    # after the refresh interval it reads the recorded diagnosis once
    clock["t"] += 31
    assert b.claim("probe#s").diagnosis == "rotation_started"
    assert b.claim("probe#s").diagnosis == "rotation_started" and b.ddb_calls == calls + 1
    # a new window has a new owner
    clock["t"] += 900
    assert b.claim("probe#s").owner
    assert not a.claim("probe#s").owner


def test_without_a_table_claims_are_local() -> None:
    local = Coalescer(None, None, 60)
    assert local.claim("k").owner
    assert not local.claim("k").owner
    local.record("k", "transient")
    assert local.claim("k").diagnosis == "transient"
