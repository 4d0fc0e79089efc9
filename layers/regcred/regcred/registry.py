"""Docker Registry v2 / OCI distribution auth client: proves that a credential can pull.

`RegistryClient.check_pull` walks the registry's own auth flow (``GET /v2/`` challenge, Basic or
Bearer token, ``HEAD`` of each manifest) with the guards a credential needs: the token realm must be
trusted before the credential is sent, ``Authorization`` never follows a redirect to another origin,
every request has a timeout and retries are bounded. Nothing secret ends up in an exception, a log
line or an `ImageCheck.detail`.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from urllib.parse import urljoin, urlsplit

import requests
import requests.auth
from requests.structures import CaseInsensitiveDict

from regcred import __version__
from regcred.errors import ChallengeParseError, RegistryError, UntrustedRealmError

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "MAX_CHALLENGE_HEADER_LENGTH",
    "Challenge",
    "Credential",
    "ImageCheck",
    "ImageRef",
    "PullCheck",
    "PullStatus",
    "RegistryClient",
    "parse_www_authenticate",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credential:
    """A registry username and password (or token); the password never appears in repr/str."""

    username: str
    password: str = field(repr=False)


# ---------------------------------------------------------------------------------------------------
# WWW-Authenticate (RFC 9110 §11.6.1)
# ---------------------------------------------------------------------------------------------------

MAX_CHALLENGE_HEADER_LENGTH = 16 * 1024
# Bounds the work a hostile server can cause with many (possibly empty) header lines.
_MAX_HEADER_VALUES = 64

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
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
            mv = _TOKEN_RE.match(self.s, self.i)
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
        sample = _redact_header(", ".join(texts)[:200])
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
                f"{_redact_header(text)}"
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


def _redact_header(text: str, limit: int = 400) -> str:
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


# ---------------------------------------------------------------------------------------------------
# Hosts and URLs
# ---------------------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"https": 443, "http": 80}
_DOCKER_HUB = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT_RE = re.compile(r"[0-9]{1,5}")


def _split_host_port(text: str) -> tuple[str, int | None] | None:
    """'host', 'host:port', '[v6]' or '[v6]:port' -> (lower-case host, port); None if invalid."""
    if len(text) > 260:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
        if _HOSTNAME_RE.fullmatch(host) is None:
            return None
        host = host.lower()
    if port_text is None:
        return host, None
    if _PORT_RE.fullmatch(port_text) is None or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


def _is_forbidden_ip(host: str) -> bool:
    """Link-local (cloud metadata at 169.254.169.254, ECS at 169.254.170.2) and the like: never a target."""
    ip = _ip(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip is not None and (ip.is_link_local or ip.is_multicast or ip.is_unspecified)


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _origin_of(url: str) -> _Origin | None:
    """The origin of an absolute http(s) URL without user info; None for anything else."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    hp = _split_host_port(parts.netloc)
    if hp is None:
        return None
    host, port = hp
    return _Origin(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])


def _describe_url(url: str) -> str:
    """scheme://host[:port]/path of a URL for messages: no user info, no query."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        text = f"{parts.scheme}://{netloc}{parts.path}"
    except ValueError:
        text = "<unparseable URL>"
    text = "".join(c if 0x20 < ord(c) < 0x7F else "?" for c in text)
    return text[:160] + ("..." if len(text) > 160 else "")


# ---------------------------------------------------------------------------------------------------
# Image references
# ---------------------------------------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_IMAGE_FORM = (
    "expected [registry[:port]/]repository[:tag] or [registry[:port]/]repository@sha256:<64 hex>, "
    "e.g. 'acme/app:1.2' or 'ghcr.io/acme/app@sha256:...'"
)


def _valid_digest(text: str) -> bool:
    if _DIGEST_RE.fullmatch(text) is None:
        return False
    algorithm, _, encoded = text.partition(":")
    want = _DIGEST_HEX_LENGTHS.get(algorithm)
    return want is None or (len(encoded) == want and re.fullmatch(r"[a-f0-9]+", encoded) is not None)


def _normalise_registry(text: str) -> str | None:
    hp = _split_host_port(text)
    if hp is None:
        return None
    host, port = hp
    if host in _DOCKER_HUB_ALIASES and port in (None, 443):
        return _DOCKER_HUB
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _ref_for_message(ref: str) -> str:
    text = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in ref[:200])
    # "user:password@host/repo" is a plausible slip: never echo what precedes a non-digest '@'.
    _, sep, tail = text.rpartition("@")
    if sep and re.match(r"(sha256|sha384|sha512|blake3):", tail) is None:
        text = _REDACTED + "@" + tail
    return repr(text)


@dataclass(frozen=True)
class ImageRef:
    """A validated image reference on one registry."""

    registry: str
    repository: str
    reference: str

    def __post_init__(self) -> None:
        # Validated here too so that a directly constructed ImageRef cannot smuggle a path into a URL.
        if _split_host_port(self.registry) is None:
            raise RegistryError(f"invalid registry {self.registry[:100]!r}: expected host[:port]")
        if len(self.repository) > 255 or _REPOSITORY_RE.fullmatch(self.repository) is None:
            raise RegistryError(
                f"invalid repository {self.repository[:100]!r}: expected lower-case path components "
                "like 'acme/app'"
            )
        if _TAG_RE.fullmatch(self.reference) is None and not _valid_digest(self.reference):
            raise RegistryError(
                f"invalid tag or digest {self.reference[:100]!r}: expected a tag like '1.2' "
                "or sha256:<64 hex>"
            )

    @classmethod
    def parse(cls, ref: str, default_registry: str) -> ImageRef:
        """Parse "[registry[:port]/]repository[:tag|@digest]"; Docker Hub names are normalised."""
        if (
            not isinstance(ref, str)
            or not ref
            or len(ref) > 512
            or any(not 0x21 <= ord(c) < 0x7F for c in ref)
        ):
            shown = _ref_for_message(ref) if isinstance(ref, str) else type(ref).__name__
            raise RegistryError(f"invalid image reference {shown}: {_IMAGE_FORM}")

        def invalid(why: str) -> RegistryError:
            return RegistryError(f"invalid image reference {_ref_for_message(ref)} ({why}): {_IMAGE_FORM}")

        name, at, digest = ref.partition("@")
        if at and not _valid_digest(digest):
            raise invalid("bad digest")
        slash, colon = name.rfind("/"), name.rfind(":")
        tag: str | None = None
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if _TAG_RE.fullmatch(tag) is None:
                raise invalid("bad tag")
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry_text, repository = first, rest
        else:
            default = default_registry
            if "://" in default:
                default = default.split("://", 1)[1].rstrip("/")
            registry_text, repository = default, name
        registry = _normalise_registry(registry_text)
        if registry is None:
            raise invalid("bad registry host")
        if registry == _DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if len(repository) > 255 or _REPOSITORY_RE.fullmatch(repository) is None:
            raise invalid("bad repository name; lower-case only")
        # A digest pins the content; a tag next to it is informational only (as in docker).
        return cls(registry=registry, repository=repository, reference=digest if at else (tag or "latest"))

    def __str__(self) -> str:
        sep = "@" if ":" in self.reference else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


# ---------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------


class PullStatus(StrEnum):
    """What a manifest HEAD with the credential proved."""

    OK = "ok"
    CREDENTIALS_REJECTED = "credentials_rejected"
    NO_ACCESS = "no_access"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ImageCheck:
    """The outcome for one image; `detail` is short human text and never holds a secret."""

    image: str
    status: PullStatus
    detail: str
    http_status: int | None = None
    ratelimit_remaining: str | None = None
    ratelimit_limit: str | None = None


@dataclass(frozen=True)
class PullCheck:
    """The outcome of `RegistryClient.check_pull` for a set of images on one registry."""

    registry: str
    images: tuple[ImageCheck, ...]

    @property
    def ok(self) -> bool:
        """True when every image could be pulled (False when there was nothing to check)."""
        return bool(self.images) and all(i.status is PullStatus.OK for i in self.images)

    @property
    def credentials_rejected(self) -> bool:
        """True when the registry or its token server refused the credential for any image."""
        return any(i.status is PullStatus.CREDENTIALS_REJECTED for i in self.images)

    @property
    def could_not_check(self) -> bool:
        """True when any image could not be checked (unreachable or rate limited): retry later."""
        return any(i.status in (PullStatus.UNREACHABLE, PullStatus.RATE_LIMITED) for i in self.images)


# ---------------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------------

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({502, 503, 504})
_MAX_TOKEN_BODY = 1024 * 1024
_DEFAULT_EXPIRES_IN = 60.0
_BACKOFF_BASE = 0.25
_BACKOFF_MAX = 4.0
_USER_AGENT = f"regcred/{__version__}"
_TOKEN_CHARS_RE = re.compile(r"[\x21-\x7e]{1,8192}")
_ERROR_CODE_RE = re.compile(r"[a-z_]{1,40}")
_HEADER_TEXT_RE = re.compile(r"[\x20-\x7e]{1,64}")

_Flow = Literal["anonymous", "basic", "bearer"]


class _Unreachable(Exception):
    """Internal: the request could not complete; `detail` is safe to show."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _ExactAuth(requests.auth.AuthBase):
    """Sets exactly this Authorization (or none): keeps session.auth and ~/.netrc out of our requests."""

    def __init__(self, value: str | None) -> None:
        self._value = value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        if self._value is not None:
            r.headers["Authorization"] = self._value
        return r

    def __repr__(self) -> str:
        return "_ExactAuth(<redacted>)"


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes
    body_too_large: bool = False


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float


@dataclass(frozen=True)
class _Failure:
    """A status that applies to every image still to check (token refused, registry down, ...)."""

    status: PullStatus
    detail: str
    http_status: int | None = None
    ratelimit_remaining: str | None = None
    ratelimit_limit: str | None = None

    def for_image(self, ref: ImageRef) -> ImageCheck:
        return ImageCheck(
            str(ref),
            self.status,
            self.detail,
            self.http_status,
            self.ratelimit_remaining,
            self.ratelimit_limit,
        )


def _header_text(headers: CaseInsensitiveDict[str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value if _HEADER_TEXT_RE.fullmatch(value) else None


def _basic_authorization(credential: Credential) -> str:
    if ":" in credential.username:
        raise RegistryError("the username contains ':', which HTTP Basic authentication cannot carry")
    raw = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _bearer_error(headers: CaseInsensitiveDict[str]) -> str | None:
    """The `error` param of a Bearer challenge (e.g. insufficient_scope), if sane."""
    header = headers.get("WWW-Authenticate")
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


def _read_limited(resp: requests.Response, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_content(chunk_size=16 * 1024):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after_note(reply: _Reply) -> str:
    after = RegistryClient._retry_after(reply.headers)
    return "" if after is None else f", retry after {after:.0f} s"


def _describe_exception(exc: requests.RequestException) -> str:
    # Only the class of failure: requests' messages carry URLs, which we keep out of details.
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broken"
    return "connection failed"


class RegistryClient:
    """Checks whether a credential can pull images from one registry (Docker Registry v2 / OCI)."""

    def __init__(
        self,
        registry: str,
        *,
        realm_hosts: Iterable[str] = (),
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
        max_attempts: int = 3,
        max_retry_after: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`registry` is "host[:port]", "https://host[:port]" or, for loopback only, "http://...".

        `realm_hosts` are extra token-realm hosts to trust ("host" = the realm scheme's default port,
        or "host:port"), normally the secret's `regcred:realm-hosts` tag.
        """
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_retry_after < 0:
            raise ValueError("max_retry_after must not be negative")
        self._origin = self._parse_registry(registry)
        netloc = _normalise_registry(self._origin.netloc)
        self.registry: str = netloc if netloc is not None else self._origin.netloc
        if self.registry == _DOCKER_HUB:
            self._origin = _Origin("https", _DOCKER_HUB, 443)
        self._realm_hosts = self._parse_realm_hosts(realm_hosts)
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        # Monotonic clock for token lifetimes; replaceable in tests.
        self._clock: Callable[[], float] = time.monotonic

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- configuration -----------------------------------------------------------------------------

    @staticmethod
    def _parse_registry(registry: str) -> _Origin:
        text = registry.strip()
        if "://" in text:
            scheme, _, rest = text.partition("://")
            scheme = scheme.lower()
            rest = rest[:-1] if rest.endswith("/") else rest
        else:
            scheme, rest = "", text
        hp = _split_host_port(rest)
        if hp is None or scheme not in ("", "http", "https"):
            raise RegistryError(
                f"invalid registry {_describe_url(registry) if '://' in registry else repr(registry[:100])}: "
                "expected host[:port], https://host[:port], or http://host[:port] for a loopback host"
            )
        host, port = hp
        if not scheme:
            # Plain http is only ever acceptable on loopback, where test registries live.
            scheme = "http" if _is_loopback(host) else "https"
        if scheme == "http" and not _is_loopback(host):
            raise RegistryError(
                f"refusing plain http to registry {host!r}: credentials would travel in clear text; "
                "use https (http is only allowed for loopback hosts)"
            )
        if _is_forbidden_ip(host):
            raise RegistryError(
                f"refusing registry {host!r}: link-local and similar addresses are not registries"
            )
        return _Origin(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])

    @staticmethod
    def _parse_realm_hosts(entries: Iterable[str]) -> frozenset[tuple[str, int | None]]:
        if isinstance(entries, str):
            # A tag value passed as is: "auth.docker.io, other:8443".
            entries = re.split(r"[\s,]+", entries)
        parsed: set[tuple[str, int | None]] = set()
        for entry in entries:
            text = entry.strip()
            if not text:
                continue
            hp = _split_host_port(text)
            if hp is None:
                raise RegistryError(f"invalid realm host {text[:100]!r}: expected host or host:port")
            parsed.add(hp)
        return frozenset(parsed)

    def _check_realm(self, realm: str) -> str:
        """The realm URL if the credential may be sent there; else UntrustedRealmError."""
        origin = _origin_of(realm)
        if origin is None:
            raise UntrustedRealmError(
                f"token realm {_describe_url(realm)!r} is not an absolute https URL without user info; "
                "the credential was not sent"
            )
        if origin.scheme == "http" and not _is_loopback(origin.host):
            raise UntrustedRealmError(
                f"token realm host {origin.host_port!r} uses plain http; realms must use https "
                "(http only on loopback); the credential was not sent"
            )
        if _is_forbidden_ip(origin.host):
            raise UntrustedRealmError(
                f"token realm host {origin.host_port!r} is a link-local/metadata address, never trusted; "
                "the credential was not sent"
            )
        default_port = _DEFAULT_PORTS[origin.scheme]
        trusted = (origin.host, origin.port) == (self._origin.host, self._origin.port) or any(
            host == origin.host and (port if port is not None else default_port) == origin.port
            for host, port in self._realm_hosts
        )
        if not trusted:
            suggestion = origin.netloc
            raise UntrustedRealmError(
                f"token realm host {origin.host_port!r} is not trusted for registry {self.registry!r}; "
                f"the credential was not sent. If it is this registry's genuine token service, add "
                f"{suggestion!r} to the secret's regcred:realm-hosts tag."
            )
        return realm.split("#", 1)[0]

    def _resolve_images(self, images: Sequence[str | ImageRef]) -> list[ImageRef]:
        if isinstance(images, str):
            raise RegistryError("images must be a list of image references, not a single string")
        refs: list[ImageRef] = []
        for image in images:
            ref = image if isinstance(image, ImageRef) else ImageRef.parse(image, self.registry)
            hp = _split_host_port(ref.registry)
            assert hp is not None  # ImageRef validated it
            host, port = hp
            if host in _DOCKER_HUB_ALIASES and port in (None, 443):
                host = _DOCKER_HUB
            effective = port if port is not None else _DEFAULT_PORTS[self._origin.scheme]
            if (host, effective) != (self._origin.host, self._origin.port):
                raise RegistryError(
                    f"image {str(ref)!r} is not on registry {self.registry!r}: check one registry at a time"
                )
            refs.append(ref)
        return refs

    # -- HTTP --------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self._origin.scheme}://{self._origin.netloc}{path}"

    def _backoff(self, attempt: int) -> float:
        return float(min(_BACKOFF_MAX, _BACKOFF_BASE * 2 ** (attempt - 1)))

    @staticmethod
    def _retry_after(headers: CaseInsensitiveDict[str]) -> float | None:
        value = (headers.get("Retry-After") or "").strip()
        if not value:
            return None
        if re.fullmatch(r"[0-9]{1,12}", value):
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    def _retry_wait(self, reply: _Reply, attempt: int) -> float | None:
        """Seconds to wait before retrying this reply, or None to accept it as final."""
        if attempt >= self._max_attempts:
            return None
        if reply.status in _RETRY_STATUSES:
            after = self._retry_after(reply.headers)
            if after is None:
                return self._backoff(attempt)
            return after if after <= self._max_retry_after else None
        if reply.status == 429:
            after = self._retry_after(reply.headers)
            # Without a usable Retry-After (Docker Hub's windows are hours long) waiting proves nothing.
            return after if after is not None and after <= self._max_retry_after else None
        return None

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        authorization: str | None = None,
        params: list[tuple[str, str]] | None = None,
        accept: str | None = None,
        read_limit: int = 0,
    ) -> _Reply:
        """One logical request with bounded retries; raises _Unreachable when it cannot complete."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                reply = self._follow(method, url, authorization, params, accept, read_limit)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                if attempt >= self._max_attempts:
                    raise _Unreachable(f"{_describe_exception(exc)} after {attempt} attempt(s)") from None
                self._sleep(self._backoff(attempt))
                continue
            except requests.RequestException as exc:
                raise _Unreachable(f"protocol error ({type(exc).__name__})") from None
            wait = self._retry_wait(reply, attempt)
            if wait is None:
                return reply
            logger.debug("registry answered HTTP %s; retrying in %.2f s", reply.status, wait)
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _follow(
        self,
        method: str,
        url: str,
        authorization: str | None,
        params: list[tuple[str, str]] | None,
        accept: str | None,
        read_limit: int,
    ) -> _Reply:
        """Send, following at most _MAX_REDIRECTS redirects ourselves: requests' own handling would
        let us neither vet the target nor guarantee Authorization stays on its origin."""
        first = _origin_of(url)
        current = url
        headers = {"User-Agent": _USER_AGENT}
        if accept is not None:
            headers["Accept"] = accept
        for hop in range(_MAX_REDIRECTS + 1):
            resp = self._session.request(
                method,
                current,
                params=params if hop == 0 else None,
                headers=headers,
                auth=_ExactAuth(authorization),
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
            try:
                location = resp.headers.get("Location")
                if resp.status_code in _REDIRECT_STATUSES and location:
                    if hop == _MAX_REDIRECTS:
                        raise _Unreachable(f"protocol error: more than {_MAX_REDIRECTS} redirects")
                    target = urljoin(resp.url, location.strip())
                    origin = _origin_of(target)
                    if origin is None or (origin.scheme == "http" and not _is_loopback(origin.host)):
                        raise RegistryError(
                            f"refusing redirect to {_describe_url(target)!r}: only https targets (http on "
                            "loopback) are followed"
                        )
                    if _is_forbidden_ip(origin.host):
                        raise RegistryError(
                            f"refusing redirect to link-local/metadata address {origin.host_port!r}"
                        )
                    if origin != first:
                        # Once dropped, never restored: a later hop back cannot re-arm the credential.
                        authorization = None
                    current = target.split("#", 1)[0]
                    continue
                body = b""
                too_large = False
                if read_limit and method != "HEAD":
                    read = _read_limited(resp, read_limit)
                    too_large = read is None
                    body = read or b""
                return _Reply(resp.status_code, resp.headers, body, too_large)
            finally:
                resp.close()
        raise AssertionError("unreachable: the loop returns, continues or raises")

    # -- flows -------------------------------------------------------------------------------------

    def check_pull(self, credential: Credential | None, images: Sequence[str | ImageRef]) -> PullCheck:
        """Prove whether `credential` (None: anonymous) can pull each image (manifest HEAD).

        Returns one ImageCheck per image, in order. Raises RegistryError for images on another
        registry or an unsafe redirect, and UntrustedRealmError (before sending anything secret)
        when the token realm is not trusted.
        """
        refs = self._resolve_images(images)
        if credential is not None:
            _basic_authorization(credential)  # fail early on a username Basic cannot carry
        unique = list(dict.fromkeys(refs))
        if not unique:
            return PullCheck(self.registry, ())
        results = self._check_unique(credential, unique)
        by_ref = dict(zip(unique, results, strict=True))
        return PullCheck(self.registry, tuple(by_ref[ref] for ref in refs))

    def _check_unique(self, credential: Credential | None, refs: list[ImageRef]) -> list[ImageCheck]:
        try:
            probe = self._exchange("GET", self._url("/v2/"))
        except _Unreachable as exc:
            return [_Failure(PullStatus.UNREACHABLE, f"GET /v2/: {exc.detail}").for_image(r) for r in refs]
        if probe.status == 200:
            return self._anonymous_flow(credential, refs)
        if probe.status == 401:
            return self._challenge_flow(probe.headers, credential, refs, "/v2/")
        failure = self._failure_from_status(probe, "GET /v2/")
        return [failure.for_image(r) for r in refs]

    @staticmethod
    def _failure_from_status(reply: _Reply, what: str) -> _Failure:
        remaining = _header_text(reply.headers, "ratelimit-remaining")
        limit = _header_text(reply.headers, "ratelimit-limit")
        if reply.status == 429:
            return _Failure(
                PullStatus.RATE_LIMITED,
                f"{what}: rate limited (HTTP 429{_retry_after_note(reply)})",
                429,
                remaining,
                limit,
            )
        if reply.status >= 500:
            return _Failure(
                PullStatus.UNREACHABLE, f"{what}: server error (HTTP {reply.status})", reply.status
            )
        return _Failure(
            PullStatus.UNREACHABLE,
            f"{what}: protocol error (unexpected HTTP {reply.status})",
            reply.status,
            remaining,
            limit,
        )

    def _challenge_flow(
        self,
        headers: CaseInsensitiveDict[str],
        credential: Credential | None,
        refs: list[ImageRef],
        where: str,
    ) -> list[ImageCheck]:
        header = headers.get("WWW-Authenticate")
        if not header:
            failure = _Failure(
                PullStatus.UNREACHABLE, f"{where}: protocol error (HTTP 401 without challenge)", 401
            )
            return [failure.for_image(r) for r in refs]
        try:
            challenges = parse_www_authenticate(header)
        except ChallengeParseError:
            failure = _Failure(
                PullStatus.UNREACHABLE, f"{where}: protocol error (malformed WWW-Authenticate)", 401
            )
            return [failure.for_image(r) for r in refs]
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            return self._bearer_flow(bearer, credential, refs)
        if any(c.scheme == "basic" for c in challenges):
            return self._basic_flow(credential, refs)
        schemes = ", ".join(sorted({c.scheme[:20] for c in challenges})[:5]) or "none"
        failure = _Failure(
            PullStatus.UNREACHABLE, f"{where}: protocol error (unsupported auth scheme: {schemes})", 401
        )
        return [failure.for_image(r) for r in refs]

    def _head_manifest(self, ref: ImageRef, authorization: str | None) -> _Reply:
        return self._exchange(
            "HEAD",
            self._url(f"/v2/{ref.repository}/manifests/{ref.reference}"),
            authorization=authorization,
            accept=", ".join(MANIFEST_MEDIA_TYPES),
        )

    def _anonymous_flow(self, credential: Credential | None, refs: list[ImageRef]) -> list[ImageCheck]:
        results: dict[ImageRef, ImageCheck] = {}
        challenged: list[ImageRef] = []
        challenge_headers: CaseInsensitiveDict[str] | None = None
        for ref in refs:
            try:
                reply = self._head_manifest(ref, None)
            except _Unreachable as exc:
                results[ref] = _Failure(PullStatus.UNREACHABLE, exc.detail).for_image(ref)
                continue
            if reply.status == 401 and reply.headers.get("WWW-Authenticate"):
                # /v2/ is open but this repository wants auth: take its challenge for all such images.
                challenged.append(ref)
                challenge_headers = challenge_headers or reply.headers
                continue
            results[ref] = self._image_result(ref, reply, "anonymous", anonymous=credential is None)
        if challenged and challenge_headers is not None:
            for ref, check in zip(
                challenged,
                self._challenge_flow(challenge_headers, credential, challenged, "manifest"),
                strict=True,
            ):
                results[ref] = check
        return [results[ref] for ref in refs]

    def _basic_flow(self, credential: Credential | None, refs: list[ImageRef]) -> list[ImageCheck]:
        authorization = _basic_authorization(credential) if credential is not None else None
        out: list[ImageCheck] = []
        for ref in refs:
            try:
                reply = self._head_manifest(ref, authorization)
            except _Unreachable as exc:
                out.append(_Failure(PullStatus.UNREACHABLE, exc.detail).for_image(ref))
                continue
            out.append(self._image_result(ref, reply, "basic", anonymous=credential is None))
        return out

    def _bearer_flow(
        self, challenge: Challenge, credential: Credential | None, refs: list[ImageRef]
    ) -> list[ImageCheck]:
        realm = challenge.params.get("realm")
        if not realm:
            failure = _Failure(PullStatus.UNREACHABLE, "protocol error (Bearer challenge without realm)", 401)
            return [failure.for_image(r) for r in refs]
        realm_url = self._check_realm(realm)
        service = challenge.params.get("service")
        scopes = list(dict.fromkeys(f"repository:{r.repository}:pull" for r in refs))
        token = self._fetch_token(realm_url, service, scopes, credential)
        out: list[ImageCheck] = []
        for ref in refs:
            if isinstance(token, _Token) and self._clock() >= token.refresh_at:
                token = self._fetch_token(realm_url, service, scopes, credential)
            if isinstance(token, _Failure):
                out.append(token.for_image(ref))
                continue
            try:
                reply = self._head_manifest(ref, f"Bearer {token.value}")
            except _Unreachable as exc:
                out.append(_Failure(PullStatus.UNREACHABLE, exc.detail).for_image(ref))
                continue
            out.append(self._image_result(ref, reply, "bearer"))
        return out

    def _fetch_token(
        self, realm_url: str, service: str | None, scopes: list[str], credential: Credential | None
    ) -> _Token | _Failure:
        # One request for every scope: what the rotation must prove is this token's reach.
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", scope) for scope in scopes)
        if credential is not None:
            params.append(("account", credential.username))
        try:
            reply = self._exchange(
                "GET",
                realm_url,
                authorization=_basic_authorization(credential) if credential is not None else None,
                params=params,
                read_limit=_MAX_TOKEN_BODY,
            )
        except _Unreachable as exc:
            return _Failure(PullStatus.UNREACHABLE, f"token endpoint: {exc.detail}")
        if reply.status in (401, 403):
            who = "the credential" if credential is not None else "anonymous access"
            return _Failure(
                PullStatus.CREDENTIALS_REJECTED,
                f"token endpoint refused {who} (HTTP {reply.status})",
                reply.status,
            )
        if reply.status != 200:
            return self._failure_from_status(reply, "token endpoint")
        value, expires_in = self._token_from_body(reply)
        if value is None:
            return _Failure(PullStatus.UNREACHABLE, "token endpoint: protocol error (no usable token)", 200)
        return _Token(value, self._clock() + max(1.0, expires_in - min(10.0, expires_in / 2)))

    @staticmethod
    def _token_from_body(reply: _Reply) -> tuple[str | None, float]:
        if reply.body_too_large:
            return None, 0.0
        try:
            data = json.loads(reply.body)
        except (ValueError, RecursionError):
            return None, 0.0
        if not isinstance(data, dict):
            return None, 0.0
        value: object = data.get("token") or data.get("access_token")
        # The token goes into a header: refuse anything that could split or bloat it.
        if not isinstance(value, str) or _TOKEN_CHARS_RE.fullmatch(value) is None:
            return None, 0.0
        expires_in = data.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not expires_in > 0:
            expires_in = _DEFAULT_EXPIRES_IN
        return value, float(min(expires_in, 86400.0))

    def _image_result(
        self, ref: ImageRef, reply: _Reply, flow: _Flow, *, anonymous: bool = False
    ) -> ImageCheck:
        status = reply.status
        remaining = _header_text(reply.headers, "ratelimit-remaining")
        limit = _header_text(reply.headers, "ratelimit-limit")

        def check(pull: PullStatus, detail: str) -> ImageCheck:
            return ImageCheck(str(ref), pull, detail, status, remaining, limit)

        if status == 200:
            if flow == "anonymous" and not anonymous:
                # Honest about what was proven: an open registry never looked at the credential.
                return check(PullStatus.OK, "manifest found anonymously (credential not exercised)")
            return check(PullStatus.OK, "manifest found")
        if status == 404:
            return check(PullStatus.NOT_FOUND, "manifest or repository unknown (HTTP 404)")
        if status == 429:
            return check(
                PullStatus.RATE_LIMITED, f"rate limited by the registry (HTTP 429{_retry_after_note(reply)})"
            )
        if status in (401, 403):
            if flow == "bearer":
                error = _bearer_error(reply.headers)
                suffix = f", error={error}" if error else ""
                return check(PullStatus.NO_ACCESS, f"token does not grant pull (HTTP {status}{suffix})")
            if flow == "basic" and status == 401:
                who = "the credential" if not anonymous else "anonymous access"
                return check(PullStatus.CREDENTIALS_REJECTED, f"registry refused {who} (HTTP 401)")
            if status == 403:
                return check(PullStatus.NO_ACCESS, "no pull access on this repository (HTTP 403)")
            return check(PullStatus.UNREACHABLE, "protocol error (HTTP 401 without challenge)")
        if status >= 500:
            return check(PullStatus.UNREACHABLE, f"registry server error (HTTP {status})")
        return check(PullStatus.UNREACHABLE, f"protocol error (unexpected HTTP {status})")
