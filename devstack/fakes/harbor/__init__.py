"""A Harbor v2 fake for the local stack: the robot-account subset of the v2.0 API, and the registry's token
realm. Test double only (it lives under devstack/ and is never shipped in the layer). A real HTTP server on
127.0.0.1:

    FAKE_HARBOR_ADMIN_SECRET=... python -m devstack.fakes.harbor --port P --state-dir D \\
        --admin-user harbor-admin --project acme [--public-project library] [--robot-prefix 'robot$'] \\
        --key signing.key --cert signing.crt

The admin user's password comes only from the environment variable ``FAKE_HARBOR_ADMIN_SECRET``.

Harbor API v2.0 (basePath ``/api/v2.0``, HTTP Basic authentication), as goharbor/harbor
``api/v2.0/swagger.yaml`` documents it (operations and definitions named below), with behaviour the
swagger leaves out taken from Harbor's own source (files named below, goharbor/harbor main, Harbor v2.2+):

- ``GET /api/v2.0/projects/{project_name_or_id}`` with ``X-Is-Resource-Name: true`` for a name ->
  200 ``Project`` (project_id, name, owner_id, owner_name, current_user_role_id(s), metadata.public...).
  operation getProject, parameters isResourceName and projectNameOrId. A project the caller may not read
  is 401 (anonymous) or 403, and so is one that does not exist: handler/base.go HasProjectPermission gives
  a missing project no permission, so only a system administrator sees its 404.
- ``POST /api/v2.0/robots`` ``RobotCreate`` {name, description, level, duration, permissions} ->
  201 ``RobotCreated`` {id, name, secret, creation_time, expires_at} and ``Location:
  /api/v2.0/robots/{id}``; the secret is shown only here. operation CreateRobot; handler/robot.go
  CreateRobot: the requested name must match ``^[a-z0-9]+(?:[._-][a-z0-9]+)*$`` (400 otherwise), duration
  is -1 (never) or a positive number of days (400 otherwise; ``expires_at`` is then creation + duration
  days, epoch seconds, or -1), level is system or project, a project robot has exactly one permission
  ``{kind: project, namespace: <project name>, access: [{resource, action}]}``; the caller needs the robot
  create permission in that project (401 anonymous, 403 otherwise). controller/robot/controller.go: a
  project robot is stored as ``<project>+<name>`` and shown with the robot name prefix (robot_name_prefix,
  default ``robot$``; lib/config/metadata/metadatalist.go), so its full name is ``robot$<project>+<name>``.
  pkg/robot/dao/dao.go: a second robot of the same stored name in the project is 409 CONFLICT ("robot
  account <project id>:<name> already exists").
- ``GET /api/v2.0/robots?q=Level=project,ProjectID=<id>&page=&page_size=&sort=`` -> 200 ``[Robot]`` with
  ``X-Total-Count`` and ``Link`` (prev/next). operation ListRobot; parameters query, page (default 1),
  pageSize (default 10, maximum 100), sort. handler/robot.go ListRobot: without Level the listing is of
  system robots (system administrators only: 403 here); Level=project needs a positive ProjectID (400);
  the caller needs the robot list permission in the project. lib/q/builder.go: the ``q`` syntax (exact
  ``k=v``, fuzzy ``k=~v``, range ``k=[a~b]``, any-of ``k={a b}``, all-of ``k=(a b)``; 400 for a term
  without key or value); keys that are not robot columns are ignored. handler/base.go Links: the Link
  targets are the request path and query with page and page_size set, left unescaped, joined by " , ".
- ``GET /api/v2.0/robots/{robot_id}`` -> 200 ``Robot`` {id, name, description, level, duration, editable,
  disable, expires_at, permissions, creator_type, creator_ref, creation_time, update_time}, never the
  secret; 404 ("robot <id> not found"), 401, 403. operation GetRobotByID.
- ``PUT /api/v2.0/robots/{robot_id}`` the full ``Robot`` -> 200; name and level cannot change (400);
  description, disable, duration (expires_at recomputed from the creation time) and permissions can.
  operation UpdateRobot; handler/robot.go updateV2Robot.
- ``PATCH /api/v2.0/robots/{robot_id}`` ``RobotSec`` {"secret": ""} -> 200 {"secret": <new>} (the old
  secret stops working at once); a supplied secret must have 8+ characters with an upper-case letter, a
  lower-case letter and a digit (400) and the answer carries no secret. operation RefreshSec.
- ``DELETE /api/v2.0/robots/{robot_id}`` -> 200 (no body); 404, 401, 403. operation DeleteRobot.
- ``GET /api/v2.0/users/current`` -> 200 ``UserResp``; 401 anonymous; 412 for a robot. operation
  getCurrentUserInfo.  ``GET /api/v2.0/ping`` -> 200 "Pong" (readiness).
- Errors: ``{"errors": [{"code": "NOT_FOUND", "message": "..."}]}`` (definitions Errors and Error; codes of
  lib/errors/const.go, statuses of lib/http/error.go: a 5xx says only "internal server error"), with an
  ``X-Request-Id`` header on every API answer (responses/*).  A path parameter or page number that is not
  an integer, or a page_size over 100, is 422 UNPROCESSABLE_ENTITY (go-swagger's validation).
- Who may do what, common/rbac/project/rbac_role.go: Project Admin creates, reads, updates, deletes and
  lists robots; Maintainer, Developer and Guest only read and list them; Limited Guest nothing. Since
  v2.12 a robot may create robots with equal or narrower permissions (handler/robot.go CreateRobot).
- Basic credentials that do not authenticate leave the request anonymous (server/middleware/security:
  robot.go refuses a wrong secret, a disabled robot and an expired one; basic_auth.go a wrong password).

Registry token realm (core/service/token/token.go, creator.go, authutils.go):

- ``GET /service/token?service=harbor-registry&scope=repository:<project>/<repo>:pull[,push]`` with HTTP
  Basic (a user, or a robot's full name and secret) -> 200 {"token", "access_token", "expires_in",
  "issued_at"}, the token living token_expiration minutes (default 30). ``access`` grants only what the
  identity may do: a user's project role (Project Admin: pull, push, delete), a robot its permissions on
  its own project, anyone pull on a public project; other actions are removed silently. A credential that
  does not authenticate is anonymous: with no scope (``docker login``) that is 401 with an empty body,
  with scopes a token narrowed to public projects (so a deleted, disabled or expired robot gets its
  private repository back with no actions, and the registry then answers 401 insufficient_scope). Another
  service is 400 (text body).
- The token is what the CNCF distribution registry 2.8 accepts (``devstack/fakes/registry_tokens.py``).

Pages followed:

- https://github.com/goharbor/harbor/blob/main/api/v2.0/swagger.yaml (operations above; definitions
  Robot, RobotCreate, RobotCreated, RobotSec, RobotPermission, Access, Project, UserResp, Errors, Error;
  parameters query, page, pageSize, isResourceName, robotId; responses 200-500)
- https://goharbor.io/docs/2.5.0/working-with-projects/project-configuration/create-robot-accounts/
  (project robot accounts: permissions, expiry in days or never, name = prefix + project + name, at least
  Project Admin to manage them)
- https://goharbor.io/docs/2.6.0/administration/robot-accounts/ (system robot accounts, since v2.2)
- goharbor/harbor source, as named above: src/server/v2.0/handler/robot.go, handler/base.go,
  handler/project.go, src/controller/robot/controller.go, src/pkg/robot/dao/dao.go,
  src/pkg/robot/model/model.go, src/lib/q/builder.go, src/lib/errors/const.go, src/lib/http/error.go,
  src/server/middleware/security/robot.go, src/core/service/token/*.go,
  src/lib/config/metadata/metadatalist.go, src/common/rbac/project/rbac_role.go,
  make/migrations/postgresql/0004_1.8.0_schema.up.sql (robot.description varchar(1024))

Fake-only conventions (not Harbor behaviour):

- Users: the admin (``--admin-user``, user id 1) is Project Admin of every project; ``--member USER:ROLE``
  adds users with that role in every project (passwords from ``FAKE_HARBOR_MEMBER_SECRETS``, a JSON
  object). Nobody is a system administrator, so system-level robots can never be created or listed (403).
- Projects are fixed at start: ``--project`` (private, ids from 1) then ``--public-project``. Only the
  project endpoint above exists (other methods are 405); there are no repositories API or quotas.
- A project robot's permission must have kind ``project`` (400 otherwise); Harbor's handling of other
  kinds there is not documented. A description over 1024 characters is 500 (the database would refuse
  it). ``page`` or ``page_size`` below 1 is 422.
- State (robot secrets only as SHA-256 digests) is ``<state-dir>/state.json``; every request is appended to
  ``<state-dir>/requests.jsonl`` (method, path, query keys, whether an Authorization header came, its
  scheme, the identity ``user:NAME`` / ``robot:ID`` / ``anonymous``, ``auth_failed`` when a credential
  was refused, the status, for the realm the scopes asked for and granted) -- never a secret; the clear
  text of every secret it mints goes to the test-only ``<state-dir>/minted-secrets.jsonl``.
- Fault injection: ``/_fake/faults`` (``devstack/fakes/faults.py``); an injected status without a body
  gets Harbor's errors body for that status.
"""

from devstack.fakes.profile import VendorProfile

from .api import make_server
from .core import Config, Harbor
from .state import HarborError

__all__ = ["PROFILE", "Config", "Harbor", "HarborError", "make_server"]

PROFILE = VendorProfile(
    provider="harbor",
    module="devstack.fakes.harbor",
    service="harbor-registry",
    issuer="harbor-token-issuer",
    realm_path="/service/token",
    admin_user="harbor-admin",
    secret_env="FAKE_HARBOR_ADMIN_SECRET",
    seed_images=("acme/api:1.0",),
    onboard_args="--project acme",
    extra_args=("--project", "acme"),
    ready_path="/api/v2.0/ping",
)
