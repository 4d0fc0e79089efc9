"""GitLab (gitlab.com and self-managed): deploy tokens, or project and group access tokens, with
``read_registry``, minted anew on each rotation and deleted by id after the grace period.

API v4 (``/api/v4`` on the instance's origin, header ``PRIVATE-TOKEN``), as documented in GitLab's own
documentation (https://docs.gitlab.com/..., source ``gitlab-org/gitlab`` ``doc/``):

- Deploy tokens (api/deploy_tokens, ``doc/api/deploy_tokens.md``): ``POST /projects/:id/deploy_tokens``
  (or ``/groups/:id/...``) with ``name``, ``scopes`` and optional ``expires_at`` (ISO 8601 date-time) and
  ``username`` -> 201 ``{id, name, username, expires_at, token, revoked, expired, scopes}``, ``token`` only
  here; ``GET .../deploy_tokens?active=true``; ``GET .../deploy_tokens/:token_id``; ``DELETE
  .../deploy_tokens/:token_id`` -> 204, 404 once deleted. Project tokens need the Maintainer role; group
  tokens are listed by Maintainers, created and deleted only by Owners. The model
  (``app/models/deploy_token.rb``) caps ``name`` and ``username`` at 255 characters; the default username
  is ``gitlab+deploy-token-{id}``, and the registry accepts the token only with exactly that username
  (``lib/gitlab/auth.rb``, ``deploy_token_check``).
- Project and group access tokens (api/project_access_tokens, api/group_access_tokens,
  ``lib/api/resource_access_tokens.rb``): ``POST /projects/:id/access_tokens`` with ``name``,
  ``description``, ``scopes``, ``access_level`` (10, 15, 20, 30, 40, 50; default 40) and ``expires_at``
  (a date, ``YYYY-MM-DD``) -> 201 with ``token`` once; ``GET .../access_tokens?state=active``;
  ``GET .../access_tokens/:token_id``; ``DELETE .../access_tokens/:token_id`` -> 204, or 400/404. They must
  be created with a personal access token (a Maintainer's for projects, an Owner's for groups); each
  creates a bot user. On gitlab.com they need Premium or Ultimate
  (user/project/settings/project_access_tokens).
- **regcred never calls** ``POST .../access_tokens/:token_id/rotate``: it revokes the old token at once, and
  rotating a token that is already revoked revokes every active token of its family (automatic reuse
  detection, api/personal_access_tokens), so a retry after a timed-out rotate would kill the credential
  the secret holds. regcred creates a new token, proves it, promotes it, and revokes the old one by id
  (``DELETE``) after the grace period, like deploy tokens.
- Access tokens expire at 00:00 UTC on their ``expires_at`` date, at most 365 days after today (400 with
  the ``buffered_token_expiration_limit`` flag; ``app/models/personal_access_token.rb``,
  user/profile/personal_access_tokens). regcred rounds the requested expiry *up* to the next date, so a
  token never dies before the time asked for, and reports the real expiry.
- Registry authentication (user/packages/container_registry/authenticate_with_container_registry,
  administration/packages/container_registry): every kind needs ``read_registry``; the token realm is
  ``/jwt/auth`` on the instance (service ``container_registry``). Access tokens pull with any non-blank
  username (only the token is checked): regcred stores ``regcred``. The Reporter role pulls from private
  projects in every version (user/permissions; newer versions also let Guests pull, subject to the
  registry's visibility setting), so access tokens get ``access_level`` 20.
- Pagination (api/rest, ``doc/api/rest/_index.md``): ``page`` and ``per_page`` (max 100); ``Link``
  (``rel="next"``) and ``x-next-page`` headers, some of which gitlab.com may leave out. regcred follows
  ``Link`` when present, else ``x-next-page``, only on the API origin.
- Errors (api/rest/troubleshooting): ``{"message": "..."}``, ``{"message": {"<field>": ["..."]}}`` for
  validation, ``{"error": "..."}`` for a parameter Grape rejects (and ``error_description`` for an
  insufficient scope); 401 for a bad or expired token, 403 for a missing role, 404 for an unknown or
  invisible project, group or token; 429 from the rate limiter with ``Retry-After`` and ``RateLimit-*``
  headers (administration/settings/user_and_ip_rate_limits), possibly with a plain-text body.

Decisions where the docs are silent: a deploy token's username is left to GitLab and the one it returns
is stored; the label is the token's ``name`` (the listing and the single GET both return it); a 400 to the
``DELETE`` of an access token counts as done when GitLab's record of the token says it is no longer active.
Not verified against a live instance (no test here can reach one): the exact 400 texts of the resource
access token endpoints, and whether every version answers 404 (rather than 400) for a token whose bot user
was already deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from .. import redact
from ..errors import ConfigurationError, DestinationRefused, MintOutcomeUnknown, ProviderError
from ..hosts import Origin
from ..http.deadline import Deadline
from ..http.policy import same_origin_link
from ..http.transport import Response, Transport
from ..routing import Routing
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
from .vendor_api import MAX_PAGES, VendorApi, link_next

__all__ = ["ACCESS_TOKEN", "DEPLOY_TOKEN", "PLUGIN", "SPEC", "GitLabProvider"]

API_BASE = "/api/v4"
GITLAB_COM_API = Origin("https", "gitlab.com", 443)
GITLAB_COM_REGISTRY = Origin("https", "registry.gitlab.com", 443)
# registry.gitlab.com names https://gitlab.com/jwt/auth as its realm: the API origin.
GITLAB_COM_REALM = GITLAB_COM_API
DEPLOY_TOKEN = "deploy-token"  # noqa: S105 - a setting value
ACCESS_TOKEN = "access-token"  # noqa: S105 - a setting value
SCOPES = ("read_registry",)
REPORTER = 20
# Registry username of an access token: GitLab checks only the token (any non-blank username works).
ACCESS_TOKEN_USERNAME = "regcred"  # noqa: S105 - a username
DESCRIPTION = "pull credential managed by regcred"
NAME_MAX = 255  # deploy token name: at most 255 characters (app/models/deploy_token.rb)
MAX_LIFETIME_DAYS = 365
PAGE_SIZE = 100
_SEGMENT = r"(?!\.+(?:/|$))[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}"
PROJECT_PATTERN = rf"[1-9][0-9]{{0,18}}|{_SEGMENT}(?:/{_SEGMENT}){{1,20}}"
GROUP_PATTERN = rf"[1-9][0-9]{{0,18}}|{_SEGMENT}(?:/{_SEGMENT}){{0,20}}"
_ID_RE = re.compile(r"[1-9][0-9]{0,18}")
_TOKEN_RE = re.compile(r"[\x21-\x7e]{8,4096}")
_USERNAME_RE = re.compile(r"[A-Za-z0-9.+_-]{1,255}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PERMISSIONS = (
    "a personal access token with the api scope, of a user with the Maintainer role on the project "
    "(--project) or the Owner role on the group (--group)"
)

SPEC = ProviderSpec(
    name="gitlab",
    strategy=Strategy.OVERLAP,
    default_registry=GITLAB_COM_REGISTRY,
    default_api=GITLAB_COM_API,
    registries=frozenset({GITLAB_COM_REGISTRY}),
    apis=frozenset({GITLAB_COM_API}),
    realms=frozenset({GITLAB_COM_REALM}),
    label_max=NAME_MAX,
    title="GitLab (gitlab.com and self-managed)",
    credential="a project or group deploy token with read_registry, or (--token-kind access-token) a "
    "project or group access token with read_registry and the Reporter role; minted anew, never /rotate",
    setup="an admin secret holding a personal access token with the api scope of a project Maintainer (or "
    "group Owner); the managed secret names --project PATH|ID or --group PATH|ID",
    admin_permissions="a personal access token with the api scope (access tokens cannot be created with "
    "another access token), of a user with the Maintainer role on the project for --project, or the Owner "
    "role on the group for --group (group deploy and access tokens are created and deleted only by "
    "Owners); nothing else",
    username_form="deploy token: the username GitLab gives it (gitlab+deploy-token-<id>); access token: "
    f"{ACCESS_TOKEN_USERNAME!r} (GitLab checks only the token)",
    realm_note="gitlab.com: registry registry.gitlab.com, token realm https://gitlab.com/jwt/auth, API "
    "https://gitlab.com (built in). Self-managed: no defaults; give both --registry (the registry host) and "
    "--api (the instance's origin; regcred adds /api/v4), from the deployment's allow-lists. The realm, "
    "/jwt/auth, is on the API origin, which is trusted as a realm",
    lifetime=Lifetime(
        min_s=3600,
        max_s=(MAX_LIFETIME_DAYS - 1) * 86400,
        never_expires=True,
        note="deploy tokens: expires_at is an exact time, optional (never expires without one); access "
        "tokens: a date, expiring at 00:00 UTC, at most 365 days after today, so regcred rounds the expiry "
        "up to the next date and accepts at most 364 days",
    ),
    cannot=(
        "mint access tokens on gitlab.com without Premium or Ultimate (deploy tokens work on every tier)",
        "limit a credential to some repositories: it pulls every image of the project (or of the group's "
        "projects)",
        "pull through the registry on instances with external authorization enabled, which keeps personal "
        "access tokens and deploy tokens away from it",
    ),
    admin_fields=(
        AdminField("username", "the GitLab user whose token the password is (informational)", required=False),
        AdminField(
            "password",
            "a GitLab personal access token with the api scope, of a Maintainer of the project (Owner of the "
            "group for --group)",
            secret=True,
        ),
    ),
    settings=(
        Setting(
            "project",
            "the GitLab project: its numeric id or full path, e.g. acme/app or acme/team/app",
            pattern=PROJECT_PATTERN,
        ),
        Setting(
            "group",
            "the GitLab group (its tokens pull from every project in it): numeric id or full path, e.g. acme",
            pattern=GROUP_PATTERN,
        ),
        Setting(
            "token-kind",
            "deploy-token (default) or access-token (a project or group access token)",
            choices=(DEPLOY_TOKEN, ACCESS_TOKEN),
            default=DEPLOY_TOKEN,
        ),
    ),
)


def expiry_date(moment: datetime) -> date:
    """The ``expires_at`` date of an access token that must live until ``moment``: it dies at 00:00 UTC that
    date, so any time after midnight rounds up to the next date."""
    utc = moment.astimezone(UTC)
    return utc.date() if utc.time() == time(0) else utc.date() + timedelta(days=1)


def _date_expiry(value: object) -> datetime | None:
    """An access token's ``expires_at`` (``YYYY-MM-DD``) as the moment it dies: 00:00 UTC that date."""
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        except ValueError:
            return None
    return parse_time_or_none(value)


class GitLabProvider:
    """Mints, lists, describes and revokes GitLab deploy tokens or access tokens of one project or group."""

    spec = SPEC

    def __init__(
        self,
        token: str,
        *,
        api: Origin = GITLAB_COM_API,
        project: str | None = None,
        group: str | None = None,
        token_kind: str = DEPLOY_TOKEN,
        transport: Transport,
        deadline: Deadline | None = None,
        page_size: int = PAGE_SIZE,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if (project is None) == (group is None):
            raise ConfigurationError(
                "a gitlab secret names exactly one of --project (tag regcred:project) and --group "
                "(tag regcred:group)"
            )
        if token_kind not in (DEPLOY_TOKEN, ACCESS_TOKEN):
            raise ConfigurationError("--token-kind (tag regcred:token-kind) is deploy-token or access-token")
        where, pattern = ("project", PROJECT_PATTERN) if project is not None else ("group", GROUP_PATTERN)
        target = project if project is not None else group
        assert target is not None
        if re.fullmatch(pattern, target) is None:
            raise ConfigurationError(f"--{where} must be a numeric id or a full path such as acme/app")
        redact.remember(token)
        self.kind = token_kind
        self.where = f"{where} {target}"
        self._holder = f"/{where}s/{quote(target, safe='')}"
        self._collection = "/deploy_tokens" if token_kind == DEPLOY_TOKEN else "/access_tokens"
        self._page_size = max(1, min(page_size, 100))
        self._now = now
        self._api = VendorApi(
            "GitLab",
            api,
            transport=transport,
            auth={"PRIVATE-TOKEN": token},
            secrets=(token,),
            deadline=deadline,
            base_path=API_BASE,
            permissions=_PERMISSIONS,
            admin_hint="update the admin secret named by the regcred:admin-secret tag with a valid, "
            "unexpired personal access token with the api scope",
            error_fields=("message", "error", "error_description"),
        )

    # -- paths -----------------------------------------------------------------------------------

    @property
    def _tokens_path(self) -> str:
        return self._holder + self._collection

    def _what(self, method: str, path: str) -> str:
        return f"{method} {API_BASE}{path}"

    def valid_token_id(self, token_id: str) -> bool:
        """Deploy and access token ids are positive integers (no sign, no leading zero)."""
        return isinstance(token_id, str) and _ID_RE.fullmatch(token_id) is not None

    def _token_path(self, token_id: str) -> str:
        if not self.valid_token_id(token_id):
            raise ProviderError("refusing a GitLab token id that is not a positive integer")
        return f"{self._tokens_path}/{quote(token_id, safe='')}"

    # -- Provider protocol -----------------------------------------------------------------------

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        """Create a deploy token (or access token) named ``label`` with read_registry; sent once."""
        if not isinstance(label, str) or not 1 <= len(label) <= NAME_MAX:
            raise ProviderError(f"a GitLab token name is 1 to {NAME_MAX} characters")
        payload: dict[str, Any] = {"name": label, "scopes": list(SCOPES)}
        if self.kind == ACCESS_TOKEN:
            payload.update(description=DESCRIPTION, access_level=REPORTER)
            if expires_at is not None:
                day = expiry_date(expires_at)
                latest = self._now().astimezone(UTC).date() + timedelta(days=MAX_LIFETIME_DAYS)
                if day > latest:
                    raise ProviderError(
                        f"GitLab access tokens live at most {MAX_LIFETIME_DAYS} days: expiry "
                        f"{day.isoformat()} is after {latest.isoformat()}; shorten the secret's ttl "
                        "(regcred:ttl)"
                    )
                payload["expires_at"] = day.isoformat()
        elif expires_at is not None:
            payload["expires_at"] = format_time(expires_at)
        what = self._what("POST", self._tokens_path)
        response = self._api.mint("POST", self._tokens_path, what, json_body=payload)
        body = self._api.expect_object(response, what, (200, 201))
        token, raw_id = body.get("token"), body.get("id")
        token_id = str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) else ""
        if (
            not isinstance(token, str)
            or _TOKEN_RE.fullmatch(token) is None
            or not self.valid_token_id(token_id)
        ):
            raise MintOutcomeUnknown(f"GitLab {what} answered without a usable token and id")
        redact.remember(token)
        if self.kind == DEPLOY_TOKEN:
            username = body.get("username")
            if not isinstance(username, str) or _USERNAME_RE.fullmatch(username) is None:
                # The token exists but cannot be used without its username: the caller revokes it by label.
                raise MintOutcomeUnknown(f"GitLab {what} answered without a usable deploy token username")
            expiry = parse_time_or_none(body.get("expires_at")) or expires_at
        else:
            given = body.get("username")
            username = (
                given if isinstance(given, str) and _USERNAME_RE.fullmatch(given) else ACCESS_TOKEN_USERNAME
            )
            expiry = _date_expiry(body.get("expires_at"))
            if expiry is None and expires_at is not None:
                expiry = datetime.combine(expiry_date(expires_at), time(0), tzinfo=UTC)
        return IssuedCredential(username=username, password=token, token_id=token_id, expires_at=expiry)

    def _record(self, item: Any) -> VendorToken | None:
        if not isinstance(item, dict):
            return None
        raw_id, name = item.get("id"), item.get("name")
        if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or not isinstance(name, str):
            return None
        token_id = str(raw_id)
        if not self.valid_token_id(token_id):
            return None
        active = item.get("revoked") is not True and item.get("expired") is not True
        active = active and item.get("active") is not False
        if self.kind == DEPLOY_TOKEN:
            expires = parse_time_or_none(item.get("expires_at"))
        else:
            expires = _date_expiry(item.get("expires_at"))
        return VendorToken(token_id, name, active, expires)

    def _pages(self, path: str, params: dict[str, Any], what: str) -> Iterator[Any]:
        """Every item of an offset-paginated listing: ``Link: rel="next"`` when GitLab sends one, else
        ``x-next-page``; both only on the API origin."""
        url: str | None = self._api.url(path, {**params, "page": 1, "per_page": self._page_size})
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._api.send("GET", url)
            body = self._api.expect(response, what)
            if not isinstance(body, list):
                raise ProviderError(f"GitLab {what} answered with unexpected JSON (not a list)")
            yield from body
            url = self._next_page(response, path, params)
        raise ProviderError(f"GitLab {what} has more than {MAX_PAGES} pages")

    def _next_page(self, response: Response, path: str, params: dict[str, Any]) -> str | None:
        target = link_next(response.header("Link"))
        if target:
            try:
                return same_origin_link(self._api.api, target, base_url=response.url)
            except DestinationRefused as exc:
                raise ProviderError(f"GitLab listing {API_BASE}{path}: {exc}") from None
        following = (response.header("x-next-page") or "").strip()
        if following.isascii() and following.isdigit() and 0 < int(following) <= 10**6:
            return self._api.url(path, {**params, "page": int(following), "per_page": self._page_size})
        return None

    def list_tokens(self) -> list[VendorToken]:
        """Every active token of the project or group, across its pages."""
        params = {"active": "true"} if self.kind == DEPLOY_TOKEN else {"state": "active"}
        found: dict[str, VendorToken] = {}
        for item in self._pages(self._tokens_path, params, self._what("GET", self._tokens_path)):
            record = self._record(item)
            if record is not None and record.active:
                found.setdefault(record.token_id, record)
        return list(found.values())

    def describe_token(self, token_id: str) -> VendorToken | None:
        """GET the token by id; None when GitLab does not know it (any more)."""
        path = self._token_path(token_id)
        response = self._api.send("GET", path)
        if response.status == 404:
            return None
        what = self._what("GET", path)
        record = self._record(self._api.expect_object(response, what))
        if record is None or record.token_id != token_id:
            raise ProviderError(f"GitLab {what} answered for another token")
        return record

    def revoke(self, token_id: str) -> None:
        """DELETE the token by id; 404 means it is gone already. Never ``/rotate``."""
        path = self._token_path(token_id)
        response = self._api.send("DELETE", path)
        if response.status in (200, 202, 204, 404):
            return
        if response.status == 400 and self.kind == ACCESS_TOKEN:
            record = self.describe_token(token_id)
            if record is None or not record.active:
                return  # revoked before (its bot user may be on its way out)
        raise self._api.fail(response, self._what("DELETE", path))


def check_hosts(routing: Routing) -> None:
    """registry.gitlab.com and gitlab.com go together; a self-managed instance names both of its own, so
    that the admin token of one instance is never sent to another."""
    com_registry = routing.registry == GITLAB_COM_REGISTRY
    com_api = routing.api == GITLAB_COM_API
    api = routing.api.netloc if routing.api is not None else "?"
    if com_registry != com_api:
        raise ConfigurationError(
            "a gitlab secret uses gitlab.com (registry.gitlab.com and https://gitlab.com: give neither "
            "--registry nor --api) or one self-managed instance (give both --registry and --api); "
            f"registry {routing.registry.netloc} and API {api} mix them"
        )


def _build(ctx: BuildContext) -> GitLabProvider:
    assert ctx.routing.api is not None and ctx.admin is not None
    project, group = ctx.settings.get("project"), ctx.settings.get("group")
    if bool(project) == bool(group):
        raise ConfigurationError(
            "a gitlab secret names exactly one of --project (tag regcred:project) and --group "
            f"(tag regcred:group); it names {'both' if project else 'neither'}"
        )
    check_hosts(ctx.routing)
    return GitLabProvider(
        ctx.admin.password,
        api=ctx.routing.api,
        project=project or None,
        group=group or None,
        token_kind=ctx.settings.get("token-kind", DEPLOY_TOKEN),
        transport=ctx.transport,
        deadline=ctx.deadline,
    )


PLUGIN = ProviderPlugin(SPEC, _build)
