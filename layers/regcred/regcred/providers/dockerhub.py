"""Docker Hub: personal access tokens (PAT) and organization access tokens (OAT).

API as documented at docs.docker.com/reference/api/hub/latest (operations AuthCreateAccessToken
``POST /v2/auth/token``, postV2AccessTokens, getV2AccessTokens, getV2AccessTokensByUuid,
deleteV2AccessTokensByUuid, postV2OrgsByNameAccessTokens, getV2OrgsByNameAccessTokens and the org token
get/delete): the admin identity exchanges its password or PAT for a short-lived bearer, which manages
tokens. A PAT pulls as the admin user; an OAT pulls with the organization's name as username. Token ids
are UUIDs (``uuid`` of a PAT, ``id`` of an OAT).

Every call goes through regcred's transport (`regcred.http.transport`): the API origin comes from
`regcred.routing`, a create is sent once, pagination links must stay on the API origin, and error bodies
reach messages only as `Response.error_text` (known fields, truncated, scrubbed).

Not verified against the live service (no test here can reach it): whether a bearer obtained with a PAT
(rather than the account password) may create access tokens, and whether OATs need an org owner.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .. import redact
from ..errors import (
    DestinationRefused,
    MintOutcomeUnknown,
    ProviderAuthError,
    ProviderError,
)
from ..hosts import Origin
from ..http.deadline import Deadline
from ..http.policy import same_origin_link
from ..http.transport import Response, Transport
from ..registry.credential import Credential
from ..registry.reference import DOCKER_HUB
from ..timefmt import format_time, parse_time_or_none
from .base import (
    AdminField,
    BuildContext,
    IssuedCredential,
    Lifetime,
    ProviderPlugin,
    ProviderSpec,
    Setting,
    Strategy,
    VendorToken,
)
from .vendor_api import VendorApi

DEFAULT_API = Origin("https", "hub.docker.com", 443)
DEFAULT_REGISTRY = Origin("https", DOCKER_HUB, 443)
# auth.docker.io is the realm registry-1.docker.io names in its Bearer challenge.
DEFAULT_REALM = Origin("https", "auth.docker.io", 443)
SPEC = ProviderSpec(
    name="dockerhub",
    strategy=Strategy.OVERLAP,
    default_registry=DEFAULT_REGISTRY,
    default_api=DEFAULT_API,
    registries=frozenset({DEFAULT_REGISTRY}),
    apis=frozenset({DEFAULT_API}),
    realms=frozenset({DEFAULT_REALM}),
    label_max=100,  # token_label and label: 1 to 100 characters
    title="Docker Hub",
    credential="personal access token with repo:read, or an organization access token with image pull",
    setup="an admin secret with the Docker Hub user and its password or a PAT that may manage access tokens "
    "(an organization owner for organization access tokens)",
    admin_permissions="a Docker Hub user (the organization's owner for --org); its PAT, if used, needs no "
    "scope beyond managing access tokens",
    username_form="the admin user for a PAT; the organization's name for an organization access token",
    realm_note="registry-1.docker.io, token realm auth.docker.io, API hub.docker.com (fixed)",
    lifetime=Lifetime(min_s=3600, never_expires=True, note="expires_at is optional; regcred always sets it"),
    cannot=(
        "mint tokens for repositories of another account than the admin's or its organization",
        "narrow a personal access token to some repositories: repo:read reads every repository the user can",
    ),
    admin_fields=(
        AdminField("username", "the Docker Hub user"),
        AdminField("password", "its password or a personal access token", secret=True),
    ),
    settings=(
        Setting(
            "org",
            "the Docker Hub organization: mint organization access tokens instead of PATs",
            pattern=r"[a-z0-9][a-z0-9_-]{0,254}",
        ),
    ),
)
PAT_SCOPES = ("repo:read",)
PAGE_SIZE = 100
MAX_PAGES = 50
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TOKEN_RE = re.compile(r"[\x21-\x7e]{8,4096}")
_ORG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,254}")


class DockerHubProvider:
    """Mints, lists, describes and revokes Docker Hub access tokens with an admin identity."""

    spec = SPEC

    def __init__(
        self,
        admin: Credential,
        *,
        api: Origin = DEFAULT_API,
        org: str | None = None,
        transport: Transport,
        deadline: Deadline | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if org is not None and _ORG_RE.fullmatch(org) is None:
            raise ProviderError(
                "the Docker Hub organization (regcred:org) must be a lower-case Docker Hub name"
            )
        self._admin = admin
        self._api = api
        self.org = org
        self._transport = transport
        self._deadline = deadline
        self._page_size = page_size
        self._bearer: str | None = None
        redact.remember(admin.password)
        self._http = VendorApi(
            "Docker Hub",
            api,
            transport=transport,
            auth=self._auth,
            secrets=(admin.password,),
            deadline=deadline,
            permissions="an owner of the organization (for organization access tokens)",
            admin_hint="update the admin secret named by the regcred:admin-secret tag",
            error_fields=("message", "detail", "details"),
        )

    # -- HTTP ------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        auth: bool = True,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> Response:
        return self._http.send(method, path_or_url, auth=auth, json_body=json_body, idempotent=idempotent)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._login()}"}

    def _login(self) -> str:
        if self._bearer is None:
            # A login creates no credential regcred would have to revoke: it may be retried.
            response = self._send(
                "POST",
                "/v2/auth/token",
                auth=False,
                json_body={"identifier": self._admin.username, "secret": self._admin.password},
                idempotent=True,
            )
            if response.status in (401, 403):
                raise ProviderAuthError(
                    f"Docker Hub rejected the admin identity {self._admin.username!r} "
                    f"(HTTP {response.status}): update the admin secret named by the regcred:admin-secret "
                    "tag with a valid password or PAT"
                )
            body = self._json(response, "POST /v2/auth/token", expect=(200,))
            token = body.get("access_token") or body.get("token")
            if not isinstance(token, str) or _TOKEN_RE.fullmatch(token) is None:
                raise ProviderError("Docker Hub POST /v2/auth/token answered without a usable access_token")
            redact.remember(token)
            self._bearer = token
        return self._bearer

    def _json(self, response: Response, what: str, *, expect: tuple[int, ...]) -> dict[str, Any]:
        return self._http.expect_object(response, what, expect)

    # -- Provider protocol -----------------------------------------------------------------------

    @property
    def _tokens_path(self) -> str:
        return f"/v2/orgs/{quote(self.org, safe='')}/access-tokens" if self.org else "/v2/access-tokens"

    def valid_token_id(self, token_id: str) -> bool:
        """PAT uuids and OAT ids are lower-case UUIDs."""
        return isinstance(token_id, str) and _UUID_RE.fullmatch(token_id) is not None

    def _token_path(self, token_id: str) -> str:
        if not self.valid_token_id(token_id):
            raise ProviderError("refusing a Docker Hub token id that is not a UUID")
        return f"{self._tokens_path}/{quote(token_id, safe='')}"

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        """Create a PAT (or an OAT when an organization is configured) labelled ``label``; sent once."""
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
            payload["expires_at"] = format_time(expires_at)
        what = f"POST {self._tokens_path}"
        response = self._http.mint("POST", self._tokens_path, what, json_body=payload)
        body = self._json(response, what, expect=(200, 201))
        token = body.get("token")
        token_id = body.get("id") if self.org else body.get("uuid")
        if (
            not isinstance(token, str)
            or _TOKEN_RE.fullmatch(token) is None
            or not self.valid_token_id(str(token_id))
        ):
            raise MintOutcomeUnknown(f"Docker Hub {what} answered without a usable token and id")
        redact.remember(token)
        return IssuedCredential(
            username=self.org if self.org else self._admin.username,
            password=token,
            token_id=str(token_id),
            expires_at=parse_time_or_none(body.get("expires_at")) or expires_at,
        )

    def _record(self, item: Any) -> VendorToken | None:
        if not isinstance(item, dict):
            return None
        token_id = item.get("id") if self.org else item.get("uuid")
        label = item.get("label") if self.org else item.get("token_label")
        if not isinstance(token_id, str) or not self.valid_token_id(token_id) or not isinstance(label, str):
            return None
        active = item.get("is_active", True) is not False
        return VendorToken(token_id, label, active, parse_time_or_none(item.get("expires_at")))

    def list_tokens(self) -> list[VendorToken]:
        """Every token of the listing, across its pages (``next`` must stay on the API origin)."""
        found: list[VendorToken] = []
        url: str | None = self._api.url(f"{self._tokens_path}?page=1&page_size={self._page_size}")
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            body = self._json(self._send("GET", url), f"GET {self._tokens_path}", expect=(200,))
            results = body.get("results")
            for item in results if isinstance(results, list) else []:
                record = self._record(item)
                if record is not None and record.active:
                    found.append(record)
            next_url = body.get("next")
            try:
                url = (
                    same_origin_link(self._api, next_url) if isinstance(next_url, str) and next_url else None
                )
            except DestinationRefused as exc:
                raise ProviderError(f"Docker Hub listing of {self._tokens_path}: {exc}") from None
        raise ProviderError(f"Docker Hub listing of {self._tokens_path} has more than {MAX_PAGES} pages")

    def describe_token(self, token_id: str) -> VendorToken | None:
        """GET the token by id; None when Docker Hub does not know it."""
        path = self._token_path(token_id)
        response = self._send("GET", path)
        if response.status == 404:
            return None
        record = self._record(self._json(response, f"GET {self._tokens_path}/<id>", expect=(200,)))
        if record is None or record.token_id != token_id:
            raise ProviderError(f"Docker Hub GET {self._tokens_path}/<id> answered for another token")
        return record

    def revoke(self, token_id: str) -> None:
        """Delete a token; 404 means it is already gone."""
        response = self._send("DELETE", self._token_path(token_id))
        if response.status in (200, 202, 204, 404):
            return
        self._json(response, f"DELETE {self._tokens_path}/<id>", expect=(204,))


def _build(ctx: BuildContext) -> DockerHubProvider:
    assert ctx.routing.api is not None and ctx.admin is not None
    return DockerHubProvider(
        Credential(ctx.admin.username, ctx.admin.password),
        api=ctx.routing.api,
        org=ctx.settings.get("org"),
        transport=ctx.transport,
        deadline=ctx.deadline,
    )


PLUGIN = ProviderPlugin(SPEC, _build)
