"""One vendor REST API over regcred's transport: what every provider's HTTP calls have in common.

- The API origin comes from `regcred.routing`; a path is joined to it, an absolute URL (a pagination link)
  must stay on it (`regcred.http.policy.same_origin_link`).
- A request that creates a credential is sent once (`VendorApi.mint`): no answer, or 502/504, raises
  `MintOutcomeUnknown`, and the caller looks the credential up by its label.
- A failed call becomes one message: the vendor, the call, the status, what the server said (only through
  `Response.error_text`: known fields, truncated, scrubbed of every credential the request carried) and what
  to do: 401 names the admin secret, 403 the permissions the provider declares, 429 the Retry-After.
- Redirects are never followed: a vendor API that redirects is misconfigured, and following one would carry
  the admin credential elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from ..errors import (
    DestinationRefused,
    MintOutcomeUnknown,
    OutcomeUnknown,
    ProviderAuthError,
    ProviderError,
    Unreachable,
)
from ..hosts import Origin
from ..http.deadline import Deadline
from ..http.policy import same_origin_link
from ..http.transport import Response, Transport

__all__ = ["CALL_SECONDS", "MAX_PAGES", "VendorApi", "link_next"]

CALL_SECONDS = 30.0
MAX_PAGES = 50
_LINK_RE = re.compile(r"<([^>]{1,2048})>\s*;([^,]*)")


def link_next(header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 Link header, or None."""
    for target, params in _LINK_RE.findall(header or ""):
        rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in r.lower().split() for r in rels):
            return str(target).strip()
    return None


def _status_hint(status: int, response: Response, *, permissions: str, admin_hint: str) -> str:
    if status == 401:
        return f" (the vendor rejected the admin credential: {admin_hint})"
    if status == 403:
        return f" (the admin identity lacks a permission; it needs {permissions})" if permissions else ""
    if status == 404:
        return " (not found: check the project, group or organization the secret's tags name)"
    if status == 409:
        return " (conflict: the vendor holds a record of that name already)"
    if status == 429:
        after = (response.header("Retry-After") or "").strip()
        return (
            f" (rate limited; retry after {after} s)" if after.isdigit() else " (rate limited; retry later)"
        )
    if status >= 500:
        return " (a vendor-side error; retry later)"
    return ""


class VendorApi:
    """Calls to one vendor API with one admin credential."""

    def __init__(
        self,
        vendor: str,
        api: Origin,
        *,
        transport: Transport,
        auth: Callable[[], Mapping[str, str]] | Mapping[str, str] | None,
        secrets: tuple[str, ...] = (),
        deadline: Deadline | None = None,
        base_path: str = "",
        permissions: str = "",
        admin_hint: str = "update the admin secret named by the regcred:admin-secret tag",
        error_fields: tuple[str, ...] = (
            "message",
            "detail",
            "details",
            "error",
            "error_description",
            "errors",
        ),
        call_seconds: float = CALL_SECONDS,
    ) -> None:
        self.vendor = vendor
        self.api = api
        self._transport = transport
        self._auth = auth
        self._secrets = secrets
        self._deadline = deadline
        self.base_path = base_path.rstrip("/")
        self.permissions = permissions
        self.admin_hint = admin_hint
        self.error_fields = error_fields
        self._call_seconds = call_seconds

    # -- requests ----------------------------------------------------------------------------------

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The URL of an API path (``base_path`` prepended), with query parameters."""
        url = self.api.url(self.base_path + path)
        return f"{url}?{urlencode(params, doseq=True)}" if params else url

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        idempotent: bool | None = None,
    ) -> Response:
        """One call; the transport retries it only when it is idempotent. Unreachable becomes ProviderError
        (OutcomeUnknown, for a call that may have been processed, passes through)."""
        if "://" in path_or_url:
            try:
                url = same_origin_link(self.api, path_or_url)
            except DestinationRefused as exc:
                raise ProviderError(f"{self.vendor} API: {exc}") from None
        else:
            url = self.url(path_or_url, params)
        sent = {"Accept": "application/json"}
        if auth and self._auth is not None:
            sent.update(self._auth() if callable(self._auth) else self._auth)
        sent.update(headers or {})
        body = None
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            return self._transport.request(
                method,
                url,
                deadline=Deadline.within(self._call_seconds, self._deadline),
                headers=sent,
                body=body,
                json_body=json_body,
                credential_headers=tuple(sent) if auth else (),
                secrets=self._secrets,
                idempotent=idempotent,
                follow_redirects=False,
            )
        except OutcomeUnknown:
            raise
        except Unreachable as exc:
            raise ProviderError(
                f"{self.vendor} API at {self.api.host_port} unreachable ({exc}); check the regcred:api "
                "tag and "
                "the function's network path"
            ) from None

    def mint(self, method: str, path: str, what: str, **kwargs: Any) -> Response:
        """A request that creates a credential: sent once. No answer, or 502/504, is MintOutcomeUnknown."""
        try:
            response = self.send(method, path, idempotent=False, **kwargs)
        except OutcomeUnknown as exc:
            raise MintOutcomeUnknown(f"{self.vendor} {what}: {exc}") from None
        if response.status in (502, 504):
            raise MintOutcomeUnknown(
                f"{self.vendor} {what}: HTTP {response.status}; the credential may have been created"
            )
        return response

    # -- answers -----------------------------------------------------------------------------------

    def fail(self, response: Response, what: str) -> ProviderError:
        """The error for a call that did not succeed (returned, for the caller to raise)."""
        status = response.status
        message = response.error_text(self.error_fields)
        hint = _status_hint(status, response, permissions=self.permissions, admin_hint=self.admin_hint)
        text = f"{self.vendor} {what} failed: HTTP {status}{': ' + message if message else ''}{hint}"
        return ProviderAuthError(text) if status == 401 else ProviderError(text)

    def expect(self, response: Response, what: str, expect: tuple[int, ...] = (200,)) -> Any:
        """The JSON body of a successful call; ProviderError otherwise."""
        if response.status not in expect:
            raise self.fail(response, what)
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"{self.vendor} {what} answered with a body that is not usable JSON ({exc})"
            ) from None

    def expect_object(
        self, response: Response, what: str, expect: tuple[int, ...] = (200,)
    ) -> dict[str, Any]:
        body = self.expect(response, what, expect)
        if not isinstance(body, dict):
            raise ProviderError(f"{self.vendor} {what} answered with unexpected JSON (not an object)")
        return body

    def pages(
        self,
        path: str,
        what: str,
        *,
        params: Mapping[str, Any] | None = None,
        items: Callable[[Any], list[Any]] | None = None,
        max_pages: int = MAX_PAGES,
    ) -> Iterator[Any]:
        """Every item of a listing, following ``Link: rel="next"`` (on the API origin only). ``items`` takes
        the list out of a page's body (default: the body is the list)."""
        url: str | None = self.url(path, params)
        for _ in range(max_pages):
            if url is None:
                return
            response = self.send("GET", url)
            body = self.expect(response, what)
            found = items(body) if items is not None else body
            if not isinstance(found, list):
                raise ProviderError(f"{self.vendor} {what} answered with unexpected JSON (no list)")
            yield from found
            target = link_next(response.header("Link"))
            try:
                url = same_origin_link(self.api, target, base_url=response.url) if target else None
            except DestinationRefused as exc:
                raise ProviderError(f"{self.vendor} listing {what}: {exc}") from None
        raise ProviderError(f"{self.vendor} listing {what} has more than {max_pages} pages")
