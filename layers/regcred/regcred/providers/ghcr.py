"""GitHub Container Registry (ghcr.io) with personal access tokens (classic) that an operator supplies.

regcred cannot mint GHCR credentials: GitHub has no API that creates, renews or rotates a personal access
token, and GitHub Packages accepts only personal access tokens (classic). So this provider is a
`TokenInspector` (strategy IMPORT): an operator creates each new classic PAT with the ``read:packages``
scope and hands it over with ``regcred import NAME --username LOGIN``; it then goes through the same
pending -> test -> promote path as a rotation, proven through ghcr.io's own ``/v2/`` token flow (realm
``https://ghcr.io/token``, service ``ghcr.io``), and the old one is retired after the grace period.

- `GhcrInspector.inspect` asks GitHub about the token: ``GET /user`` with ``Authorization: Bearer <PAT>``
  (GitHub takes ``Bearer`` or ``token`` for a PAT; only ``Bearer`` for a JWT). The login of the answer is
  the registry username. ``X-OAuth-Scopes`` lists a classic token's scopes (a fine-grained token or an App
  token has none): the token must hold ``read:packages``, or ``write:packages``, which the docs say also
  downloads images (``delete:packages`` alone does not: the docs ask for ``read:packages`` beside it). The
  ``GitHub-Authentication-Token-Expiration`` header (``2027-01-01 00:00:00 UTC``) is the token's expiry;
  GitHub sends none for a token without one.
- `GhcrInspector.revoke_value` revokes the old token when the secret's ``regcred:revoke-on-retire`` tag is
  ``true``: ``POST /credentials/revoke`` with ``{"credentials": [PAT]}``, unauthenticated (GitHub answers an
  authenticated request 403), 202 Accepted; 422 for a malformed request or past the endpoint's limit of 60
  requests an hour. GitHub notifies the token's owner of the revocation.
- Rate limits: a 403 or 429 with ``retry-after``, or with ``x-ratelimit-remaining: 0`` (then
  ``x-ratelimit-reset``, epoch seconds, says when), is reported as such; the transport itself waits a short
  ``retry-after`` for a GET.

Every call goes through `VendorApi` (the API origin from `regcred.routing`, no redirects, error bodies
only as `Response.error_text`); the token is remembered for scrubbing before anything is sent, and rides
in the Authorization header (built per call) or the request body, scrubbed from every error text.

GitHub documentation followed (docs.github.com, with their source paths in the github/docs repository):

- rest/authentication/authenticating-to-the-rest-api (content/rest/authentication/authenticating-to-the-
  rest-api.md; data/reusables/getting-started/bearer-vs-token.md): Bearer or token; failed-login 403s
- apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps (X-OAuth-Scopes, X-Accepted-OAuth-Scopes, the
  scope list, normalized scopes)
- packages/learn-github-packages/about-permissions-for-github-packages;
  data/reusables/package_registry/packages-classic-pat-only.md and
  authenticate-to-container-registry-steps.md (classic PATs only; read/write/delete:packages; docker login
  with your GitHub username)
- rest/using-the-rest-api/rate-limits-for-the-rest-api and troubleshooting-the-rest-api (x-ratelimit-*
  headers, 403/429, retry-after; the 401 body ``{"message": "Bad credentials", ...}`` as GitHub answers it)
- rest/credentials/revoke ("Revoke a list of credentials": unauthenticated, 60 requests an hour, at most
  1000 tokens, 202, 422)
- authentication/keeping-your-account-and-data-secure/about-authentication-to-github ("GitHub's token
  formats": ghp_, github_pat_, gho_, ghu_, ghs_, ghr_) and token-expiration-and-revocation (a token unused
  for a year is revoked)
- github/roadmap#203 (GitHub's own roadmap issue: the expiry of a PAT is returned in a response header)

Not verified against the live service (no test here can reach it): whether ghcr.io checks the username at
all (the docs say to use your GitHub username; regcred always sends the token owner's login), the exact
set of zone spellings of the expiration header (``UTC`` and numeric offsets are read), and whether a
revocation the API accepted (202) takes effect at once. GitHub Enterprise Server is not covered: its API
lives under ``/api/v3``, and its revocation endpoint takes authenticated requests instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from .. import redact
from ..errors import ConfigurationError, ProviderError
from ..hosts import Origin
from ..http.deadline import Deadline
from ..http.transport import Response, Transport
from ..timefmt import format_time
from .base import (
    BuildContext,
    ImportedCredential,
    Lifetime,
    ProviderPlugin,
    ProviderSpec,
    Setting,
    Strategy,
)
from .vendor_api import VendorApi

__all__ = ["DEFAULT_API", "DEFAULT_REGISTRY", "PLUGIN", "SPEC", "GhcrInspector", "parse_expiration"]

DEFAULT_REGISTRY = Origin("https", "ghcr.io", 443)
# ghcr.io's Bearer challenge names https://ghcr.io/token: the realm lives on the registry host.
DEFAULT_REALM = Origin("https", "ghcr.io", 443)
DEFAULT_API = Origin("https", "api.github.com", 443)
REVOKE_ON_RETIRE = "revoke-on-retire"
API_VERSION = "2022-11-28"
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
READ_SCOPE = "read:packages"
# Scopes that download images: write:packages "to download and upload container images".
PULL_SCOPES = frozenset({READ_SCOPE, "write:packages"})
TOKENS_PAGE = "GitHub's Settings > Developer settings > Personal access tokens > Tokens (classic)"
LOW_RATE_REMAINING = 10

SPEC = ProviderSpec(
    name="ghcr",
    strategy=Strategy.IMPORT,
    default_registry=DEFAULT_REGISTRY,
    default_api=DEFAULT_API,
    registries=frozenset({DEFAULT_REGISTRY}),
    apis=frozenset({DEFAULT_API}),
    realms=frozenset({DEFAULT_REALM}),
    needs_api=True,
    label_max=0,  # nothing is minted, so nothing is labelled: an imported token is named by its fingerprint
    title="GitHub Container Registry (ghcr.io)",
    credential="a personal access token (classic) with read:packages, supplied with regcred import",
    setup="a GitHub user (a machine user is best) that can read the packages, and a personal access token "
    "(classic) of that user with only the read:packages scope (authorized for SAML SSO if the organization "
    "enforces it); hand each new one over with regcred import NAME --username LOGIN before the old one "
    "expires",
    admin_permissions="none: regcred holds no GitHub admin credential",
    username_form="the GitHub login of the token's owner (given with --username; checked against GitHub)",
    realm_note="registry ghcr.io with its token realm https://ghcr.io/token (service ghcr.io), API "
    "api.github.com (fixed; --registry and --api only for hosts the deployment allows)",
    lifetime=Lifetime(
        min_s=0,
        never_expires=True,
        note="a classic PAT expires when its owner chose (7 to 90 days, a custom date, or never); regcred "
        "reads the expiry from GitHub, which also revokes a token unused for a year",
    ),
    cannot=(
        "mint, renew or rotate personal access tokens: GitHub has no API for it; the operator creates each "
        "new classic PAT and imports it",
        "use fine-grained personal access tokens or GitHub App tokens: GitHub's docs say GitHub Packages "
        "supports only personal access tokens (classic)",
        "pull what the token's owner cannot read: a classic PAT acts as its user, on every package that "
        "user can read",
        "confirm a revocation: GitHub's revocation API accepts it (202) without saying whether the token "
        "was live",
    ),
    admin_fields=(),
    settings=(
        Setting(
            REVOKE_ON_RETIRE,
            "after the grace period, revoke the old token through GitHub's credential-revocation API "
            "(unauthenticated, 60 requests an hour; GitHub notifies the token's owner); false: only record "
            "it as retired, and delete it in GitHub's settings yourself",
            choices=("true", "false"),
            default="false",
        ),
    ),
)

_TOKEN_RE = re.compile(r"[\x21-\x7e]{8,255}")
# A GitHub login: letters, digits and single hyphens, not at either end, at most 39 characters.
_LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_SCOPE_RE = re.compile(r"[a-z_:]{1,40}")
_RESOURCE_RE = re.compile(r"[a-z_]{1,40}")
_EXPIRATION_RE = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})\s*(UTC|GMT|Z|[+-]\d{2}:?\d{2})")
# GitHub's token prefixes ("GitHub's token formats") that are not personal access tokens (classic).
_NOT_CLASSIC = {
    "github_pat_": "a fine-grained personal access token",
    "gho_": "an OAuth app token",
    "ghu_": "a GitHub App user access token",
    "ghs_": "a GitHub App installation access token",
    "ghr_": "a GitHub App refresh token",
}


def parse_expiration(value: str) -> datetime | None:
    """The ``GitHub-Authentication-Token-Expiration`` header (``2027-01-01 00:00:00 UTC``, or a numeric
    offset such as ``+0900``) as a UTC time; None when it is not in that form."""
    m = _EXPIRATION_RE.fullmatch(value.strip())
    if m is None:
        return None
    day, clock, zone = m.groups()
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        return None
    if zone in ("UTC", "GMT", "Z"):
        offset = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 14 or minutes > 59:
            return None
        offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.replace(tzinfo=offset).astimezone(UTC)


def _digits(response: Response, name: str) -> int | None:
    value = (response.header(name) or "").strip()
    return int(value) if value.isdigit() and len(value) <= 12 else None


def rate_limit_note(response: Response) -> str | None:
    """What a 403/429 says about GitHub's rate limits (None when it is not a rate-limit answer)."""
    if response.status not in (403, 429):
        return None
    after = _digits(response, "Retry-After")
    if after is not None:
        return f"GitHub's rate limit was exceeded: retry after {after} s"
    if _digits(response, "X-RateLimit-Remaining") == 0:
        resource = (response.header("X-RateLimit-Resource") or "").strip()
        shown = f"{resource} " if _RESOURCE_RE.fullmatch(resource) else ""
        limit = _digits(response, "X-RateLimit-Limit")
        per = f" of {limit} requests an hour" if limit is not None else ""
        reset = _digits(response, "X-RateLimit-Reset")
        when = format_time(datetime.fromtimestamp(reset, UTC)) if reset is not None else "the hour's end"
        return f"GitHub's {shown}rate limit{per} is used up: retry after {when}"
    if response.status == 429 or "rate limit" in response.error_text(("message",)).lower():
        return "GitHub's secondary rate limit was exceeded: wait at least a minute before retrying"
    return None


class GhcrInspector:
    """What regcred can do at GitHub with a GHCR token an operator supplies: inspect it, revoke it."""

    spec = SPEC

    def __init__(
        self,
        *,
        api: Origin = DEFAULT_API,
        transport: Transport,
        deadline: Deadline | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self._origin = api
        self._transport = transport
        self._deadline = deadline
        self._settings = dict(settings or {})

    def _api(self, token: str, *, authenticated: bool) -> VendorApi:
        """A VendorApi for one call: the token is scrubbed from every error text, and is the Authorization
        header (built when the call is sent) only when ``authenticated``."""
        return VendorApi(
            "GitHub",
            self._origin,
            transport=self._transport,
            auth=(lambda: {"Authorization": f"Bearer {token}"}) if authenticated else None,
            secrets=(token,),
            deadline=self._deadline,
            error_fields=("message", "errors"),
        )

    @staticmethod
    def _check_token(token: str) -> None:
        if not isinstance(token, str) or _TOKEN_RE.fullmatch(token) is None:
            raise ProviderError(
                "the GHCR token must be a personal access token (classic): 8 to 255 printable characters "
                "without spaces"
            )
        for prefix, kind in _NOT_CLASSIC.items():
            if token.startswith(prefix):
                raise ProviderError(
                    f"the token is {kind}, and GitHub Packages accepts only personal access tokens "
                    f"(classic, ghp_...): create one with the {READ_SCOPE} scope in {TOKENS_PAGE}"
                )
        redact.remember(token)

    def _failure(self, response: Response, what: str) -> ProviderError:
        """The error for a GitHub answer that is not a success, worded for the imported token."""
        status = response.status
        said = response.error_text(("message", "errors"))
        text = f"GitHub {what} answered HTTP {status}{' (' + said + ')' if said else ''}"
        limited = rate_limit_note(response)
        if limited is not None:
            return ProviderError(f"{text}: {limited}")
        if status == 401:
            return ProviderError(
                f"GitHub rejected the token: {text}. It is wrong, expired or revoked: create a new personal "
                f"access token (classic) with the {READ_SCOPE} scope and import it"
            )
        if status == 403:
            return ProviderError(
                f"GitHub refused the token: {text}. After several failed logins GitHub refuses a user's "
                "logins for a while, and an organization may block classic tokens: wait and retry, or check "
                "the token and the organization's policy"
            )
        if status == 404:
            return ProviderError(
                f"{text}: the API at {self._origin.host_port} is not GitHub's REST API; check the "
                "regcred:api tag"
            )
        if status >= 500:
            return ProviderError(f"{text}: a GitHub-side error; retry later")
        return ProviderError(text)

    # -- TokenInspector ----------------------------------------------------------------------------

    def inspect(self, username: str, password: str) -> ImportedCredential:
        """GET /user with the token: its owner's login (which must be ``username``), its scopes (it must
        pull) and its expiry."""
        self._check_token(password)
        if not isinstance(username, str) or _LOGIN_RE.fullmatch(username) is None:
            raise ProviderError(
                "the GHCR username must be the GitHub login of the token's owner (letters, digits and single "
                "hyphens, at most 39 characters)"
            )
        what = "GET /user"
        api = self._api(password, authenticated=True)
        response = api.send("GET", "/user", headers=HEADERS)
        if response.status != 200:
            raise self._failure(response, what)
        body = api.expect_object(response, what)
        login = body.get("login")
        if not isinstance(login, str) or _LOGIN_RE.fullmatch(login) is None:
            raise ProviderError(f"GitHub {what} answered without a usable login")
        if login.casefold() != username.casefold():
            raise ProviderError(
                f"the token belongs to GitHub user {login}, not {username}: the GHCR username is the token "
                f"owner's login; give --username {login}"
            )
        notes = [self._check_scopes(response)]
        expires_at = None
        header = response.header("GitHub-Authentication-Token-Expiration")
        if header is None:
            notes.append(
                "GitHub reports no expiry for the token: it does not expire (GitHub still revokes a token "
                "unused for a year)"
            )
        else:
            expires_at = parse_expiration(header)
            if expires_at is None:
                notes.append("GitHub reported an expiry regcred cannot read: none was recorded")
        remaining = _digits(response, "X-RateLimit-Remaining")
        if remaining is not None and remaining <= LOW_RATE_REMAINING:
            notes.append(
                f"GitHub's API rate limit for {login} is nearly used up ({remaining} left this hour)"
            )
        return ImportedCredential(expires_at=expires_at, username=login, notes=tuple(n for n in notes if n))

    @staticmethod
    def _check_scopes(response: Response) -> str:
        """Refuse a token that cannot pull; a note when it can do more than pull ("" otherwise)."""
        raw = response.header("X-OAuth-Scopes")
        if raw is None:
            raise ProviderError(
                "GitHub reports no OAuth scopes for the token (no X-OAuth-Scopes header), so it is not a "
                "personal access token (classic), the only kind GitHub Packages accepts: create one with the "
                f"{READ_SCOPE} scope in {TOKENS_PAGE}"
            )
        scopes = {s.strip() for s in raw.split(",") if s.strip()}
        shown = sorted(s for s in scopes if _SCOPE_RE.fullmatch(s))[:12]
        if not scopes & PULL_SCOPES:
            has = ", ".join(shown) if shown else "none"
            raise ProviderError(
                f"the token lacks the {READ_SCOPE} scope that pulls from GHCR (its scopes: {has}): add "
                f"{READ_SCOPE} to it in {TOKENS_PAGE}, or create a new token with it, and import it again"
            )
        extra = [s for s in shown if s != READ_SCOPE]
        if extra:
            return (
                f"the token has scopes beyond {READ_SCOPE} ({', '.join(extra)}): a pull credential needs "
                f"only {READ_SCOPE}"
            )
        return ""

    def can_revoke(self) -> bool:
        """Whether the secret asks for the old token to be revoked at retirement (``revoke-on-retire``)."""
        return self._settings.get(REVOKE_ON_RETIRE, "false") == "true"

    def revoke_value(self, password: str) -> None:
        """POST /credentials/revoke, unauthenticated, with the token in the body; 202 is success.

        The request may be sent again by the transport (on a connection failure or a 502/503/504): revoking
        a token twice has the same outcome as revoking it once, and the endpoint answers 202 whether or not
        the token was live, so a repeat can do no harm, while a revocation that never arrived leaves a live
        token behind. Each attempt counts against the endpoint's 60 requests an hour."""
        self._check_token(password)
        what = "POST /credentials/revoke"
        api = self._api(password, authenticated=False)
        response = api.send(
            "POST",
            "/credentials/revoke",
            json_body={"credentials": [password]},
            headers=HEADERS,
            auth=False,
            idempotent=True,
        )
        if response.status == 202:
            return
        if response.status == 422:
            said = response.error_text(("message", "errors"))
            raise ProviderError(
                f"GitHub {what} answered HTTP 422{' (' + said + ')' if said else ''}: the request was not "
                "valid, or the revocation API's limit (60 requests an hour from one address) was reached; "
                f"retire again later, or delete the token in {TOKENS_PAGE}"
            )
        if response.status == 403 and rate_limit_note(response) is None:
            said = response.error_text(("message", "errors"))
            raise ProviderError(
                f"GitHub {what} answered HTTP 403{' (' + said + ')' if said else ''}: GitHub refuses an "
                "authenticated revocation request, and regcred sends none; check that no proxy adds "
                f"credentials, or delete the token in {TOKENS_PAGE}"
            )
        raise self._failure(response, what)


def _build(ctx: BuildContext) -> GhcrInspector:
    if ctx.routing.api is None:
        raise ConfigurationError(
            "the ghcr provider needs GitHub's API (api.github.com, or the regcred:api tag)"
        )
    return GhcrInspector(
        api=ctx.routing.api, transport=ctx.transport, deadline=ctx.deadline, settings=ctx.settings
    )


PLUGIN = ProviderPlugin(SPEC, _build)
