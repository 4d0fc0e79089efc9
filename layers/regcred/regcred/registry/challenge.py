"""WWW-Authenticate parsing (RFC 9110 §11.6.1) and redaction of challenge headers for messages.

The parser is strict and linear: several challenges per value, quoted-strings with escapes,
case-insensitive names, token68. Anything malformed or hostile raises `ChallengeParseError`, whose
message quotes the header with every value that may be secret redacted.

Compared with Docker's parser (docker/distribution registry/client/auth/challenge, which moby vendors; the
cases are in tests/unit/data/challenges.json): for every header real registries send (Docker Hub, GHCR,
GitLab, Quay, Harbor, Artifactory, ACR, ECR, GCR/GAR, Nexus, Gitea, OCIR) the realm, service and scope are
Docker's. Where they part:

- read here, not by Docker: several challenges in one value (Docker reads the first), blanks around '='
  (Docker then drops every parameter), empty list elements, parameters after an empty quoted value
  (Docker stops at it: OCIR's trailing ``scope=""`` is dropped there, kept here), token68;
- accepted beyond RFC 9110, as Docker does: '/' in an unquoted value (``Basic realm=/``, sent by a real
  registry, regclient/regclient#265);
- refused here, read leniently by Docker: duplicate parameters (Docker takes the last), a missing comma,
  trailing junk, ';' separators, unquoted values with ':' (``realm=https://...`` is "https" to Docker),
  empty unquoted values, unterminated quoted-strings, control characters, non-ASCII tokens, parameters
  before any scheme. Each of these has two readings (which realm? a parameter or a new challenge? a cut
  header?) and no registry in the cases sends one; regcred refuses rather than guess where a credential
  goes. Docker is left without a usable realm by most of them anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ChallengeParseError

__all__ = [
    "MAX_CHALLENGE_HEADER_LENGTH",
    "Challenge",
    "bearer_error",
    "parse_www_authenticate",
    "redact_header",
]

MAX_CHALLENGE_HEADER_LENGTH = 16 * 1024
# Bounds the work a hostile server can cause with many (possibly empty) header lines.
_MAX_HEADER_VALUES = 64

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# An unquoted auth-param value: a token, and (leniency) '/' too. Real registries send `Basic realm=/`
# (regclient/regclient#265); Docker (docker/distribution challenge parser) then drops the value and keeps
# the scheme, which is what the pull check needs. ':' stays excluded: an unquoted `realm=https://...` is
# one Docker reads as "https", so regcred refuses it rather than extract a realm Docker would not.
_UNQUOTED_VALUE_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z/]+")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_WS = " \t"


@dataclass(frozen=True)
class Challenge:
    """One auth challenge: lower-cased scheme, lower-cased param names, unescaped values."""

    scheme: str
    params: dict[str, str]
    token68: str | None = None


class _ParseFailure(Exception):
    """Internal: why and where parsing stopped. Never leaves this module (it knows no header text)."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


@dataclass
class _Building:
    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


class _ChallengeParser:
    """Strict single-pass parser of one header value; linear in its length."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0

    def fail(self, reason: str) -> _ParseFailure:
        return _ParseFailure(reason, self.i)

    def skip_ws(self) -> None:
        while self.i < self.n and self.s[self.i] in _WS:
            self.i += 1

    def at_element_end(self) -> bool:
        return self.i >= self.n or self.s[self.i] == ","

    def parse(self) -> list[Challenge]:
        for idx, ch in enumerate(self.s):
            code = ord(ch)
            # Header values are latin-1 text: anything else, or a control character, is hostile.
            if (code < 0x20 and ch != "\t") or code == 0x7F or code > 0xFF:
                self.i = idx
                raise self.fail("control or non-latin-1 character")
        done: list[Challenge] = []
        current: _Building | None = None
        while True:
            # RFC 9110 §5.6.1: a recipient accepts empty list elements.
            while self.i < self.n and self.s[self.i] in _WS + ",":
                self.i += 1
            if self.i >= self.n:
                break
            m = _TOKEN_RE.match(self.s, self.i)
            if m is None:
                raise self.fail("expected an auth scheme or parameter")
            after = m.end()
            k = after
            while k < self.n and self.s[k] in _WS:
                k += 1
            if k < self.n and self.s[k] == "=":
                # "name=value" at the start of a list element continues the current challenge.
                if current is None:
                    raise self.fail("parameter before any auth scheme")
                if current.token68 is not None:
                    raise self.fail("parameter after a token68")
                self.parse_param(current)
                continue
            if current is not None:
                done.append(Challenge(current.scheme, current.params, current.token68))
            current = _Building(scheme=m.group().lower())
            self.i = after
            if self.at_element_end():
                continue
            if self.s[self.i] not in _WS:
                raise self.fail("expected a space after the auth scheme")
            self.skip_ws()
            if self.at_element_end():
                continue
            m68 = _TOKEN68_RE.match(self.s, self.i)
            if m68 is not None:
                e = m68.end()
                while e < self.n and self.s[e] in _WS:
                    e += 1
                if e >= self.n or self.s[e] == ",":
                    current.token68 = m68.group()
                    self.i = e
                    continue
            # Neither token68 nor empty: the first auth-param must follow the scheme directly.
            self.parse_param(current)
        if current is not None:
            done.append(Challenge(current.scheme, current.params, current.token68))
        return done

    def parse_param(self, current: _Building) -> None:
        m = _TOKEN_RE.match(self.s, self.i)
        if m is None:
            raise self.fail("expected a parameter name")
        name = m.group().lower()
        self.i = m.end()
        self.skip_ws()
        if self.i >= self.n or self.s[self.i] != "=":
            raise self.fail("expected '=' after a parameter name")
        self.i += 1
        self.skip_ws()
        if self.i >= self.n:
            raise self.fail("missing parameter value")
        if self.s[self.i] == '"':
            value = self.parse_quoted()
        else:
            mv = _UNQUOTED_VALUE_RE.match(self.s, self.i)
            if mv is None:
                raise self.fail("expected a token or quoted-string value")
            value = mv.group()
            self.i = mv.end()
        if name in current.params:
            # RFC 9110: each parameter name occurs once per challenge; which copy wins is undefined.
            raise self.fail("duplicate parameter")
        current.params[name] = value
        self.skip_ws()
        if not self.at_element_end():
            raise self.fail("expected ',' after a parameter value")

    def parse_quoted(self) -> str:
        start = self.i
        self.i += 1
        out: list[str] = []
        while self.i < self.n:
            ch = self.s[self.i]
            if ch == '"':
                self.i += 1
                return "".join(out)
            if ch == "\\":
                if self.i + 1 >= self.n:
                    raise self.fail("backslash at the end of a quoted-string")
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            out.append(ch)
            self.i += 1
        self.i = start
        raise self.fail("unterminated quoted-string")


def parse_www_authenticate(headers: str | Sequence[str]) -> list[Challenge]:
    """Parse one or several WWW-Authenticate header values into challenges, in order.

    Follows RFC 9110 §11.6.1 (several challenges per value, quoted-strings with escapes,
    case-insensitive names, token68). Raises `ChallengeParseError` for malformed or hostile input;
    its message quotes the header with anything that may be secret redacted.
    """
    if isinstance(headers, str):
        values: list[object] = [headers]
    else:
        try:
            values = list(headers)
        except TypeError:
            raise ChallengeParseError("WWW-Authenticate headers must be a string or strings") from None
    if len(values) > _MAX_HEADER_VALUES:
        raise ChallengeParseError(
            f"too many WWW-Authenticate header values ({len(values)}; at most {_MAX_HEADER_VALUES})"
        )
    texts: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ChallengeParseError("a WWW-Authenticate header value is not a string")
        texts.append(value)
    total = sum(len(t) for t in texts)
    if total > MAX_CHALLENGE_HEADER_LENGTH:
        sample = redact_header(", ".join(texts)[:200])
        raise ChallengeParseError(
            f"WWW-Authenticate header is {total} characters long (at most "
            f"{MAX_CHALLENGE_HEADER_LENGTH}): {sample}"
        )
    challenges: list[Challenge] = []
    for text in texts:
        try:
            challenges.extend(_ChallengeParser(text).parse())
        except _ParseFailure as failure:
            raise ChallengeParseError(
                f"malformed WWW-Authenticate header ({failure.reason} at offset {failure.offset}): "
                f"{redact_header(text)}"
            ) from None
    return challenges


# Only these parameter values are shown in messages; every other value may be a secret.
_SAFE_PARAMS = frozenset({"realm", "service", "scope", "error", "charset", "algorithm", "qop", "stale"})
# Names shown as they are; an unknown "name" may really be a base64 credential followed by "=".
_KNOWN_PARAMS = _SAFE_PARAMS | frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "signature",
        "sig",
        "key",
        "nonce",
        "cnonce",
        "opaque",
        "code",
        "username",
        "userhash",
        "response",
        "error_description",
        "error_uri",
        "domain",
        "type",
        "title",
    }
)
_KNOWN_SCHEMES = frozenset(
    {
        "basic",
        "bearer",
        "digest",
        "negotiate",
        "ntlm",
        "hoba",
        "mutual",
        "vapid",
        "dpop",
        "newauth",
        "scram-sha-1",
        "scram-sha-256",
        "aws4-hmac-sha256",
    }
)
# Lenient tokenizer for messages about headers that may not parse; every alternative is linear.
_REDACT_RE = re.compile(
    r"(?P<ws>[ \t]+)"
    r"|(?P<comma>,)"
    r"|(?P<param>(?P<name>[!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*"
    r'(?P<value>"(?:[^"\\]|\\.)*"?|[^\s,"]*))'
    r'|(?P<quoted>"(?:[^"\\]|\\.)*"?)'
    r'|(?P<word>[^\s,="]+)'
    r"|(?P<other>.)",
    re.DOTALL,
)
_REDACTED = "<redacted>"


def _safe_value(raw: str) -> str:
    if raw.startswith('"'):
        if re.fullmatch(r'"(?:[^"\\]|\\.)*"', raw, re.DOTALL) is None:
            return _REDACTED  # unterminated: it may have swallowed the rest of the header
        inner, quote = raw[1:-1], '"'
    else:
        inner, quote = raw, ""
    if "://" in inner:
        # A realm URL may carry user info or a signed query string.
        inner = re.sub(r"://[^/]*@", "://" + _REDACTED + "@", inner)
        inner = re.sub(r"[?#].*", "?" + _REDACTED, inner, flags=re.DOTALL)
    # Escapes, quotes, '=' or blanks inside a "safe" value hint at a mis-quoted header hiding other
    # params or a token68: show only plain values.
    if any(c in inner for c in '\\"=') or any(not 0x20 < ord(c) < 0x7F for c in inner):
        return _REDACTED
    if len(inner) > 120:
        inner = inner[:120] + "..."
    return f"{quote}{inner}{quote}"


def redact_header(text: str, limit: int = 400) -> str:
    """Quote a header for an error message, showing only fixed vocabulary and non-secret values."""
    parts: list[str] = []
    element_start = True
    for m in _REDACT_RE.finditer(text):
        if m.group("ws") is not None:
            parts.append(" ")
            continue
        if m.group("comma") is not None:
            parts.append(",")
            element_start = True
            continue
        if m.group("param") is not None:
            name = m.group("name")
            lname = name.lower()
            shown_name = name if lname in _KNOWN_PARAMS else _REDACTED
            shown_value = _safe_value(m.group("value")) if lname in _SAFE_PARAMS else _REDACTED
            parts.append(f"{shown_name}={shown_value}")
        elif m.group("word") is not None:
            word = m.group("word")
            parts.append(word if element_start and word.lower() in _KNOWN_SCHEMES else _REDACTED)
        elif m.group("quoted") is not None:
            parts.append(_REDACTED)
        else:
            ch = m.group("other")
            parts.append(ch if 0x20 <= ord(ch) < 0x7F else f"\\x{ord(ch):02x}")
        element_start = False
    out = "".join(parts)
    if len(out) > limit:
        out = out[:limit] + "..."
    return f"'{out}'"


_ERROR_CODE_RE = re.compile(r"[a-z_]{1,40}")


def bearer_error(header: str | None) -> str | None:
    """The ``error`` param of a Bearer challenge (e.g. ``insufficient_scope``), if present and sane."""
    if not header:
        return None
    try:
        challenges = parse_www_authenticate(header)
    except ChallengeParseError:
        return None
    for challenge in challenges:
        error = challenge.params.get("error")
        if challenge.scheme == "bearer" and error and _ERROR_CODE_RE.fullmatch(error):
            return error
    return None
