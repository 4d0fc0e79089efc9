"""The one outbound HTTP transport: the registry client, token realms and every vendor client use it.

Built on urllib3 (no proxies from the environment, no netrc, no cookies), with regcred's rules on top:

- every destination passes `policy.check_destination`; the name is resolved once per connection, every
  address it resolves to is checked (`policy.address_refusal`), and the socket connects to one of those
  checked addresses, so DNS rebinding has no window. TLS still verifies the certificate for the name.
- redirects are followed here, hop by hop, by `policy.redirect`: only for repeatable requests, never to
  plain http, never from a remote origin into loopback, credentials only on their own origin.
- bodies are bounded (``max_body`` raw bytes, and the same for the decompressed size), headers too.
- one `Deadline` per operation bounds every attempt's timeouts, every retry wait and every body read.
- retries are urllib3's `Retry` (counts, backoff, Retry-After, which methods may be retried): idempotent
  requests only. A request that is not idempotent (a mint) is never sent twice: a failure after it may have
  been sent raises `OutcomeUnknown`, and a 502/504 answer is returned to the caller, which resolves the
  outcome by looking the credential up.
- error texts carry the origin and the failure class, never headers, queries or bodies;
  `Response.error_text` reduces a server's error body to known fields, truncated and scrubbed of every
  credential the request carried.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Retry, Timeout

from .. import __version__, redact
from ..errors import DeadlineExceeded, DestinationRefused, OutcomeUnknown, ResponseTooLarge, Unreachable
from ..hosts import Origin
from . import policy
from .connection import ACTIVE_DEADLINE, Guard, HTTPPool, HTTPSPool, Resolver, system_resolver, tls_context
from .deadline import Deadline
from .response import DEFAULT_MAX_BODY, Response

__all__ = ["IDEMPOTENT_METHODS", "Resolver", "Response", "Transport", "basic_authorization", "retry_policy"]

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # RFC 9110 §9.2.2
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_HEADER_BYTES = 64 * 1024
USER_AGENT = f"regcred/{__version__}"
_CHUNK = 16 * 1024


def basic_authorization(username: str, password: str) -> str:
    """An ``Authorization: Basic`` value; both parts are remembered for scrubbing."""
    import base64

    if ":" in username:
        raise DestinationRefused("the username contains ':', which HTTP Basic authentication cannot carry")
    redact.remember(password, f"{username}:{password}")
    value = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    redact.remember(value)
    return value


# ----------------------------------------------------------------------------------------- transport


def retry_policy(attempts: int = 3, *, backoff_factor: float = 0.25) -> Retry:
    """regcred's retry policy: ``attempts`` in all for idempotent requests on connection errors, read errors
    and 502/503/504; 429 and 503 only with a usable Retry-After; never on other errors."""
    n = attempts - 1
    return Retry(
        total=n,
        connect=n,
        read=n,
        status=n,
        other=0,
        redirect=False,
        allowed_methods=IDEMPOTENT_METHODS,
        status_forcelist=frozenset({502, 503, 504}),
        backoff_factor=backoff_factor,
        backoff_max=4.0,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class Transport:
    """Sends requests under regcred's rules. One instance may serve many operations; it owns its pools."""

    def __init__(
        self,
        *,
        local_origins: Iterable[Origin] = (),
        resolver: Resolver = system_resolver,
        timeout: tuple[float, float] = (3.05, 10.0),
        retry: Retry | None = None,
        max_retry_after: float = 20.0,
        max_body: int = DEFAULT_MAX_BODY,
        max_redirects: int = 3,
        ca_bundle: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.local_origins = frozenset(local_origins)
        self._resolver = resolver
        self._timeout = timeout
        self._retry = retry or retry_policy()
        self._max_retry_after = max_retry_after
        self._max_body = max_body
        self._max_redirects = max_redirects
        self._ca_bundle = ca_bundle or _default_ca_bundle()
        self._sleep = sleep
        self._pools: dict[Origin, HTTPConnectionPool] = {}
        self._tls_context: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = tls_context(self._ca_bundle)
        return self._tls_context

    def close(self) -> None:
        """Close every pooled connection."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pool(self, origin: Origin) -> HTTPConnectionPool:
        pool = self._pools.get(origin)
        if pool is None:
            guard = Guard(self._resolver, policy.loopback_allowed(origin, self.local_origins))
            if origin.scheme == "https":
                pool = HTTPSPool(
                    origin.host,
                    origin.port,
                    maxsize=4,
                    block=False,
                    retries=False,
                    cert_reqs="CERT_REQUIRED",
                    ssl_context=self._tls(),
                    regcred_guard=guard,
                )
            else:
                pool = HTTPPool(
                    origin.host, origin.port, maxsize=4, block=False, retries=False, regcred_guard=guard
                )
            self._pools[origin] = pool
        return pool

    # -- one request, with retries ------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        credential_headers: Iterable[str] = (),
        secrets: Iterable[str | None] = (),
        idempotent: bool | None = None,
        max_body: int | None = None,
        follow_redirects: bool = True,
    ) -> Response:
        """Send one logical request (retries and redirects included) within ``deadline``.

        ``credential_headers`` names headers besides Authorization that carry a credential (stripped
        on a cross-origin redirect); ``secrets`` are values in the body to scrub from error texts.
        Raises DestinationRefused (nothing sent), Unreachable / DeadlineExceeded, OutcomeUnknown (a
        non-idempotent request may have been processed) or ResponseTooLarge."""
        method = method.upper()
        repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        origin = policy.check_destination(url, local_origins=self.local_origins)
        sent_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        sent_headers.update(headers or {})
        if json_body is not None:
            import json

            body = json.dumps(json_body, separators=(",", ":")).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        credential_names = CREDENTIAL_HEADERS | {h.lower() for h in credential_headers}
        carried = _credential_values(
            [v for k, v in sent_headers.items() if k.lower() in credential_names], secrets
        )
        redact.remember(*carried)
        allowed = frozenset(self._retry.allowed_methods or IDEMPOTENT_METHODS)
        # Never an empty collection: urllib3 2 reads an empty allowed_methods as "retry every verb".
        if not repeatable:
            allowed -= {method}
        elif idempotent:
            allowed |= {method}  # the caller vouches that this request may be sent again (a login POST)
        retry = self._retry.new(allowed_methods=allowed)
        limit = self._max_body if max_body is None else max_body
        active = ACTIVE_DEADLINE.set(deadline)
        try:
            while True:
                if deadline.expired():
                    raise DeadlineExceeded(f"{method} {origin.host_port}: the operation's deadline passed")
                try:
                    return self._follow(
                        method,
                        url,
                        origin,
                        sent_headers,
                        credential_names,
                        body,
                        deadline,
                        repeatable,
                        limit,
                        carried,
                        follow_redirects,
                        retry,
                    )
                except _Retry as again:
                    retry = again.retry
                    if again.wait > deadline.remaining():
                        if again.response is not None:
                            return again.response
                        raise DeadlineExceeded(
                            f"{method} {origin.host_port}: no time left to retry ({again.cause})",
                            sent=again.sent,
                        ) from None
                    logger.debug(
                        "retrying %s %s in %.2f s (%s)", method, origin.host_port, again.wait, again.cause
                    )
                    self._sleep(again.wait)
        finally:
            ACTIVE_DEADLINE.reset(active)

    def _follow(
        self,
        method: str,
        url: str,
        origin: Origin,
        headers: dict[str, str],
        credential_names: frozenset[str],
        body: bytes | None,
        deadline: Deadline,
        repeatable: bool,
        limit: int,
        carried: tuple[str, ...],
        follow_redirects: bool,
        retry: Retry,
    ) -> Response:
        credentials_origin: Origin | None = origin
        current_url, current, current_method, current_body = url, origin, method, body
        hop_headers = dict(headers)
        for hop in range(self._max_redirects + 1):
            if hop:
                current = policy.check_destination(current_url, local_origins=self.local_origins)
            raw = self._send(
                current_method, current_url, current, hop_headers, current_body, deadline, repeatable, retry
            )
            status = raw.status
            location = raw.headers.get("Location")
            if status in REDIRECT_STATUSES and location and follow_redirects:
                _discard(raw, deadline)
                if hop == self._max_redirects:
                    raise Unreachable(
                        f"{method} {origin.host_port}: more than {self._max_redirects} redirects", sent=True
                    )
                target = policy.redirect(
                    current,
                    current_url,
                    location,
                    repeatable=repeatable,
                    credentials_origin=credentials_origin,
                    local_origins=self.local_origins,
                )
                if not target.keep_credentials:
                    # Once dropped, never restored: a later hop back cannot re-arm the credential.
                    credentials_origin = None
                    hop_headers = {k: v for k, v in hop_headers.items() if k.lower() not in credential_names}
                if status == 303 and current_method != "HEAD":
                    current_method, current_body = "GET", None
                current_url = target.url
                continue
            response = self._complete(raw, current_method, current_url, current, deadline, limit, carried)
            # Only a Retry-After regcred can read counts: garbage is as good as none (a 429 is then final).
            has_retry_after = _retry_after(retry, raw.headers.get("Retry-After") or "") is not None
            if retry.is_retry(current_method, status, has_retry_after):
                try:
                    new_retry = retry.increment(current_method, current_url, response=raw)
                except MaxRetryError:
                    return response
                wait = self._wait_for(new_retry, raw)
                if wait is None:
                    return response  # a Retry-After beyond what regcred waits: the answer stands
                raise _Retry(new_retry, wait, f"HTTP {status}", response, sent=True)
            return response
        raise AssertionError("unreachable: the loop returns, continues or raises")

    def _wait_for(self, retry: Retry, raw: urllib3.BaseHTTPResponse) -> float | None:
        value = raw.headers.get("Retry-After")
        if value:
            seconds = _retry_after(retry, value)
            if seconds is not None:
                return seconds if seconds <= self._max_retry_after else None
        return float(retry.get_backoff_time())

    def _send(
        self,
        method: str,
        url: str,
        origin: Origin,
        headers: dict[str, str],
        body: bytes | None,
        deadline: Deadline,
        repeatable: bool,
        retry: Retry,
    ) -> urllib3.BaseHTTPResponse:
        connect, read = self._timeout
        timeout = Timeout(connect=max(1e-3, deadline.bound(connect)), read=max(1e-3, deadline.bound(read)))
        path = _target(url)
        try:
            return self._pool(origin).urlopen(
                method,
                path,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=timeout,
                preload_content=False,
                decode_content=False,
                release_conn=False,
            )
        except (NewConnectionError, ConnectTimeoutError) as exc:
            # Nothing was sent: safe to retry whatever the method.
            self._retry_or_raise(retry, method, url, exc, origin, sent=False, cause="connection failed")
        except SSLError:
            raise Unreachable(f"{method} {origin.host_port}: TLS error (certificate or handshake)") from None
        except (ReadTimeoutError, ProtocolError) as exc:
            if not repeatable:
                raise OutcomeUnknown(
                    f"{method} {origin.host_port}: no answer after the request was sent "
                    f"({_describe(exc)}); it is not sent again",
                    sent=True,
                ) from None
            self._retry_or_raise(retry, method, url, exc, origin, sent=True, cause=_describe(exc))
        except HTTPError as exc:
            raise Unreachable(f"{method} {origin.host_port}: {_describe(exc)}", sent=repeatable) from None
        raise AssertionError("unreachable")

    def _retry_or_raise(
        self, retry: Retry, method: str, url: str, exc: Exception, origin: Origin, *, sent: bool, cause: str
    ) -> None:
        try:
            new_retry = retry.increment(method, url, error=exc)
        except (MaxRetryError, HTTPError, OSError):
            raise Unreachable(
                f"{method} {origin.host_port}: {cause} after {len(retry.history) + 1} attempt(s)", sent=sent
            ) from None
        raise _Retry(new_retry, float(new_retry.get_backoff_time()), cause, None, sent=sent)

    def _complete(
        self,
        raw: urllib3.BaseHTTPResponse,
        method: str,
        url: str,
        origin: Origin,
        deadline: Deadline,
        limit: int,
        carried: tuple[str, ...],
    ) -> Response:
        try:
            headers = tuple((str(k), str(v)) for k, v in raw.headers.items())
            if sum(len(k) + len(v) + 4 for k, v in headers) > MAX_HEADER_BYTES:
                raise ResponseTooLarge(
                    f"{method} {origin.host_port}: response headers over {MAX_HEADER_BYTES} bytes"
                )
            body = (
                b""
                if method == "HEAD" or raw.status in (204, 304)
                else self._read(raw, method, origin, deadline, limit)
            )
            raw.release_conn()
        except BaseException:
            raw.close()
            raise
        logger.debug("%s %s%s -> HTTP %s", method, origin.host_port, _path_only(url, origin), raw.status)
        return Response(raw.status, headers, body, url, origin, carried)

    def _read(
        self, raw: urllib3.BaseHTTPResponse, method: str, origin: Origin, deadline: Deadline, limit: int
    ) -> bytes:
        length = raw.headers.get("Content-Length")
        if length and length.strip().isdigit() and int(length) > limit:
            raise ResponseTooLarge(f"{method} {origin.host_port}: response body over {limit} bytes")
        chunks: list[bytes] = []
        total = 0
        while True:
            if deadline.expired():
                raise DeadlineExceeded(
                    f"{method} {origin.host_port}: the deadline passed while reading the body", sent=True
                )
            # Looked up for every chunk: once the body is read, urllib3 may already have closed the
            # connection (the server said Connection: close) or handed it back to its pool.
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):  # closed meanwhile: the read below says what is left
                    sock.settimeout(max(1e-3, deadline.bound(self._timeout[1])))
            try:
                chunk = raw.read(_CHUNK, decode_content=False)
            except (ReadTimeoutError, ProtocolError, OSError) as exc:
                if deadline.expired():
                    raise DeadlineExceeded(
                        f"{method} {origin.host_port}: the deadline passed while reading the body", sent=True
                    ) from None
                raise Unreachable(
                    f"{method} {origin.host_port}: body read failed ({_describe(exc)})", sent=True
                ) from None
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ResponseTooLarge(f"{method} {origin.host_port}: response body over {limit} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
        encoding = (raw.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding in ("", "identity"):
            return data
        if encoding in ("gzip", "x-gzip", "deflate"):
            return _decompress(data, encoding, limit, method, origin)
        raise Unreachable(
            f"{method} {origin.host_port}: unsupported Content-Encoding {encoding[:20]!r}", sent=True
        )


def _discard(raw: urllib3.BaseHTTPResponse, deadline: Deadline) -> None:
    """Drop a response whose body is not needed (a redirect). A short body is read to its end so that the
    connection can serve the next hop; a connection with anything left unread is closed, never pooled (the
    next request on it would read this body as its answer)."""
    try:
        left = _CHUNK
        while left > 0 and not deadline.expired():
            chunk = raw.read(left, decode_content=False)
            if not chunk:
                raw.release_conn()
                return
            left -= len(chunk)
    except (HTTPError, OSError):
        pass
    raw.close()
    raw.release_conn()


def _credential_values(header_values: Iterable[str], secrets: Iterable[str | None]) -> tuple[str, ...]:
    """Every value a request carries that must never be echoed: header values, their credentials without
    the auth scheme ("Bearer X" -> "X"), and body secrets."""
    out: list[str] = []
    for value in header_values:
        if not value:
            continue
        out.append(value)
        scheme, sep, credential = value.partition(" ")
        if sep and credential.strip():
            out.append(credential.strip())
            if scheme.lower() == "basic":
                out.extend(_basic_parts(credential.strip()))
    out.extend(s for s in secrets if s)
    return tuple(dict.fromkeys(out))


def _basic_parts(encoded: str) -> list[str]:
    """``user:password`` and the password a Basic credential carries (a server may echo either)."""
    import base64
    import binascii

    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return []
    _, sep, password = decoded.partition(":")
    return [decoded, password] if sep and password else [decoded]


class _Retry(Exception):
    def __init__(
        self, retry: Retry, wait: float, cause: str, response: Response | None, *, sent: bool
    ) -> None:
        super().__init__(cause)
        self.retry = retry
        self.wait = wait
        self.cause = cause
        self.response = response
        self.sent = sent


def _retry_after(retry: Retry, value: str) -> float | None:
    """Seconds a Retry-After asks for (urllib3's parser), None when it is not usable."""
    if not value.isascii():
        return None  # "٣٠" is not 30 to an HTTP peer
    try:
        return float(retry.parse_retry_after(value))
    except (InvalidHeader, ValueError, OverflowError, TypeError):
        return None


def _decompress(data: bytes, encoding: str, limit: int, method: str, origin: Origin) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error:
        raise Unreachable(f"{method} {origin.host_port}: corrupt {encoding} body", sent=True) from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise ResponseTooLarge(f"{method} {origin.host_port}: decompressed body over {limit} bytes")
    return out


def _describe(exc: BaseException) -> str:
    # Only the class of failure: urllib3's messages carry URLs, which stay out of details.
    if isinstance(exc, (ReadTimeoutError, TimeoutError)):
        return "read timeout"
    if isinstance(exc, ConnectTimeoutError):
        return "connect timeout"
    if isinstance(exc, ProtocolError):
        return "connection broken"
    if isinstance(exc, SSLError):
        return "TLS error"
    return "connection failed"


def _target(url: str) -> str:
    """The request target of an absolute URL: path and query, never the fragment."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _path_only(url: str, origin: Origin) -> str:
    return (urlsplit(url).path or "/")[:120]


def _default_ca_bundle() -> str | None:
    import os

    configured = os.environ.get("REGCRED_CA_BUNDLE")
    if configured:
        return configured
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi ships with the layer
        return None
    return str(certifi.where())
