"""Secret values never reach a text: scrubbing of remembered values and their encodings, log records,
regcred's own exceptions, and bounded JSON from untrusted sources."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote

import pytest

from regcred import redact, safejson
from regcred.errors import ProviderError

SECRET = 'sEcret-"value"/+=%&-42'


def test_every_common_form_of_a_remembered_value_is_scrubbed() -> None:
    redact.remember(SECRET)
    forms = [
        SECRET,
        json.dumps(SECRET)[1:-1],
        quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
    ]
    for form in forms:
        assert form not in redact.scrub(f"before {form} after")
        assert redact.scrub(f"before {form} after") == "before <redacted> after"


def test_short_values_are_not_remembered() -> None:
    redact.remember("abc")
    assert redact.scrub("abc abc") == "abc abc"


def test_also_scrubs_values_given_for_one_call() -> None:
    assert redact.scrub("token one-off-secret-99", also=["one-off-secret-99"]) == "token <redacted>"


def test_regcred_errors_scrub_their_own_message() -> None:
    redact.remember("minted-token-abcdef")
    assert "minted-token-abcdef" not in str(ProviderError("the vendor said minted-token-abcdef"))


def test_the_log_filter_scrubs_message_args_extras_and_exceptions() -> None:
    redact.remember("logged-secret-1234")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %s", ("logged-secret-1234",), None)
    record.reason = "because logged-secret-1234"
    record.items = ["logged-secret-1234", {"k": "logged-secret-1234"}]
    try:
        raise ValueError("boom logged-secret-1234")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert redact.ScrubFilter().filter(record)
    text = logging.Formatter("%(message)s %(reason)s %(items)s").format(record)
    assert "logged-secret-1234" not in text
    assert "<redacted>" in text


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("[" * 40 + "]" * 40, "deeper"),
        (b"\xff\xfe", "UTF-8"),
        ("x" * 200, "larger"),
        ('{"a": NaN}', "not JSON"),
        ('{"a": Infinity}', "not JSON"),
        ("{'a': 1}", "not JSON"),
    ],
)
def test_bounded_json(data: str | bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        safejson.loads(data, max_bytes=100)


def test_bounded_json_counts_brackets_in_strings_as_text() -> None:
    assert safejson.loads(json.dumps({"a": "[" * 100}), max_bytes=1000) == {"a": "[" * 100}
