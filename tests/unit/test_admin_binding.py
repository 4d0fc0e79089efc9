"""The admin credential is bound to the secrets it serves, and its value is untrusted input too."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from regcred import config
from regcred.config import admin_serves
from regcred.errors import ConfigurationError
from regcred.providers import read_admin_credential


def admin(sm: Any, value: str, **tags: str) -> str:
    name = f"admin/{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=name, SecretString=value, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return name


GOOD = json.dumps({"username": "acme", "password": "admin-password-1"})
BOUND = {config.ADMIN_MARK: "true", config.ADMIN_FOR: "batch/* team/exact"}


@pytest.mark.parametrize(
    ("patterns", "name", "serves"),
    [
        ("batch/*", "batch/pull", True),
        ("batch/*", "batchx/pull", False),
        ("batch/pull", "batch/pull", True),
        ("batch/pull", "batch/pull2", False),
        ("a b batch/pull", "batch/pull", True),
        ("*", "anything", True),
        ("", "batch/pull", False),
        ("batch/", "batch/pull", False),
    ],
)
def test_admin_for_patterns(patterns: str, name: str, serves: bool) -> None:
    assert admin_serves(patterns, name) is serves


def test_a_bound_admin_secret_serves_its_secrets(sm: Any) -> None:
    name = admin(sm, GOOD, **BOUND)
    credential = read_admin_credential(sm, name, secret_name="batch/pull")
    assert credential.username == "acme"
    assert read_admin_credential(sm, name, secret_name="team/exact").username == "acme"


@pytest.mark.parametrize(
    ("tags", "secret", "fragment"),
    [
        ({}, "batch/pull", "regcred:admin=true"),
        ({config.ADMIN_MARK: "true"}, "batch/pull", "regcred:admin-for"),
        (BOUND, "other/pull", "may not be used for other/pull"),
        ({**BOUND, config.MANAGED: "true"}, "batch/pull", "never itself rotated"),
    ],
)
def test_an_admin_secret_not_bound_to_the_secret_is_refused(
    sm: Any, tags: dict[str, str], secret: str, fragment: str
) -> None:
    name = admin(sm, GOOD, **tags)
    with pytest.raises(ConfigurationError, match=fragment) as caught:
        read_admin_credential(sm, name, secret_name=secret)
    assert "admin-password-1" not in str(caught.value)


def test_a_secret_cannot_be_its_own_admin(sm: Any) -> None:
    name = admin(sm, GOOD, **{config.ADMIN_MARK: "true", config.ADMIN_FOR: "*"})
    with pytest.raises(ConfigurationError, match="never itself rotated"):
        read_admin_credential(sm, name, secret_name=name)


@pytest.mark.parametrize(
    "value",
    [
        "[" * 50_000 + "]" * 50_000,
        json.dumps({"username": "acme", "password": "p" * 20_000}),
        json.dumps({"username": "acme", "password": {"nested": ["x"] * 3}}),
        json.dumps({"username": "", "password": "admin-password-1"}),
        json.dumps({"username": "acme", "password": "line\nbreak-password"}),
        json.dumps(["acme", "admin-password-1"]),
        "not json",
    ],
    ids=["deep", "oversized", "nested", "empty-user", "control", "array", "not-json"],
)
def test_hostile_admin_values_are_a_clear_configuration_error(sm: Any, value: str) -> None:
    name = admin(sm, value, **BOUND)
    with pytest.raises(ConfigurationError, match="admin secret"):
        read_admin_credential(sm, name, secret_name="batch/pull")


def test_a_missing_admin_secret_says_which_tag_to_fix(sm: Any) -> None:
    with pytest.raises(ConfigurationError, match="regcred:admin-secret"):
        read_admin_credential(sm, "admin/missing", secret_name="batch/pull")
