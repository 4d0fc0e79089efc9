"""Docker Hub: personal access tokens (PAT) and organization access tokens (OAT).

API as documented at docs.docker.com/reference/api/hub/latest (operations AuthCreateAccessToken
``POST /v2/auth/token``, postV2AccessTokens, getV2AccessTokens, deleteV2AccessTokensUuid,
postV2OrgsByNameAccessTokens, getV2OrgsByNameAccessTokens and the org token delete): the admin
identity exchanges its password or PAT for a short-lived bearer, which manages tokens. A PAT pulls
as the admin user; an OAT pulls with the organization's name as username.

Not verified against the live service (recorded in the notes): whether a bearer obtained with a PAT
(rather than the account password) may create access tokens, and whether OATs need an org owner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..errors import ProviderAuthError, ProviderError
from .base import IssuedCredential, Strategy, VendorToken

if TYPE_CHECKING:
    import requests

    from ..registry import Credential

DEFAULT_API = "https://hub.docker.com"
DEFAULT_REGISTRY = "registry-1.docker.io"
# auth.docker.io is the realm registry-1.docker.io names in its Bearer challenge.
DEFAULT_REALM_HOSTS = frozenset({"auth.docker.io"})
PAT_SCOPES = ("repo:read",)
PAGE_SIZE = 100
MAX_PAGES = 50
_RETRY_STATUSES = {429, 502, 503, 504}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def api_host(api: str) -> str:
    """host[:port] of an API base URL, as realm allow-lists spell hosts."""
    parts = urlsplit(api)
    return parts.netloc.lower()


class DockerHubProvider:
    """Mints, finds and revokes Docker Hub access tokens with an admin identity."""

    name = "dockerhub"
    strategy = Strategy.OVERLAP

    def __init__(
        self,
        admin: Credential,
        *,
        api: str = DEFAULT_API,
        registry: str = DEFAULT_REGISTRY,
        org: str | None = None,
        realm_hosts: Iterable[str] = (),
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 15.0),
        max_attempts: int = 3,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import requests  # on first use: a function that never calls Docker Hub does not load it

        self._admin = admin
        self._api = api.rstrip("/") + "/"
        self.registry = registry
        self.org = org
        self.realm_hosts = frozenset(DEFAULT_REALM_HOSTS | set(realm_hosts))
        self._session = session or requests.Session()
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._page_size = page_size
        self._sleep = sleep
        self._bearer: str | None = None

    # -- HTTP ------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self._api, path.lstrip("/"))

    def _send(self, method: str, url: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """One API call with bounded retries on 429/5xx and connection errors."""
        import requests

        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._login()}"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._session.request(
                    method, url, headers=headers, timeout=self._timeout, allow_redirects=False, **kwargs
                )
            except requests.RequestException as exc:
                if attempt == self._max_attempts:
                    raise ProviderError(
                        f"Docker Hub API at {self._api} unreachable ({type(exc).__name__}); "
                        "check the regcred:api tag and the function's network path"
                    ) from None
                self._sleep(0.5 * 2.0 ** (attempt - 1))
                continue
            if response.status_code in _RETRY_STATUSES and attempt < self._max_attempts:
                self._sleep(self._retry_delay(response, attempt))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    @staticmethod
    def _retry_delay(response: requests.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            return min(int(retry_after), 20.0)
        return 0.5 * 2.0 ** (attempt - 1)

    def _login(self) -> str:
        if self._bearer is None:
            response = self._send(
                "POST",
                self._url("/v2/auth/token"),
                auth=False,
                json={"identifier": self._admin.username, "secret": self._admin.password},
            )
            if response.status_code in (401, 403):
                raise ProviderAuthError(
                    f"Docker Hub rejected the admin identity {self._admin.username!r}: update the admin "
                    "secret named by the regcred:admin-secret tag with a valid password or PAT"
                )
            body = self._json(response, "POST /v2/auth/token", expect=(200,))
            token = body.get("access_token") or body.get("token")
            if not isinstance(token, str) or not token:
                raise ProviderError("Docker Hub POST /v2/auth/token answered without access_token")
            self._bearer = token
        return self._bearer

    @staticmethod
    def _json(response: requests.Response, what: str, *, expect: tuple[int, ...]) -> dict[str, Any]:
        if response.status_code not in expect:
            message = ""
            try:
                body = response.json()
                if isinstance(body, dict):
                    message = str(body.get("message") or body.get("detail") or body.get("details") or "")
            except ValueError:
                pass
            hint = (
                " (is the admin identity an owner of the organization?)"
                if response.status_code == 403
                else ""
            )
            raise ProviderError(
                f"Docker Hub {what} failed: HTTP {response.status_code} {message[:200]}{hint}".rstrip()
            )
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(f"Docker Hub {what} answered with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise ProviderError(f"Docker Hub {what} answered with unexpected JSON")
        return body

    # -- Provider protocol -----------------------------------------------------------------------

    @property
    def _tokens_path(self) -> str:
        return f"/v2/orgs/{self.org}/access-tokens" if self.org else "/v2/access-tokens"

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        """Create a PAT (or an OAT when an organization is configured) labelled ``label``."""
        payload: dict[str, Any]
        if self.org:
            payload = {
                "label": label,
                "description": "pull credential managed by regcred",
                # Pull on every repository of the organization; narrower paths are a later option.
                "resources": [{"type": "TYPE_REPO", "path": "*", "scopes": ["scope-image-pull"]}],
            }
        else:
            payload = {"token_label": label, "scopes": list(PAT_SCOPES)}
        if expires_at is not None:
            payload["expires_at"] = _iso(expires_at)
        response = self._send("POST", self._url(self._tokens_path), json=payload)
        body = self._json(response, f"POST {self._tokens_path}", expect=(200, 201))
        token = body.get("token")
        token_id = body.get("id") if self.org else body.get("uuid")
        if not isinstance(token, str) or not token or not isinstance(token_id, str) or not token_id:
            raise ProviderError(f"Docker Hub POST {self._tokens_path} answered without token and id")
        username = self.org if self.org else self._admin.username
        return IssuedCredential(
            username=username,
            password=token,
            token_id=token_id,
            expires_at=_parse_time(body.get("expires_at")) or expires_at,
        )

    def find_by_label(self, label: str) -> list[VendorToken]:
        """Active tokens labelled ``label``, across every page of the listing."""
        found: list[VendorToken] = []
        url: str | None = self._url(f"{self._tokens_path}?page=1&page_size={self._page_size}")
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            response = self._send("GET", url)
            body = self._json(response, f"GET {self._tokens_path}", expect=(200,))
            for item in body.get("results") or []:
                if not isinstance(item, dict):
                    continue
                item_label = item.get("label") if self.org else item.get("token_label")
                token_id = item.get("id") if self.org else item.get("uuid")
                if item_label == label and isinstance(token_id, str) and item.get("is_active", True):
                    found.append(
                        VendorToken(
                            token_id=token_id,
                            label=label,
                            active=True,
                            expires_at=_parse_time(item.get("expires_at")),
                        )
                    )
            next_url = body.get("next")
            url = self._same_api(next_url) if isinstance(next_url, str) and next_url else None
        raise ProviderError(f"Docker Hub listing of {self._tokens_path} has more than {MAX_PAGES} pages")

    def _same_api(self, url: str) -> str:
        """A pagination link, refused when it leaves the API host (the bearer goes with it)."""
        absolute = urljoin(self._api, url)
        if urlsplit(absolute).netloc.lower() != urlsplit(self._api).netloc.lower():
            raise ProviderError("Docker Hub pagination link points at another host; refusing to follow it")
        return absolute

    def revoke(self, token_id: str) -> None:
        """Delete a token; 404 means it is already gone."""
        response = self._send("DELETE", self._url(f"{self._tokens_path}/{token_id}"))
        if response.status_code in (200, 202, 204, 404):
            return
        self._json(response, f"DELETE {self._tokens_path}/<id>", expect=(204,))
