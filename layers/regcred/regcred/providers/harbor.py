"""Harbor v2 (self-managed): project robot accounts with pull permission, a new robot per rotation.

API as documented in https://github.com/goharbor/harbor/blob/main/api/v2.0/swagger.yaml (basePath
``/api/v2.0``, HTTP Basic authentication; operations getProject, CreateRobot, ListRobot, GetRobotByID,
DeleteRobot; definitions Robot, RobotCreate, RobotCreated, RobotPermission, Access, Errors; parameters
query, page, pageSize, isResourceName) and in Harbor's guides,
https://goharbor.io/docs/2.5.0/working-with-projects/project-configuration/create-robot-accounts/ and
https://goharbor.io/docs/2.6.0/administration/robot-accounts/. Behaviour the swagger leaves out was read
in Harbor's source (goharbor/harbor, Harbor v2.2 and later):

- ``POST /robots`` (src/server/v2.0/handler/robot.go CreateRobot): the requested name must match
  ``^[a-z0-9]+(?:[._-][a-z0-9]+)*$``, so the regcred label (which has spaces) goes into ``description``;
  ``duration`` is a whole number of days or -1 for never; the answer is 201 with ``Location`` and
  ``RobotCreated`` {id, name, secret, creation_time, expires_at}, the secret shown only there.
- The registry username is the ``name`` that answer carries: src/controller/robot/controller.go stores a
  project robot as ``<project>+<name>`` and shows it with the install's robot name prefix
  (``robot_name_prefix``, default ``robot$``; src/lib/config/metadata/metadatalist.go). regcred never
  builds it.
- A robot name already taken in the project is 409 CONFLICT (src/pkg/robot/dao/dao.go).
- ``GET /robots?q=Level=project,ProjectID=<id>`` lists a project's robots (handler/robot.go ListRobot; the
  project id comes from ``GET /projects/{name}`` with ``X-Is-Resource-Name: true``), ``page_size`` at most
  100, with ``X-Total-Count`` and a ``Link`` header whose targets are relative paths (handler/base.go).
- ``DELETE /robots/{id}`` is 200; a robot that is gone is 404.
- Errors are ``{"errors": [{"code", "message"}]}`` (src/lib/http/error.go).
- Project Admin may create, list, read and delete robots; Maintainer, Developer and Guest only list and
  read them (src/common/rbac/project/rbac_role.go). A robot account may create robots only since v2.12,
  and only with permissions equal to or narrower than its own (handler/robot.go).
- A project a user may not read and a project that does not exist both answer 403 to anyone but a system
  administrator (handler/base.go HasProjectPermission).

Harbor serves the registry (``/v2/``), its token realm (``/service/token``, service ``harbor-registry``)
and the API on one host, so the realm is the API origin, which `regcred.routing` trusts already. At the
realm a credential that does not authenticate (a deleted, disabled or expired robot) is treated as
anonymous: with a scope it gets a token without pull on a private project, so the registry answers 401
insufficient_scope rather than the realm refusing it (src/core/service/token/creator.go,
src/server/middleware/security/robot.go).

Robot names: see `robot_name` (a fresh name per create, so a 409 is never the answer to a retried step).

Every call goes through `VendorApi` (regcred's transport; a create is sent once; pagination links must stay
on the API origin; error bodies reach messages only as `Response.error_text`).

Not verified against a live Harbor (no test here can reach one): the exact status go-swagger gives a
``page_size`` over 100 (never sent: regcred asks for 100), and how the oldest supported release (v2.2)
words its errors.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .. import labels, redact
from ..errors import ConfigurationError, DestinationRefused, MintOutcomeUnknown, ProviderError
from ..hosts import Origin
from ..http.deadline import Deadline
from ..http.policy import same_origin_link
from ..http.transport import Response, Transport, basic_authorization
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
from .vendor_api import MAX_PAGES, VendorApi, link_next

BASE_PATH = "/api/v2.0"
PROJECT_PATTERN = r"(?=.{1,255}\Z)[a-z0-9]+(?:[._-][a-z0-9]+)*"  # src/pkg/project/manager.go
PERMISSIONS = "Project Admin in the Harbor project named by the regcred:project tag"
SPEC = ProviderSpec(
    name="harbor",
    strategy=Strategy.OVERLAP,
    default_registry=None,
    default_api=None,
    needs_api=True,
    # The label is the robot's description: robot.description is varchar(1024).
    label_max=1024,
    title="Harbor v2 (self-managed)",
    credential="a project robot account with pull on the project's repositories (a new robot per rotation; "
    "the old one is deleted after the grace period)",
    setup="a Harbor v2.2 or later project (--project) and an admin secret with a user who is Project Admin "
    "of it; --registry and --api name the Harbor host, which the deployment must allow",
    admin_permissions="Project Admin of the project (Maintainer, Developer and Guest may only list robots); "
    "a robot account as the admin only on Harbor v2.12 or later, with robot create, list, read and delete "
    "permissions on the project",
    username_form="the name Harbor returns when it creates the robot, <prefix><project>+<name> (prefix "
    "robot$ unless the install's robot_name_prefix changes it); regcred never builds it",
    realm_note="self-managed, no default hosts: --registry and --api name the Harbor host; Harbor serves "
    "the registry (/v2/), its token realm (/service/token, service harbor-registry) and the API "
    "(/api/v2.0) there, so the realm is the API origin; a registry on another host names its realm with "
    "regcred:realm-hosts",
    lifetime=Lifetime(
        min_s=86400,
        never_expires=True,
        note="durations are whole days (-1: never); regcred rounds the requested expiry up to whole days, "
        "so a robot may live up to a day longer than the ttl",
    ),
    cannot=(
        "mint system-level robots, or one robot for several projects (one project per secret)",
        "use a robot account as the admin before Harbor v2.12 (robots could not manage robots)",
        "work with Harbor before v2.2 (no /api/v2.0/robots; the legacy project robot API is not used)",
        "mint a robot that lives less than a day (Harbor counts durations in days)",
    ),
    admin_fields=(
        AdminField("username", "a Harbor user who is Project Admin of the project"),
        AdminField(
            "password",
            "its password (an OIDC user's CLI secret): Harbor's API takes HTTP Basic authentication",
            secret=True,
        ),
    ),
    settings=(
        Setting(
            "project",
            "the Harbor project name: 1-255 lower-case letters and digits, separated by single '.', '_' "
            "or '-'",
            required=True,
            pattern=PROJECT_PATTERN,
        ),
    ),
)
PAGE_SIZE = 100  # swagger parameters/pageSize: maximum 100
ROBOT_ID_MAX = 2**63 - 1  # robot.id is a bigint (int64 in the swagger)
_ID_RE = re.compile(r"[1-9][0-9]{0,18}")
_SECRET_RE = re.compile(r"[\x21-\x7e]{8,4096}")
# The name Harbor returns goes into HTTP Basic: printable, no space, no ':'.
_USERNAME_RE = re.compile(r"[\x21-\x39\x3b-\x7e]{1,512}")
_WHAT_ROBOT = "GET /robots/<id>"


def robot_name(label: str, nonce: str | None = None) -> str:
    """The robot name regcred requests: ``regcred-<owner>-<rotation hash>-<nonce>``, lower-case, within
    Harbor's ``^[a-z0-9]+(?:[._-][a-z0-9]+)*$``.

    The owner and the rotation come from the label (so the Harbor console groups a secret's robots), the
    nonce is new for every create: a retried or concurrent try of one rotation mints its own robot, as with
    every vendor, and the rotation revokes the one it does not keep by its label. A name fixed per rotation
    would instead turn a try that crashed after Harbor created its robot into a 409 for every later try of
    that rotation, since only createSecret's retries sweep that rotation's robots away."""
    parsed = labels.parse(label)
    owner = parsed.owner if parsed is not None else hashlib.sha256(label.encode()).hexdigest()[:10]
    rotation = parsed.rotation if parsed is not None else label
    digest = hashlib.sha256(rotation.encode()).hexdigest()[:12]
    return f"regcred-{owner}-{digest}-{nonce or secrets.token_hex(4)}"


def duration_days(expires_at: datetime | None, now: datetime) -> int:
    """Harbor's ``duration``: -1 (never) for no expiry, else the days until ``expires_at`` rounded up (at
    least one)."""
    if expires_at is None:
        return -1
    return max(1, math.ceil((expires_at - now).total_seconds() / 86400))


def _epoch(value: Any) -> datetime | None:
    """``expires_at`` (epoch seconds; -1 never) as a time, None for never or anything unusable."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return from_epoch(value)


class HarborProvider:
    """Mints, lists, describes and deletes project robot accounts with a Project Admin's credential."""

    spec = SPEC

    def __init__(
        self,
        *,
        api: Origin,
        project: str,
        username: str,
        password: str,
        transport: Transport,
        deadline: Deadline | None = None,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not isinstance(project, str) or re.fullmatch(PROJECT_PATTERN, project) is None:
            raise ConfigurationError(
                f"the Harbor project (regcred:project) is not valid: {SPEC.settings[0].help}"
            )
        redact.remember(password)
        try:
            authorization = basic_authorization(username, password)
        except DestinationRefused:
            raise ConfigurationError(
                "the Harbor admin secret's username contains ':', which HTTP Basic authentication cannot "
                "carry"
            ) from None
        self.project = project
        self._page_size = max(1, min(page_size, PAGE_SIZE))
        self._clock = clock
        self._project_id: int | None = None
        self._api = VendorApi(
            "Harbor",
            api,
            transport=transport,
            auth={"Authorization": authorization},
            secrets=(password,),
            deadline=deadline,
            base_path=BASE_PATH,
            permissions=PERMISSIONS,
            admin_hint="update the admin secret named by the regcred:admin-secret tag with the password of a "
            f"user who is Project Admin of {project}",
            error_fields=("errors", "message"),
        )

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _with(error: ProviderError, extra: str) -> ProviderError:
        return type(error)(f"{error}; {extra}")

    def project_id(self) -> int:
        """The project's id (``GET /projects/{name}``, the name marked as a name), cached."""
        if self._project_id is not None:
            return self._project_id
        what = "GET /projects/<project>"
        response = self._api.send(
            "GET", f"/projects/{quote(self.project, safe='')}", headers={"X-Is-Resource-Name": "true"}
        )
        if response.status in (403, 404):
            raise self._with(
                self._api.fail(response, what),
                f"Harbor answers this when project {self.project!r} does not exist or the admin user is not "
                "a member of it: check the regcred:project tag and the user's role",
            )
        body = self._api.expect_object(response, what)
        project_id = body.get("project_id")
        if (
            isinstance(project_id, bool)
            or not isinstance(project_id, int)
            or not 0 < project_id <= ROBOT_ID_MAX
        ):
            raise ProviderError(f"Harbor {what} answered without a usable project_id")
        if body.get("name") != self.project:
            raise ProviderError(f"Harbor {what} answered for another project")
        self._project_id = project_id
        return project_id

    def valid_token_id(self, token_id: str) -> bool:
        """Robot ids are positive 64-bit integers, in decimal without leading zeros."""
        return (
            isinstance(token_id, str)
            and _ID_RE.fullmatch(token_id) is not None
            and int(token_id) <= ROBOT_ID_MAX
        )

    def _robot_path(self, token_id: str) -> str:
        if not self.valid_token_id(token_id):
            raise ProviderError("refusing a Harbor robot id that is not a positive integer")
        return f"/robots/{quote(token_id, safe='')}"

    def _ours(self, item: dict[str, Any]) -> bool:
        """A project robot whose every permission is for this project."""
        permissions = item.get("permissions")
        return (
            item.get("level") == "project"
            and isinstance(permissions, list)
            and bool(permissions)
            and all(
                isinstance(p, dict) and p.get("kind") == "project" and p.get("namespace") == self.project
                for p in permissions
            )
        )

    def _record(self, item: Any) -> tuple[VendorToken, bool] | None:
        """The vendor's record of a robot, and whether it is one of this project's; None if unusable."""
        if not isinstance(item, dict):
            return None
        robot_id = item.get("id")
        if (
            isinstance(robot_id, bool)
            or not isinstance(robot_id, int)
            or not self.valid_token_id(str(robot_id))
        ):
            return None
        description = item.get("description")
        label = description if isinstance(description, str) else ""
        raw_expiry = item.get("expires_at")
        expires_at = _epoch(raw_expiry)
        # As Harbor's robot login checks it: expired unless -1 (never) or still in the future.
        expired = (
            isinstance(raw_expiry, int)
            and not isinstance(raw_expiry, bool)
            and raw_expiry != -1
            and raw_expiry <= self._clock().timestamp()
        )
        active = item.get("disable") is not True and not expired
        ours = self._ours(item)
        # A robot of another project never counts: whatever its description says, it carries no label.
        return VendorToken(str(robot_id), label if ours else "", active, expires_at), ours

    # -- Provider protocol -----------------------------------------------------------------------

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        """Create a project robot with pull, ``label`` as its description; sent once."""
        name = robot_name(label)
        payload = {
            "name": name,
            "description": label,
            "level": "project",
            "disable": False,
            "duration": duration_days(expires_at, self._clock()),
            "permissions": [
                {
                    "kind": "project",
                    "namespace": self.project,
                    "access": [{"resource": "repository", "action": "pull"}],
                }
            ],
        }
        what = "POST /robots"
        response = self._api.mint("POST", "/robots", what, json_body=payload)
        if response.status == 409:
            # Nothing was created. The create is not repeated under another name: the step fails, and its
            # next try starts over (orphans swept by label, then a create under a fresh name).
            raise self._with(
                self._api.fail(response, what),
                f"a robot named {name} exists already in project {self.project}; nothing was created and the "
                "create was not repeated (the next try of the step picks a new name)",
            )
        body = self._api.expect_object(response, what, expect=(200, 201))
        secret, username, robot_id = body.get("secret"), body.get("name"), body.get("id")
        if (
            not isinstance(secret, str)
            or _SECRET_RE.fullmatch(secret) is None
            or not isinstance(username, str)
            or _USERNAME_RE.fullmatch(username) is None
            or isinstance(robot_id, bool)
            or not isinstance(robot_id, int)
            or not self.valid_token_id(str(robot_id))
        ):
            # The robot may well exist: the caller finds it by its label and deletes it.
            raise MintOutcomeUnknown(f"Harbor {what} answered without a usable robot name, secret and id")
        redact.remember(secret)
        raw_expiry = body.get("expires_at")
        return IssuedCredential(
            username=username,
            password=secret,
            token_id=str(robot_id),
            expires_at=None if raw_expiry == -1 else _epoch(raw_expiry) or expires_at,
        )

    def _next_page(self, response: Response, params: dict[str, Any], page: int, count: int) -> str | None:
        """The next page: the ``Link`` rel=next target (on the API origin only), else, when a proxy dropped
        the Link header, the next page number while ``X-Total-Count`` says there are more."""
        target = link_next(response.header("Link"))
        if target:
            try:
                return same_origin_link(self._api.api, target, base_url=response.url)
            except DestinationRefused as exc:
                raise ProviderError(f"Harbor listing of /robots: {exc}") from None
        total = (response.header("X-Total-Count") or "").strip()
        if total.isdigit() and count and page * self._page_size < int(total):
            return self._api.url("/robots", {**params, "page": page + 1})
        return None

    def list_tokens(self) -> list[VendorToken]:
        """Every live robot of the project, across every page."""
        params: dict[str, Any] = {
            "q": f"Level=project,ProjectID={self.project_id()}",
            "page": 1,
            "page_size": self._page_size,
        }
        url: str | None = self._api.url("/robots", params)
        found: dict[str, VendorToken] = {}
        for page in range(1, MAX_PAGES + 1):
            if url is None:
                return list(found.values())
            response = self._api.send("GET", url)
            body = self._api.expect(response, "GET /robots")
            if not isinstance(body, list):
                raise ProviderError("Harbor GET /robots answered with unexpected JSON (no list)")
            for item in body:
                record = self._record(item)
                if record is not None and record[1] and record[0].active:
                    found.setdefault(record[0].token_id, record[0])
            url = self._next_page(response, params, page, len(body))
        if url is None:
            return list(found.values())
        raise ProviderError(f"Harbor listing of /robots has more than {MAX_PAGES} pages")

    def describe_token(self, token_id: str) -> VendorToken | None:
        """GET the robot by id; None when Harbor does not know it. A robot of another project is returned
        without a label, so that nothing revokes it for this secret."""
        response = self._api.send("GET", self._robot_path(token_id))
        if response.status == 404:
            return None
        record = self._record(self._api.expect_object(response, _WHAT_ROBOT))
        if record is None or record[0].token_id != token_id:
            raise ProviderError(f"Harbor {_WHAT_ROBOT} answered for another robot")
        return record[0]

    def revoke(self, token_id: str) -> None:
        """Delete the robot; 404 means it is gone already."""
        response = self._api.send("DELETE", self._robot_path(token_id))
        if response.status in (200, 202, 204, 404):
            return
        raise self._api.fail(response, "DELETE /robots/<id>")


def _build(ctx: BuildContext) -> HarborProvider:
    if ctx.routing.api is None:
        raise ConfigurationError("the harbor provider needs its API host (regcred:api)")
    if ctx.admin is None:
        raise ConfigurationError("the harbor provider needs its admin secret (regcred:admin-secret)")
    return HarborProvider(
        api=ctx.routing.api,
        project=ctx.settings["project"],
        username=ctx.admin.username,
        password=ctx.admin.password,
        transport=ctx.transport,
        deadline=ctx.deadline,
    )


PLUGIN = ProviderPlugin(SPEC, _build)
