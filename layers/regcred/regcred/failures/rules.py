"""Normalisation and the ordered rules of :func:`classify` (the order is the package docstring's)."""

from __future__ import annotations

import re

from . import patterns as p
from .classes import FailureClass

# Real reasons are at most a few KiB; anything bigger is pasted logs. Keeping the head and the
# tail bounds the work per message while keeping both the wrapper (head) and the cause (tail).
_HEAD_CHARS = 16_384
_TAIL_CHARS = 4_096

# Batch stores at most this many characters of a reason: a reason of exactly this length was cut.
BATCH_REASON_LIMIT = 255

# The ECS agent writes U+2019 in "can't"; pasted text brings the rest. Dashes and odd spaces are
# folded too so a Harbor repository name or a console copy does not split a phrase.
_TRANSLATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u2026": "...",
        "\u200b": "",
        "\ufeff": "",
    }
)
# kubectl's table output wraps a long event message inside box-drawing borders ("repositor │\n│ y"):
# the border pair is where one word was split.
_BOX_WRAP = re.compile(r"[ \t]*\u2502[ \t]*\r?\n[ \t]*\u2502[ \t]?")
# Log lines carry the message JSON- or Go-quoted: literal \n, \t, \" and \u0027 escapes.
_ESCAPED_SPACE = re.compile(r"\\+[nrt]")
_ESCAPED_QUOTE = re.compile(r"\\+\"")
_UNICODE_QUOTE = re.compile(r"\\u0027")
_WHITESPACE = re.compile(r"\s+")
_CUT_MARK = "..."
# Only the end of the text is searched for the stub: an anchored search over a long run of
# letters would otherwise be quadratic.
_LAST_WORD = re.compile(r"([a-z_]{4,})$")
_STUB_WINDOW = 32

# When Batch cuts a reason mid-word, the stub of a deciding word is all that is left
# ("... 401 Unauthor..."). Only these words are completed, and only at a cut.
_CUT_COMPLETIONS = (
    "unauthorized",
    "forbidden",
    "toomanyrequests",
    "timeout",
    "deadline",
    "unknown",
    "denied",
    "platform",
    "descriptor",
)
# Where the ambiguous wording stood, so the words around it can be judged on their own.
_GAP = " | "


def normalise(message: str) -> str:
    """Fold a reason into the form the patterns expect.

    Curly quotes and dashes become ASCII, escaped newlines and quotes of log lines are unescaped,
    kubectl's box-drawn wraps are rejoined, every run of whitespace (newlines from console copies
    included) becomes one space and case is folded. At a cut (a trailing ``...``, Batch's marker, or a
    reason exactly as long as Batch keeps) the marker is dropped and, when the cut split one of a few
    deciding words, the word is completed.
    """
    cut = len(message) == BATCH_REASON_LIMIT
    if len(message) > _HEAD_CHARS + _TAIL_CHARS:
        message = message[:_HEAD_CHARS] + " " + message[-_TAIL_CHARS:]
    text = _BOX_WRAP.sub("", message.translate(_TRANSLATION))
    text = _UNICODE_QUOTE.sub("'", text)
    text = _ESCAPED_QUOTE.sub('"', text)
    text = _ESCAPED_SPACE.sub(" ", text)
    text = _WHITESPACE.sub(" ", text).strip().casefold()
    if text.endswith(_CUT_MARK):
        text = text[: -len(_CUT_MARK)].rstrip()
        cut = True
    if not cut:
        return text
    stub = _LAST_WORD.search(text[-_STUB_WINDOW:])
    if stub is not None:
        for word in _CUT_COMPLETIONS:
            if word.startswith(stub.group(1)) and word != stub.group(1):
                return text + word[len(stub.group(1)) :]
    return text


def _secret_stage(text: str) -> FailureClass | None:
    if p.SECRET_FORMAT_OWN.search(text):
        return FailureClass.SECRET_FORMAT
    if not p.SECRET_STAGE.search(text):
        return None
    if p.ECR_AUTH_STAGE.search(text) and not p.SECRET_SOURCE.search(text):
        return None  # the execution role's ECR token, not a secret: the cause decides below
    if p.SECRET_FORMAT_IN_STAGE.search(text):
        return FailureClass.SECRET_FORMAT
    return FailureClass.SECRET_RETRIEVAL


def _pull(text: str) -> FailureClass:
    # Steps 5 to 12 of the package docstring.
    if p.PROXY_FAILURE.search(text):
        return FailureClass.NETWORK
    text = p.SOCKET_REFUSED.sub("connect: eacces", text)
    unhedged = p.NO_CREDENTIALS_HEDGE.sub(_GAP, text)
    hedged = unhedged != text
    details = p.AMBIGUOUS.sub(_GAP, unhedged)
    ambiguous = not hedged and details != text
    if p.NOT_FOUND_CODE.search(details):
        return FailureClass.NOT_FOUND
    if (
        p.NOT_FOUND_GRPC.search(text)
        and p.ANONYMOUS_RETRY.search(text)
        and not p.CREDENTIALED_REFUSAL.search(text)
    ):
        return FailureClass.NOT_FOUND
    if p.AUTH_EXPLICIT.search(details):
        return FailureClass.AUTH
    if ambiguous:
        if p.NOT_FOUND_DETAIL.search(details):
            return FailureClass.NOT_FOUND
        return FailureClass.AUTH_OR_NOT_FOUND
    non_credential = p.NON_CREDENTIAL_STATUS.search(p.DAEMON_API_STATUS.sub(_GAP, text)) is not None
    if p.AUTH_DIRECT.search(text) and not non_credential:
        return FailureClass.AUTH
    if p.NOT_FOUND.search(text) and not hedged:
        return FailureClass.NOT_FOUND
    if p.NETWORK.search(p.GATEWAY_TIMEOUT.sub("gateway-5xx", text)):
        return FailureClass.NETWORK
    if hedged or p.AUTH_OR_NOT_FOUND_HINT.search(text):
        return FailureClass.AUTH_OR_NOT_FOUND
    if p.AUTH_TOKEN.search(text) and not non_credential:
        return FailureClass.AUTH
    return FailureClass.OTHER


def classify(message: str | None) -> FailureClass:
    """Return the one class a stopped job's or task's reason text belongs to.

    ``None``, empty and whitespace-only text is ``other``. See the package docstring for the
    precedence between classes.
    """
    if not message or message.isspace():
        return FailureClass.OTHER
    text = p.LOCAL_CACHE_MISS.sub(_GAP, normalise(message))
    secret = _secret_stage(text)
    if secret is not None:
        return secret
    if p.PLATFORM.search(text):
        return FailureClass.PLATFORM_MISMATCH
    if p.OTHER_STAGE.search(text):
        return FailureClass.OTHER
    if p.RATE_LIMIT.search(text):
        return FailureClass.RATE_LIMIT
    return _pull(text)
