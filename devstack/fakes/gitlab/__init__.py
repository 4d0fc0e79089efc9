"""A GitLab fake for the local stack: REST API v4 for deploy tokens and project/group access tokens, and the
``/jwt/auth`` token realm of its own registry.

Test double only (it lives under devstack/ and is never shipped in the layer). A real HTTP server on
127.0.0.1; the admin's personal access token comes from the environment variable
``FAKE_GITLAB_ADMIN_TOKEN`` (never the command line):

    FAKE_GITLAB_ADMIN_TOKEN=glpat-... python -m devstack.fakes.gitlab --port P --state-dir D \\
        --admin-user gitlab-admin --project acme/app --key signing.key --cert signing.crt

GitLab API (``/api/v4``; ``PRIVATE-TOKEN: <token>`` or ``Authorization: Bearer <token>``), as documented by
GitLab (https://docs.gitlab.com/api/..., source ``gitlab-org/gitlab``):

- ``GET /api/v4/user`` -> the token's user (api/users, "Get the current user").
- ``GET /api/v4/projects/:id`` and ``GET /api/v4/groups/:id``, ``:id`` a numeric id or a URL-encoded full
  path (``acme%2Fapp``) -> the record; ``404 {"message":"404 Project Not Found"}`` (``Group``) when it does
  not exist or the caller cannot see it (api/rest, "Namespaced paths"; api/projects; api/groups).
- Deploy tokens (api/deploy_tokens, ``lib/api/deploy_tokens.rb``, ``app/models/deploy_token.rb``):
  ``GET|POST /api/v4/projects/:id/deploy_tokens``, ``GET|DELETE .../deploy_tokens/:token_id``, the same
  under ``/groups/:id``. Create: ``name`` and ``scopes`` (an array, or comma-separated) required,
  ``expires_at`` (ISO 8601) and ``username`` optional -> 201 ``{id, name, username, expires_at, token,
  revoked, expired, scopes}``; ``token`` (``gldt-...``) only there; the default username is
  ``gitlab+deploy-token-{id}``. ``?active=true`` lists tokens neither revoked nor past ``expires_at``.
  DELETE -> 204 and the record is gone (``404 {"message":"404 Not found"}``). Project deploy tokens need
  Maintainer; group ones Maintainer to list, Owner to create or delete (else 403).
- Project and group access tokens (api/project_access_tokens, api/group_access_tokens,
  ``lib/api/resource_access_tokens.rb``, ``app/services/resource_access_tokens/create_service.rb``,
  ``app/services/personal_access_tokens/rotate_service.rb``): ``GET|POST .../access_tokens`` (``state``,
  ``revoked``, ``search`` filters), ``GET|DELETE .../access_tokens/:token_id``, ``POST
  .../access_tokens/:token_id/rotate``. Create: ``name``, ``scopes`` required; ``access_level`` (10, 15,
  20, 30, 40, 50; default 40, never above the creator's role); ``expires_at`` a date (default: 365 days;
  at most ``--max-token-lifetime-days`` after today, else ``400 {"message":"400 Bad request - Expires at
  must be before <date>"}``); ``description``. Each token gets a bot user ``<project|group>_<id>_bot_<hex>``
  and a membership with that role. 201 with ``token`` (``glpat-...``) once. A token dies at 00:00 UTC on
  its ``expires_at``. Only a user's personal access token may create them (a bot gets 400); a caller
  without the role gets 401 on GET (the endpoints answer ``unauthorized!``), 400 on create and revoke.
  Revoke -> 204. ``/rotate`` revokes the old token at once and answers 200 with a new token (a new id; same
  name, scopes, role and bot), ``expires_at`` defaulting to one week; rotating a token already revoked
  revokes every active token of its family and answers ``400 ... Token already revoked`` (automatic reuse
  detection, api/personal_access_tokens).
- Pagination (api/rest, "Offset-based pagination"): ``page`` (default 1), ``per_page`` (default 20,
  clamped to 100); headers ``x-page``, ``x-per-page``, ``x-total``, ``x-total-pages``, ``x-next-page``,
  ``x-prev-page`` (empty when there is none) and ``Link`` with ``prev``, ``next``, ``first``, ``last``.
- Errors (api/rest/troubleshooting): ``401 {"message":"401 Unauthorized"}`` for a missing, unknown, revoked
  or expired token (deploy tokens never authenticate the API); ``403 {"message":"403 Forbidden"}`` for a
  missing role; ``403 {"error":"insufficient_scope", "error_description": ...}`` for a token without the
  api (or, for GET, read_api) scope; ``400 {"error":"name is missing"}`` (``... does not have a valid
  value``, ``... is invalid``) for parameters; ``400 {"message":"Name is too long (maximum is 255
  characters)"}`` for deploy token validation; ``400 {"message":"400 Bad request - <reason>"}`` from the
  access token services. Injected faults without a body get ``{"message":"<status> <reason>"}``; a 422
  gets the validation shape ``{"message":{"base":[...]}}``; a 429 gets the rate limiter's plain-text
  ``Retry later`` with ``Retry-After`` and ``RateLimit-Name``, ``-Limit``, ``-Observed``, ``-Remaining``,
  ``-Reset`` (epoch), ``-ResetTime`` (administration/settings/user_and_ip_rate_limits).

Registry token realm (administration/packages/container_registry; ``app/controllers/jwt_controller.rb``;
``lib/gitlab/auth.rb``; user/packages/container_registry/authenticate_with_container_registry):

- ``GET /jwt/auth?service=container_registry&scope=repository:<path>:pull,push`` with HTTP Basic -> 200
  ``{"token", "access_token", "expires_in": 300, "issued_at"}``; an unknown service -> 404; refused
  credentials -> ``401 {"errors":[{"code":"UNAUTHORIZED","message":"HTTP Basic: Access denied"}]}``;
  anonymous with nothing granted -> ``403 {"errors":[{"code":"DENIED","message":"access forbidden"}]}``.
- Accepted: the admin's personal access token and access tokens with any non-blank username (GitLab
  checks only the token); deploy tokens only with their exact username. Access follows the scopes:
  ``read_registry`` (or ``api``) pulls, ``write_registry`` (or ``api``) pushes. A deploy token reaches its
  project, or every project under its group (subgroups included); a user or bot reaches the projects its
  role covers. A repository belongs to the project whose path is its longest prefix (``acme/app/api`` is
  in ``acme/app``). Scopes the identity may not have are dropped silently.
- The JWT is what the CNCF distribution registry accepts (``devstack/fakes/registry_tokens.py``): RS256,
  ``x5c`` and ``kid`` headers, claims iss (``--issuer``, GitLab's default ``gitlab-issuer``), sub, aud
  (the service), exp, nbf, iat, jti, access.

Fake-only conventions (not GitLab behaviour):

- One admin user (``--admin-user``, id 1) whose token is the bootstrap secret (not listed anywhere); it
  has ``--admin-role`` (owner by default, or maintainer) on every top-level group the ``--project`` and
  ``--public-project`` paths create, and so on their subgroups and projects. There are no other human
  users, no instance administrators and no rate limiter (429 only by fault injection).
- Pulling a private project needs the Reporter role (the rule of older GitLab versions; newer ones let
  Guests pull, subject to the registry's visibility setting); pushing needs Developer.
- A revoked access token stays visible (``revoked: true``, ``active: false``) and a second DELETE answers
  204 again: its bot user is kept (GitLab schedules the bot's deletion, after which the token is 404).
- An ``expires_at`` before today is refused (``400 ... Expires at cannot be in the past``); GitLab's exact
  text for that case is not documented. ``/rotate`` with ``self`` is not implemented.
- State (secrets only as SHA-256 digests) is ``<state-dir>/state.json``; every request is appended to
  ``<state-dir>/requests.jsonl`` (method, path, query keys, whether a token came, the identity, the status,
  for the realm the scopes asked for and granted, and any fault) -- never a secret. Test-only:
  ``<state-dir>/minted-secrets.jsonl`` holds the clear text of every token minted, for leak checks.
- Fault injection: ``/_fake/faults`` (``devstack/fakes/faults.py``).
"""

from devstack.fakes.profile import VendorProfile

from .api import make_server
from .model import GitLab
from .state import Config, GitLabError

__all__ = ["PROFILE", "Config", "GitLab", "GitLabError", "make_server"]

PROFILE = VendorProfile(
    provider="gitlab",
    module="devstack.fakes.gitlab",
    service="container_registry",
    issuer="gitlab-issuer",
    realm_path="/jwt/auth",
    admin_user="gitlab-admin",
    secret_env="FAKE_GITLAB_ADMIN_TOKEN",
    admin_secret_prefix="glpat-",
    seed_images=("acme/app/api:1.0",),
    onboard_args="--project acme/app",
    extra_args=("--project", "acme/app"),
    ready_path="/-/readiness",
)
