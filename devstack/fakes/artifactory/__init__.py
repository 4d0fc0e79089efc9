"""A JFrog Artifactory fake for the local stack: the Access service's tokens API, and the Docker token realm
of its repositories.

Test double only (it lives under devstack/ and is never shipped in the layer). A real HTTP server on
127.0.0.1:

    FAKE_ARTIFACTORY_ADMIN_TOKEN=... python -m devstack.fakes.artifactory --port P --state-dir D \\
        --admin-user jfrog-admin --repo-key docker-local --pull-user ci-puller --key K --cert C

The admin secret (the admin user's access token) comes only from the environment variable
``FAKE_ARTIFACTORY_ADMIN_TOKEN``, never from the command line.

Access tokens API (JFrog REST APIs, https://jfrog.com/help/r/jfrog-rest-apis/...):

- ``POST /access/api/v1/tokens`` (create-token, create-token-api-examples; the field limits from
  https://docs.jfrog.com/administration/reference/createToken): JSON or form fields ``grant_type``
  (client_credentials, or refresh_token with ``refresh_token``: a new token_id, the old token revoked),
  ``username`` (at most 255; default the caller), ``scope`` (at most 500; ``applied-permissions/user``
  default, ``applied-permissions/admin`` and ``applied-permissions/groups:<g>`` for admins only),
  ``expires_in`` (seconds, at least 0; 0 never expires, admins only), ``refreshable``, ``description``
  (at most 1024), ``audience`` (at most 255, default ``*@*``), ``include_reference_token``,
  ``force_revocable``, ``project_key``. 200 ``{token_id, access_token, expires_in (when it expires), scope,
  token_type: "access_token", refresh_token (when refreshable), reference_token (when asked)}``.
  400 invalid input; 401; 403 when expires_in is over ``--max-expiry`` for a non-admin, a non-admin asks
  for another user, a non-expiring token or an admin scope.
- ``GET /access/api/v1/tokens`` (get-tokens): ``{"tokens": [{token_id, subject, expiry?, issued_at, issuer,
  description?, refreshable}]}`` (epoch seconds; subject ``jfac@<instance>/users/<user>``); admins see
  every token, others their own; filters ``description`` (a trailing ``*`` wildcard), ``username``,
  ``refreshable``, ``token_id``, ``order_by`` (created, token_id, owner, subject, expiry),
  ``descending_order``; no pagination (none is documented); an empty list is a 200.
- ``GET /access/api/v1/tokens/{id}`` and ``/tokens/me`` (get-token-by-id): the same record; 403 for a
  non-admin asking for another user's token; 404.
- ``DELETE /access/api/v1/tokens/{id}`` and ``/tokens/me`` (revoke-token-by-id): 200 revoked; 204 when
  the id is not found (already revoked); 403 as above.
- Thresholds (jfrog-platform-administration-documentation/revocable-expiry-threshold,
  generate-expirable-tokens, persistency-threshold, view-and-revoke-tokens): a token whose lifetime is
  under ``--revocable-expiry-threshold`` (6 h) and was created without ``force_revocable`` is not
  revocable: DELETE answers 400 ``{"code": "BAD_REQUEST", "message": "Token not revocable", "detail":
  ...}`` (the shape seen in jfrog/jfrog-client-go issue 753). One under ``--persistent-expiry-threshold``
  (3 h) is not stored: never listed, GET 404, DELETE 204, yet it authenticates until it expires.
- Errors: ``{"errors": [{"code": "FORBIDDEN", "message": "..."}]}`` (the Access service's shape, as
  JFrog's own Vault plugin parses it; Artifactory's documented shape, jfrog-rest-apis/error-responses, is
  the same list with ``status``). Every call needs ``Authorization: Bearer <access token>`` (an access
  token or its reference token): 401 otherwise, or for a revoked or expired one.
- ``GET /artifactory/api/system/ping`` (system-health-ping) answers ``OK``.

Docker token realm (how Artifactory answers ``docker login``; jfrog.com/help/r/
how-to-troubleshoot-docker-problems/docker-login-docker.art.local):

- ``GET /artifactory/api/docker/<repo-key>/v2/token?service=..&scope=repository:NAME:pull`` with HTTP Basic
  (user, access token) -> 200 ``{"token", "access_token", "expires_in": 3600, "issued_at"}``; a bad,
  revoked or expired token, or a user that is not the token's, -> 401 in the error shape above with
  ``WWW-Authenticate: Basic realm="Artifactory Realm"``. Anonymous requests get a token granting nothing.
- Repository path access method: the registry names images ``<repo-key>/<image>``; a scope name whose
  first segment is no configured repository key is an image of the realm's own repository (Artifactory's
  own challenges name the repository in the realm and the image alone in the scope, as quoted in
  earthly/earthly issue 1017). Only names in the realm's repository are granted: pull to ``--pull-user``
  users (read through a permission target), pull, push and delete to admins (the stack seeds with the
  admin token). Scopes are narrowed silently.
- The token is what the CNCF distribution registry accepts (``devstack/fakes/registry_tokens.py``).

Fake-only conventions (not Artifactory behaviour):

- Users are ``--admin-user`` (an admin) and the ``--pull-user`` users (read on every ``--repo-key``); a
  token for any other user is a 400. The admin secret is the admin's own non-expiring token with scope
  ``applied-permissions/admin``, listed like any other (its id is derived from the secret's digest).
- Access tokens are JWTs signed with the stack's key (sub, scp, aud, iss, iat, exp, jti = token_id);
  the fake finds them by digest, not by verifying them.
- A force_revocable or reference token is stored whatever its lifetime; expired tokens are purged before
  every request (Access runs that job hourly); ``expires_in`` omitted is ``--default-expiry`` (one year;
  JFrog's pages say one year or 3600 s), capped by ``--max-expiry`` for non-admins.
- Fault injection through ``/_fake/faults`` (``devstack/fakes/faults.py``): an injected status without a
  body gets the error shape above.
- State (secrets only as SHA-256 digests) is ``<state-dir>/state.json``; every request is appended to
  ``<state-dir>/requests.jsonl`` (method, path, query keys, authorization scheme, identity
  ``user:<name>:<token id>`` or ``anonymous``, status; for the realm the scopes asked and granted), never a
  secret. ``<state-dir>/minted-secrets.jsonl`` holds the clear text of every token minted, for the tests'
  leak checks only.
"""

from devstack.fakes.profile import VendorProfile

SECRET_ENV = "FAKE_ARTIFACTORY_ADMIN_TOKEN"
REPO_KEY = "docker-local"
PULL_USER = "ci-puller"

PROFILE = VendorProfile(
    provider="artifactory",
    module="devstack.fakes.artifactory",
    service="artifactory",
    issuer="jfrog-access",
    realm_path=f"/artifactory/api/docker/{REPO_KEY}/v2/token",
    admin_user="jfrog-admin",
    secret_env=SECRET_ENV,
    seed_images=(f"{REPO_KEY}/api:1.0",),
    onboard_args=f"--user {PULL_USER}",
    extra_args=("--repo-key", REPO_KEY, "--pull-user", PULL_USER),
    ready_path="/artifactory/api/system/ping",
)

from .access import Access, AccessError, Config  # noqa: E402
from .api import make_server  # noqa: E402

__all__ = ["PROFILE", "SECRET_ENV", "Access", "AccessError", "Config", "make_server"]
