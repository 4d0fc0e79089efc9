"""The Docker Registry v2 / OCI distribution pull check: proves that a credential can pull.

`RegistryClient.check_pull` walks the registry's own auth flow (``GET /v2/`` challenge, then Basic, or a
Bearer token from the challenge's realm for every repository at once, then ``HEAD`` of each manifest)
over regcred's one transport (`regcred.http.transport`), which enforces the destination, redirect, size
and deadline rules. On top of it this module decides *who* may receive the credential: the registry
itself and the token realms configuration trusts (`trusted_realms`), nothing a server names.

Honest about what was proven: a manifest the registry serves without asking for credentials is
`PullStatus.OPEN`, never OK; with ``prove=True`` (rotation, onboarding, import) every image the credential
pulled is asked for once more anonymously, and one that pulls without credentials is OPEN too.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .. import redact
from ..errors import (
    ChallengeParseError,
    DestinationRefused,
    RegistryError,
    ResponseTooLarge,
    Unreachable,
    UntrustedRealmError,
)
from ..hosts import DEFAULT_PORTS, Origin, describe_url, is_loopback_name, origin_of, split_host_port
from ..http.deadline import Deadline
from ..http.transport import Response, Transport, basic_authorization
from .challenge import Challenge, bearer_error, parse_www_authenticate
from .credential import Credential
from .reference import ImageRef
from .results import ImageCheck, PullCheck, PullStatus

__all__ = ["MANIFEST_MEDIA_TYPES", "Credential", "RegistryClient", "registry_name"]

logger = logging.getLogger(__name__)

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
MAX_TOKEN_BODY = 1024 * 1024
DEFAULT_EXPIRES_IN = 60.0
DEFAULT_CHECK_SECONDS = 60.0
_TOKEN_CHARS_RE = re.compile(r"[\x21-\x7e]{1,8192}")
_HEADER_TEXT_RE = re.compile(r"[\x20-\x7e]{1,64}")

_Flow = Literal["anonymous", "basic", "bearer"]
# What makes an image unchecked rather than the whole check fail: the registry could not be reached, or
# answered beyond regcred's bounds (a hostile or broken server; the answer was dropped).
_COULD_NOT_CHECK = (Unreachable, ResponseTooLarge)


def registry_name(origin: Origin) -> str:
    """How image references name this registry: host[:port], the port left out when it is the default."""
    return origin.netloc


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


def _header_text(reply: Response, name: str) -> str | None:
    value = reply.header(name)
    if value is None:
        return None
    value = value.strip()
    return value if _HEADER_TEXT_RE.fullmatch(value) else None


def _retry_after_note(reply: Response) -> str:
    value = (reply.header("Retry-After") or "").strip()
    return f", retry after {value} s" if value.isascii() and value.isdigit() and len(value) < 10 else ""


class RegistryClient:
    """Checks whether a credential can pull images from one registry."""

    def __init__(
        self,
        registry: Origin,
        *,
        trusted_realms: Iterable[Origin] = (),
        transport: Transport | None = None,
        check_seconds: float = DEFAULT_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``registry`` and ``trusted_realms`` come from configuration (`regcred.routing`), never from a
        server or a secret value."""
        if not isinstance(registry, Origin):
            raise TypeError("registry must be an Origin (see regcred.routing)")
        self.origin = registry
        self.registry = registry_name(registry)
        self._realms = frozenset(trusted_realms) | {registry}
        self._owns_transport = transport is None
        # Only a loopback registry (a local stack) is a local destination; any other registry may never
        # reach loopback addresses, whatever its name resolves to.
        self._transport = transport or Transport(
            local_origins=(registry,) if is_loopback_name(registry.host) else ()
        )
        self._check_seconds = check_seconds
        self._clock = clock

    def close(self) -> None:
        """Close the transport if this client created it."""
        if self._owns_transport:
            self._transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- configuration -----------------------------------------------------------------------------

    def _check_realm(self, realm: str) -> str:
        """The realm URL if the credential may be sent there; else UntrustedRealmError (nothing sent)."""
        origin = origin_of(realm)
        if origin is None:
            raise UntrustedRealmError(
                f"token realm {describe_url(realm)!r} is not an absolute http(s) URL without user info; "
                "the credential was not sent"
            )
        if origin not in self._realms:
            raise UntrustedRealmError(
                f"token realm {origin.host_port!r} is not trusted for registry {self.registry!r}; the "
                "credential was not sent. If it is this registry's genuine token service, add "
                f"{origin.netloc!r} to the deployment's allowed registry hosts "
                "(REGCRED_ALLOWED_REGISTRY_HOSTS) and to the secret's regcred:realm-hosts tag"
            )
        return realm.split("#", 1)[0]

    def on_registry(self, ref: ImageRef) -> bool:
        """Whether an image reference names this registry (host and port)."""
        hp = split_host_port(ref.registry)
        if hp is None:
            return False
        host, port = hp
        return (host, port if port is not None else DEFAULT_PORTS[self.origin.scheme]) == (
            self.origin.host,
            self.origin.port,
        )

    def resolve_images(self, images: Sequence[str | ImageRef]) -> list[ImageRef]:
        """Parse images (names without a registry are on this registry); RegistryError for one on another."""
        if isinstance(images, str):
            raise RegistryError("images must be a list of image references, not a single string")
        refs: list[ImageRef] = []
        for image in images:
            ref = (
                image
                if isinstance(image, ImageRef)
                else ImageRef.parse(image, default_registry=self.registry)
            )
            if not self.on_registry(ref):
                raise RegistryError(
                    f"image {str(ref)!r} is not on registry {self.registry!r}: check one registry at a time"
                )
            refs.append(ref)
        return refs

    # -- HTTP --------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.origin.url(path)

    def _exchange(
        self,
        method: str,
        url: str,
        deadline: Deadline,
        *,
        authorization: str | None = None,
        accept: str | None = None,
        max_body: int = 64 * 1024,
    ) -> Response:
        headers: dict[str, str] = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        if accept is not None:
            headers["Accept"] = accept
        return self._transport.request(method, url, deadline=deadline, headers=headers, max_body=max_body)

    # -- flows -------------------------------------------------------------------------------------

    def check_pull(
        self,
        credential: Credential | None,
        images: Sequence[str | ImageRef],
        *,
        deadline: Deadline | None = None,
        prove: bool = False,
    ) -> PullCheck:
        """Whether ``credential`` (None: anonymous) can pull each image (manifest HEAD).

        Returns one ImageCheck per image, in order. Raises RegistryError for images on another registry,
        UntrustedRealmError (before sending anything secret) for an untrusted token realm, and
        DestinationRefused when the transport refuses a destination or redirect. With ``prove``, images
        that also pull without credentials are OPEN."""
        refs = self.resolve_images(images)
        if credential is not None and ":" in credential.username:
            # Fails before anything is sent (a registry question, not a destination one).
            raise RegistryError("the username contains ':', which HTTP Basic authentication cannot carry")
        unique = list(dict.fromkeys(refs))
        if not unique:
            return PullCheck(self.registry, ())
        within = Deadline.within(self._check_seconds, deadline)
        results = self._check_unique(credential, unique, within)
        if prove and credential is not None:
            results = self._prove(unique, results, within)
        by_ref = dict(zip(unique, results, strict=True))
        return PullCheck(self.registry, tuple(by_ref[ref] for ref in refs))

    def _check_unique(
        self, credential: Credential | None, refs: list[ImageRef], deadline: Deadline
    ) -> list[ImageCheck]:
        try:
            probe = self._exchange("GET", self._url("/v2/"), deadline)
        except _COULD_NOT_CHECK as exc:
            return [_Failure(PullStatus.UNREACHABLE, f"GET /v2/: {_reason(exc)}").for_image(r) for r in refs]
        if probe.status == 200:
            return self._anonymous_flow(credential, refs, deadline)
        if probe.status == 401:
            return self._challenge_flow(probe, credential, refs, "/v2/", deadline)
        failure = self._failure_from_status(probe, "GET /v2/")
        return [failure.for_image(r) for r in refs]

    @staticmethod
    def _failure_from_status(reply: Response, what: str) -> _Failure:
        remaining = _header_text(reply, "ratelimit-remaining")
        limit = _header_text(reply, "ratelimit-limit")
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
        reply: Response,
        credential: Credential | None,
        refs: list[ImageRef],
        where: str,
        deadline: Deadline,
    ) -> list[ImageCheck]:
        headers = reply.header_values("WWW-Authenticate")
        if not headers:
            failure = _Failure(
                PullStatus.UNREACHABLE, f"{where}: protocol error (HTTP 401 without challenge)", 401
            )
            return [failure.for_image(r) for r in refs]
        try:
            challenges = parse_www_authenticate(headers)
        except ChallengeParseError:
            failure = _Failure(
                PullStatus.UNREACHABLE, f"{where}: protocol error (malformed WWW-Authenticate)", 401
            )
            return [failure.for_image(r) for r in refs]
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            return self._bearer_flow(bearer, credential, refs, deadline)
        if any(c.scheme == "basic" for c in challenges):
            return self._basic_flow(credential, refs, deadline)
        schemes = ", ".join(sorted({c.scheme[:20] for c in challenges})[:5]) or "none"
        failure = _Failure(
            PullStatus.UNREACHABLE, f"{where}: protocol error (unsupported auth scheme: {schemes})", 401
        )
        return [failure.for_image(r) for r in refs]

    def _head_manifest(self, ref: ImageRef, authorization: str | None, deadline: Deadline) -> Response:
        return self._exchange(
            "HEAD",
            self._url(f"/v2/{ref.repository}/manifests/{ref.reference}"),
            deadline,
            authorization=authorization,
            accept=", ".join(MANIFEST_MEDIA_TYPES),
        )

    def _anonymous_flow(
        self, credential: Credential | None, refs: list[ImageRef], deadline: Deadline
    ) -> list[ImageCheck]:
        results: dict[ImageRef, ImageCheck] = {}
        challenged: list[ImageRef] = []
        challenge: Response | None = None
        for ref in refs:
            try:
                reply = self._head_manifest(ref, None, deadline)
            except _COULD_NOT_CHECK as exc:
                results[ref] = _Failure(PullStatus.UNREACHABLE, _reason(exc)).for_image(ref)
                continue
            if reply.status == 401 and reply.header("WWW-Authenticate"):
                # /v2/ is open but this repository wants auth: take its challenge for all such images.
                challenged.append(ref)
                challenge = challenge or reply
                continue
            results[ref] = self._image_result(ref, reply, "anonymous", anonymous=credential is None)
        if challenged and challenge is not None:
            checks = self._challenge_flow(challenge, credential, challenged, "manifest", deadline)
            results.update(zip(challenged, checks, strict=True))
        return [results[ref] for ref in refs]

    def _basic_flow(
        self, credential: Credential | None, refs: list[ImageRef], deadline: Deadline
    ) -> list[ImageCheck]:
        authorization = basic_authorization(credential.username, credential.password) if credential else None
        out: list[ImageCheck] = []
        for ref in refs:
            try:
                reply = self._head_manifest(ref, authorization, deadline)
            except _COULD_NOT_CHECK as exc:
                out.append(_Failure(PullStatus.UNREACHABLE, _reason(exc)).for_image(ref))
                continue
            out.append(self._image_result(ref, reply, "basic", anonymous=credential is None))
        return out

    def _bearer_flow(
        self, challenge: Challenge, credential: Credential | None, refs: list[ImageRef], deadline: Deadline
    ) -> list[ImageCheck]:
        realm = challenge.params.get("realm")
        if not realm:
            failure = _Failure(PullStatus.UNREACHABLE, "protocol error (Bearer challenge without realm)", 401)
            return [failure.for_image(r) for r in refs]
        realm_url = self._check_realm(realm)
        service = challenge.params.get("service")
        scopes = list(dict.fromkeys(f"repository:{r.repository}:pull" for r in refs))
        token = self._fetch_token(realm_url, service, scopes, credential, deadline)
        out: list[ImageCheck] = []
        for ref in refs:
            if isinstance(token, _Token) and self._clock() >= token.refresh_at:
                token = self._fetch_token(realm_url, service, scopes, credential, deadline)
            if isinstance(token, _Failure):
                out.append(token.for_image(ref))
                continue
            try:
                reply = self._head_manifest(ref, f"Bearer {token.value}", deadline)
            except _COULD_NOT_CHECK as exc:
                out.append(_Failure(PullStatus.UNREACHABLE, _reason(exc)).for_image(ref))
                continue
            out.append(self._image_result(ref, reply, "bearer"))
        if credential is not None and any(c.status is PullStatus.NO_ACCESS for c in out):
            out = self._anonymous_or_narrowed(realm_url, service, credential, out, deadline)
        return out

    def _anonymous_or_narrowed(
        self,
        realm_url: str,
        service: str | None,
        credential: Credential,
        results: list[ImageCheck],
        deadline: Deadline,
    ) -> list[ImageCheck]:
        """A token that does not grant pull means a narrow credential, or one the realm did not accept and
        served as anonymous (Harbor treats a robot that fails to authenticate as anonymous and issues a token
        without access). One realm request without a scope tells them apart: a credential the realm refuses
        there (401) is rejected, not narrow."""
        probe = self._fetch_token(realm_url, service, [], credential, deadline)
        if not (isinstance(probe, _Failure) and probe.status is PullStatus.CREDENTIALS_REJECTED):
            return results
        return [
            ImageCheck(
                c.image,
                PullStatus.CREDENTIALS_REJECTED,
                "the token endpoint served the credential as anonymous, and refused it without a scope "
                f"({probe.detail})",
                c.http_status,
                c.ratelimit_remaining,
                c.ratelimit_limit,
            )
            if c.status is PullStatus.NO_ACCESS
            else c
            for c in results
        ]

    def _fetch_token(
        self,
        realm_url: str,
        service: str | None,
        scopes: list[str],
        credential: Credential | None,
        deadline: Deadline,
    ) -> _Token | _Failure:
        # One request for every scope: what the rotation must prove is this token's reach.
        from urllib.parse import urlencode, urlsplit

        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", scope) for scope in scopes)
        if credential is not None:
            params.append(("account", credential.username))
        query = urlencode(params)
        url = realm_url + ("&" if urlsplit(realm_url).query else "?") + query if query else realm_url
        try:
            reply = self._exchange(
                "GET",
                url,
                deadline,
                authorization=basic_authorization(credential.username, credential.password)
                if credential
                else None,
                max_body=MAX_TOKEN_BODY,
            )
        except _COULD_NOT_CHECK as exc:
            return _Failure(PullStatus.UNREACHABLE, f"token endpoint: {_reason(exc)}")
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
        redact.remember(value)
        return _Token(value, self._clock() + max(1.0, expires_in - min(10.0, expires_in / 2)))

    @staticmethod
    def _token_from_body(reply: Response) -> tuple[str | None, float]:
        try:
            data = reply.json(max_bytes=MAX_TOKEN_BODY)
        except ValueError:
            return None, 0.0
        if not isinstance(data, dict):
            return None, 0.0
        value: object = data.get("token") or data.get("access_token")
        # The token goes into a header: refuse anything that could split or bloat it.
        if not isinstance(value, str) or _TOKEN_CHARS_RE.fullmatch(value) is None:
            return None, 0.0
        expires_in = data.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not expires_in > 0:
            expires_in = DEFAULT_EXPIRES_IN
        return value, float(min(expires_in, 86400.0))

    def _image_result(
        self, ref: ImageRef, reply: Response, flow: _Flow, *, anonymous: bool = False
    ) -> ImageCheck:
        status = reply.status
        remaining = _header_text(reply, "ratelimit-remaining")
        limit = _header_text(reply, "ratelimit-limit")

        def check(pull: PullStatus, detail: str) -> ImageCheck:
            return ImageCheck(str(ref), pull, detail, status, remaining, limit)

        if status == 200:
            if flow == "anonymous" and not anonymous:
                # Honest about what was proven: an open registry never looked at the credential.
                return check(
                    PullStatus.OPEN, "manifest served without credentials (the credential was not exercised)"
                )
            return check(PullStatus.OK, "manifest found")
        if status == 404:
            return check(PullStatus.NOT_FOUND, "manifest or repository unknown (HTTP 404)")
        if status == 429:
            return check(
                PullStatus.RATE_LIMITED, f"rate limited by the registry (HTTP 429{_retry_after_note(reply)})"
            )
        if status in (401, 403):
            if flow == "bearer":
                error = bearer_error(reply.header("WWW-Authenticate"))
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

    # -- proving the credential was needed ----------------------------------------------------------

    def _prove(self, refs: list[ImageRef], results: list[ImageCheck], deadline: Deadline) -> list[ImageCheck]:
        """Ask once more, anonymously, for every image the credential pulled: one that pulls without
        credentials proves nothing about the credential."""
        pulled = [ref for ref, check in zip(refs, results, strict=True) if check.status is PullStatus.OK]
        if not pulled:
            return results
        try:
            anonymous = self._check_unique(None, pulled, deadline)
        except (UntrustedRealmError, DestinationRefused):
            return results  # the authenticated pass went through the same realm: nothing new to learn
        opened = {ref for ref, check in zip(pulled, anonymous, strict=True) if check.status is PullStatus.OK}
        return [
            ImageCheck(
                check.image,
                PullStatus.OPEN,
                "the registry serves this image without credentials: it proves nothing about the credential",
                check.http_status,
                check.ratelimit_remaining,
                check.ratelimit_limit,
            )
            if ref in opened
            else check
            for ref, check in zip(refs, results, strict=True)
        ]


def _reason(exc: Unreachable | ResponseTooLarge) -> str:
    return str(exc)
