"""JFrog Artifactory (self-managed, or ``<name>.jfrog.io``): access tokens of the JFrog Platform's Access
service, minted for one pull user and revoked by id.

API as documented in the JFrog REST APIs (https://jfrog.com/help/r/jfrog-rest-apis/...) and the platform
reference (https://docs.jfrog.com/administration/reference/...):

- Create: ``POST /access/api/v1/tokens`` (jfrog-rest-apis/create-token, create-token-api-examples;
  administration/reference/createToken): ``grant_type`` client_credentials, ``username`` (at most 255),
  ``scope`` (``applied-permissions/user``: the user's own permissions), ``expires_in`` (seconds; 0 means
  never, admin only), ``refreshable``, ``description`` (at most 1024), ``include_reference_token``,
  ``force_revocable`` (since 7.50.3). Reply ``{token_id, access_token, expires_in, scope, token_type,
  refresh_token?, reference_token?}``. 400 invalid input, 401, 403 when ``expires_in`` is over the limit
  the admin set or the scope is not allowed. Only admins mint for another user.
- List: ``GET /access/api/v1/tokens`` (jfrog-rest-apis/get-tokens): ``{"tokens": [{token_id, subject,
  expiry?, issued_at, issuer, description?, refreshable}]}``, epoch seconds; no pagination is documented,
  so one answer is the whole listing; an empty list is a 200. Admins see every token, others their own.
  ``subject`` names the token's user (``jfac@<instance>/users/<user>``). The ``description`` filter takes
  a trailing wildcard; regcred asks for ``regcred*`` (every label starts so).
- Get: ``GET /access/api/v1/tokens/{id}`` (jfrog-rest-apis/get-token-by-id): the same record; 404.
- Revoke: ``DELETE /access/api/v1/tokens/{id}`` (jfrog-rest-apis/revoke-token-by-id): 200 revoked; 204
  when the id is not found (already revoked); 400 for a token of another instance; 401; 403.
- Revocability (jfrog-platform-administration-documentation/generate-expirable-tokens,
  revocable-expiry-threshold, use-the-revocable-and-persistency-thresholds, persistency-threshold,
  view-and-revoke-tokens): a token whose lifetime is under ``revocable-expiry-threshold`` (6 h by default)
  cannot be revoked unless created with ``force_revocable``; one under ``persistent-expiry-threshold``
  (3 h by default) is not stored at all, so it could never be listed, described or revoked.
- Errors: Artifactory's documented shape is ``{"errors": [{"status", "message"}]}``
  (jfrog-rest-apis/error-responses); the Access service answers ``{"errors": [{"code", "message"}]}`` and,
  for a refused revocation, ``{"code": "BAD_REQUEST", "message": "Token not revocable", "detail"}`` (not in
  the reference: the shapes JFrog's own github.com/jfrog/vault-plugin-secrets-artifactory parses, and the
  answer quoted in github.com/jfrog/jfrog-client-go issue 753). `Response.error_text` reads ``errors``,
  ``message`` and ``detail``.
- Docker: with the repository path access method an image is ``<host>/<repo-key>/<image>`` and the registry
  names the realm ``https://<host>/artifactory/api/docker/<repo-key>/v2/token``, on the platform host.

Decisions where the docs are silent or conflict:

- ``expires_in`` is always sent (never 0), from the requested expiry: the documented default is 3600 s on
  one page and a year on another. Lifetimes under 6 h (less 5 minutes of slack for the caller's clock) are
  refused before anything is sent, because of the persistency threshold above (a token nobody could list
  or revoke).
- ``force_revocable: true`` is always sent: the revocable threshold is the instance's configuration (an
  admin may raise it), which regcred cannot read with a pull user's token, and a token regcred cannot
  revoke after the grace period defeats rotation. It needs Artifactory 7.50.3 or later.
- The request body is JSON (the reference's body schema; the examples also show form fields).
- ``refreshable`` is false: whether a refresh kills the old token is not documented, and regcred rotates by
  minting anew.

Not verified against a live instance: how versions before 7.50.3 treat ``force_revocable``; whether the
``description`` filter is applied the same way by every version.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from .. import redact
from ..errors import ConfigurationError, MintOutcomeUnknown, ProviderError
from ..hosts import Origin
from ..http.deadline import Deadline
from ..http.transport import Response, Transport
from ..timefmt import from_epoch
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

__all__ = ["PLUGIN", "SPEC", "ArtifactoryProvider"]

ACCESS_BASE = "/access/api/v1"
TOKENS = "/tokens"
SCOPE = "applied-permissions/user"
DESCRIPTION_MAX = 1024
# Lifetimes under the documented defaults of the persistency (3 h) and revocable (6 h) thresholds are refused.
MIN_LIFETIME_S = 6 * 3600
CLOCK_SLACK_S = 300  # the caller computed the expiry a moment ago
LISTING_FILTER = "regcred*"  # every regcred label starts with "regcred " (regcred.labels)
USER_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._@+-]{0,254}"
_USER_RE = re.compile(USER_PATTERN)
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TOKEN_RE = re.compile(r"[\x21-\x7e]{16,8192}")
_PERMISSIONS = (
    "an access token that may create tokens for the pull user: an admin's token to mint for another user, "
    "or the pull user's own token (scope applied-permissions/user) to mint for itself"
)

SPEC = ProviderSpec(
    name="artifactory",
    strategy=Strategy.OVERLAP,
    default_registry=None,
    default_api=None,
    needs_api=True,
    label_max=DESCRIPTION_MAX,  # description: at most 1024 characters
    title="JFrog Artifactory",
    credential="an access token of the pull user (scope applied-permissions/user), not refreshable, created "
    "with force_revocable and an explicit expiry",
    setup="an Artifactory user with read on the Docker repository (a permission target), and an admin secret "
    "holding an access token that may create tokens for that user",
    admin_permissions="an admin's access token to mint for another user (--user); without --user, the pull "
    "user's own access token (scope applied-permissions/user) mints for itself",
    username_form="the pull user: --user, or the admin secret's username",
    realm_note="self-managed or <name>.jfrog.io, so no default hosts: --registry is the Docker registry host "
    "(repository path method: images are <host>/<repo-key>/<image>), --api the platform origin "
    "(https://<host>; regcred adds /access/api/v1). The registry's token realm, "
    "https://<host>/artifactory/api/docker/<repo-key>/v2/token, is on the API host, which is trusted as a "
    "realm; name another realm host with --realm-host",
    lifetime=Lifetime(
        min_s=MIN_LIFETIME_S,
        note="expires_in is always sent, never 0; at least 6 h (tokens under the persistency threshold, 3 h "
        "by default, are not stored, so could not be listed or revoked); force_revocable keeps them "
        "revocable under the revocable-expiry-threshold; a token.max-expiry, when set, caps non-admin "
        "tokens (HTTP 403)",
    ),
    cannot=(
        "mint tokens for groups or projects: the scope is always the pull user's own permissions",
        "revoke a token issued by another instance unless Access Federation joins them",
        "work with Artifactory before 7.50.3 (force_revocable; the Access tokens API needs 7.21.1)",
        "mint with a password: the admin secret holds an access token, sent as a Bearer token",
    ),
    admin_fields=(
        AdminField(
            "username", "the Artifactory user the admin access token belongs to (the default pull user)"
        ),
        AdminField(
            "password",
            "an access token (Bearer) of that user that may create tokens for the pull user: an admin's "
            "token, or the pull user's own",
            secret=True,
        ),
    ),
    settings=(
        Setting(
            "user",
            "the Artifactory user the pull tokens are minted for; it needs read on the Docker repository "
            "through a permission target, and minting for another user than the admin secret's needs an "
            "admin token (default: the admin secret's username)",
            pattern=USER_PATTERN,
        ),
    ),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(value: Any) -> int | None:
    """A whole number of seconds (a JSON number, or digits), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return int(text)
    return None


def _epoch(value: Any) -> datetime | None:
    return from_epoch(_seconds(value))


class ArtifactoryProvider:
    """Mints, lists, describes and revokes Artifactory access tokens of one pull user."""

    spec = SPEC

    def __init__(
        self,
        *,
        api: Origin,
        admin_user: str,
        admin_token: str,
        user: str | None = None,
        transport: Transport,
        deadline: Deadline | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        pull_user = user or admin_user
        if not isinstance(pull_user, str) or _USER_RE.fullmatch(pull_user) is None:
            where = "the regcred:user tag" if user else 'the admin secret\'s "username"'
            raise ConfigurationError(
                f"{where} is not an Artifactory user name (1-255 letters, digits, '.', '_', '@', '+' or '-')"
            )
        self.user = pull_user
        self._clock = clock
        redact.remember(admin_token)
        self._api = VendorApi(
            "Artifactory",
            api,
            transport=transport,
            auth={"Authorization": f"Bearer {admin_token}"},
            secrets=(admin_token,),
            deadline=deadline,
            base_path=ACCESS_BASE,
            permissions=_PERMISSIONS,
            admin_hint='update the "password" (an access token) of the admin secret named by the '
            "regcred:admin-secret tag",
            error_fields=("errors", "message", "detail"),
        )

    def __repr__(self) -> str:
        return f"ArtifactoryProvider(api={self._api.api.netloc!r}, user={self.user!r})"

    # -- ids -------------------------------------------------------------------------------------

    def valid_token_id(self, token_id: str) -> bool:
        """Access token ids are UUIDs (``me``, which the API also takes, never passes)."""
        return isinstance(token_id, str) and _UUID_RE.fullmatch(token_id) is not None

    def _token_path(self, token_id: str) -> str:
        if not self.valid_token_id(token_id):
            raise ProviderError("refusing an Artifactory token id that is not a UUID")
        return f"{TOKENS}/{quote(token_id, safe='')}"

    # -- mint ------------------------------------------------------------------------------------

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        """Create an access token for the pull user, labelled ``label`` in its description; sent once."""
        if expires_at is None:
            raise ProviderError(
                "regcred mints Artifactory tokens only with an expiry: one that never expires (expires_in 0) "
                "would outlive every rotation"
            )
        if not isinstance(label, str) or not 1 <= len(label) <= DESCRIPTION_MAX:
            raise ProviderError(f"an Artifactory token description is 1 to {DESCRIPTION_MAX} characters")
        now = self._clock()
        lifetime = math.ceil((expires_at - now).total_seconds())
        if lifetime < MIN_LIFETIME_S - CLOCK_SLACK_S:
            raise ProviderError(
                f"an Artifactory token must live at least {MIN_LIFETIME_S // 3600} h (asked: "
                f"{max(lifetime, 0)} s): shorter ones fall under the persistency threshold (3 h by "
                "default) and are not stored, so regcred could neither list nor revoke them; use a --ttl "
                "(regcred:ttl) of 6h or more"
            )
        payload = {
            "grant_type": "client_credentials",
            "username": self.user,
            "scope": SCOPE,
            "expires_in": lifetime,
            "refreshable": False,
            "description": label,
            "include_reference_token": False,
            "force_revocable": True,
        }
        what = f"POST {ACCESS_BASE}{TOKENS}"
        response = self._api.mint("POST", TOKENS, what, json_body=payload)
        if response.status not in (200, 201):
            raise self._mint_failure(response, what, lifetime)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        token, token_id = body.get("access_token"), body.get("token_id")
        if (
            not isinstance(token, str)
            or _TOKEN_RE.fullmatch(token) is None
            or not self.valid_token_id(str(token_id))
        ):
            raise MintOutcomeUnknown(
                f"Artifactory {what} answered without a usable access_token and token_id"
            )
        redact.remember(
            token, *(v for k in ("refresh_token", "reference_token") if isinstance(v := body.get(k), str))
        )
        granted = _seconds(body.get("expires_in"))
        expiry = now + timedelta(seconds=granted) if granted else expires_at
        return IssuedCredential(username=self.user, password=token, token_id=str(token_id), expires_at=expiry)

    def _mint_failure(self, response: Response, what: str, lifetime: int) -> ProviderError:
        if response.status != 403:
            return self._api.fail(response, what)
        message = response.error_text(self._api.error_fields)
        return ProviderError(
            f"Artifactory {what} failed: HTTP 403{': ' + message if message else ''} (Artifactory refused "
            f"the token: an expiry of {lifetime} s may be over the instance's token.max-expiry, which binds "
            f"non-admin tokens, or the admin token may not create a token of scope {SCOPE} for user "
            f"{self.user!r}; minting for another user needs an admin's token. Shorten --ttl (regcred:ttl), "
            "or put an admin's access token in the admin secret)"
        )

    # -- read ------------------------------------------------------------------------------------

    def _record(self, item: Any) -> VendorToken | None:
        if not isinstance(item, dict):
            return None
        token_id = item.get("token_id")
        if not isinstance(token_id, str) or not self.valid_token_id(token_id):
            return None
        description = item.get("description")
        expires_at = _epoch(item.get("expiry"))
        active = expires_at is None or expires_at > self._clock()
        return VendorToken(token_id, description if isinstance(description, str) else "", active, expires_at)

    def list_tokens(self) -> list[VendorToken]:
        """Every live token whose description starts with ``regcred`` that the admin token can see (admins see
        every user's; others their own). One answer: the API documents no pagination."""
        what = f"GET {ACCESS_BASE}{TOKENS}"
        body = self._api.expect_object(
            self._api.send("GET", TOKENS, params={"description": LISTING_FILTER}), what
        )
        items = body.get("tokens", [])
        if not isinstance(items, list):
            raise ProviderError(f"Artifactory {what} answered with unexpected JSON (no token list)")
        found = [record for record in map(self._record, items) if record is not None]
        return [record for record in found if record.active]

    def describe_token(self, token_id: str) -> VendorToken | None:
        """GET the token by id; None when Artifactory does not know it (revoked, expired or never stored)."""
        what = f"GET {ACCESS_BASE}{TOKENS}/<id>"
        response = self._api.send("GET", self._token_path(token_id))
        if response.status == 404:
            return None
        record = self._record(self._api.expect_object(response, what))
        if record is None or record.token_id.lower() != token_id.lower():
            raise ProviderError(f"Artifactory {what} answered for another token")
        return record

    # -- revoke ----------------------------------------------------------------------------------

    def revoke(self, token_id: str) -> None:
        """Revoke a token by id: 200 revoked, 204 (and 404) already gone."""
        what = f"DELETE {ACCESS_BASE}{TOKENS}/<id>"
        response = self._api.send("DELETE", self._token_path(token_id))
        if response.status in (200, 202, 204, 404):
            return
        if response.status == 400:
            message = response.error_text(self._api.error_fields)
            raise ProviderError(
                f"Artifactory {what} failed: HTTP 400{': ' + message if message else ''} (Artifactory "
                "cannot revoke this token: one whose lifetime is under the revocable-expiry-threshold and "
                "was created without force_revocable (Artifactory before 7.50.3), or one issued by another "
                "instance without Access Federation, stays valid until it expires; revoke it where it was "
                "issued)"
            )
        raise self._api.fail(response, what)


def _build(ctx: BuildContext) -> ArtifactoryProvider:
    if ctx.routing.api is None or ctx.admin is None:
        raise ConfigurationError("the artifactory provider needs its API origin and its admin secret")
    return ArtifactoryProvider(
        api=ctx.routing.api,
        admin_user=ctx.admin.username,
        admin_token=ctx.admin.password,
        user=ctx.settings.get("user") or None,
        transport=ctx.transport,
        deadline=ctx.deadline,
    )


PLUGIN = ProviderPlugin(SPEC, _build)
