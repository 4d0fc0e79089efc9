"""The secret value schema: what ECS must always be able to read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from regcred.errors import SecretFormatError
from regcred.secret import SecretValue, ecs_view, parse, render

PASSWORD = "dckr_pat_SECRETVALUE123"


def test_roundtrip_keeps_every_field_and_unknown_keys() -> None:
    # Given a version written by a newer regcred with a field this one does not know
    text = json.dumps(
        {
            "username": "svc",
            "password": PASSWORD,
            "registry": "registry-1.docker.io",
            "provider": "dockerhub",
            "token_id": "t-1",
            "expires_at": "2027-01-01T00:00:00Z",
            "future_field": {"a": 1},
        }
    )
    # When it is parsed and rendered again
    value = parse(text)
    again = json.loads(render(value))
    # Then nothing is lost and times are normalised to UTC
    assert value.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert again["future_field"] == {"a": 1}
    assert again["expires_at"] == "2027-01-01T00:00:00Z"
    assert ecs_view(value) == {"username": "svc", "password": PASSWORD}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (None, "no SecretString"),
        ("", "no SecretString"),
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"password": PASSWORD}), '"username"'),
        (json.dumps({"username": "svc"}), '"password"'),
        (json.dumps({"username": "svc", "password": 5}), "must be a string"),
        (json.dumps({"username": "svc", "password": "  "}), "empty"),
        (json.dumps({"username": "svc", "password": PASSWORD + "\n"}), "control characters"),
        (json.dumps({"username": "a:b", "password": PASSWORD}), "HTTP Basic"),
        (json.dumps({"username": "svc", "password": PASSWORD, "registry": "https://x/y"}), "registry"),
        (json.dumps({"username": "svc", "password": PASSWORD, "expires_at": "tomorrow"}), "ISO 8601"),
    ],
)
def test_bad_values_are_refused_with_a_message_that_names_the_field_not_the_value(
    text: str | None, needle: str
) -> None:
    with pytest.raises(SecretFormatError) as caught:
        parse(text)
    assert needle in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_render_validates_before_every_write() -> None:
    with pytest.raises(SecretFormatError):
        render(SecretValue(username="svc", password=""))


def test_password_never_in_repr() -> None:
    value = SecretValue(username="svc", password=PASSWORD)
    assert PASSWORD not in repr(value)
    assert PASSWORD not in str(value)
