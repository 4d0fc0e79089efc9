"""A GitHub fake for the local stack: the subset of GitHub's REST API regcred's ghcr provider uses, and the
ghcr.io registry token realm. Test double only (it lives under devstack/ and is never shipped in the layer).
A real HTTP server on 127.0.0.1:

    FAKE_GITHUB_ADMIN_SECRET=ghp_... python -m devstack.fakes.github --port P --state-dir D \\
        --admin-user octo-admin --public octo-admin/public-app --key signing.key --cert signing.crt

The admin secret (a personal access token of the admin user) comes only from the environment variable
``FAKE_GITHUB_ADMIN_SECRET``, never the command line.

GitHub REST API (https://api.github.com), as documented at docs.github.com:

- ``GET /user`` with ``Authorization: Bearer <token>`` or ``token <token>`` -> 200, the authenticated user
  (login, id, node_id, type, site_admin, name, ... a subset). A personal access token (classic) also gets
  ``X-OAuth-Scopes`` (its scopes, ``", "``-separated, normalized: a scope another one includes is dropped)
  and ``X-Accepted-OAuth-Scopes`` (empty: the endpoint needs none), and, when it has an expiry,
  ``GitHub-Authentication-Token-Expiration: 2027-01-01 00:00:00 UTC``. An unknown, revoked or expired token
  or another scheme -> 401 ``{"message": "Bad credentials", "documentation_url": ..., "status": "401"}``;
  no credentials -> 401 "Requires authentication".
  rest/users/users#get-the-authenticated-user; rest/authentication/authenticating-to-the-rest-api (Bearer or
  token); apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps (the headers, available and normalized
  scopes); rest/using-the-rest-api/troubleshooting-the-rest-api.
- ``GET /user`` answers carry ``x-ratelimit-limit``, ``-remaining``, ``-used``, ``-reset`` (epoch seconds) and
  ``-resource`` (``core``): 5000 requests an hour per user, 60 per address unauthenticated. Past the limit
  -> 403 "API rate limit exceeded ..." with ``x-ratelimit-remaining: 0``.
  rest/using-the-rest-api/rate-limits-for-the-rest-api.
- Requests without a ``User-Agent`` -> 403; an ``X-GitHub-Api-Version`` other than 2022-11-28 -> 400.
  rest/using-the-rest-api/troubleshooting-the-rest-api ("User agent required", "Not a supported version").
- ``POST /credentials/revoke`` ``{"credentials": [token, ...]}`` (1 to 1000 strings), unauthenticated only
  -> 202; every listed token this fake knows is revoked. An authenticated request -> 403 ("Any
  authenticated requests will return a 403"); a body that is not JSON -> 400 "Problems parsing JSON"; not an
  object -> 400 "Body should be a JSON object"; a bad ``credentials`` -> 422 "Invalid request."; more than
  60 requests an hour from one address -> 422 ("Validation failed, or the endpoint has been spammed").
  rest/credentials/revoke#revoke-a-list-of-credentials.
- ``GET /`` -> 200 ``{"current_user_url"}`` (a root document; the stack's readiness probe).
- Error bodies are GitHub's ``{"message", "documentation_url", "status"}`` (422 adds ``errors``).

The ghcr.io token realm (``GET /token?service=ghcr.io&scope=repository:OWNER/NAME:pull``, the Docker
token protocol; ghcr.io's challenge names https://ghcr.io/token):

- HTTP Basic with the token owner's GitHub login and a live personal access token -> 200
  ``{"token", "access_token", "expires_in": 300, "issued_at"}``, an RS256 JWT the CNCF distribution registry
  accepts (see ``devstack/fakes/registry_tokens.py``). Its ``access`` grants, on the admin user's own
  packages (``<admin>/...``): pull with ``read:packages`` or ``write:packages``, push with
  ``write:packages``, delete with ``delete:packages`` and read; on public packages pull for everyone; nothing
  else (scopes the token may not have are dropped silently). packages/learn-github-packages/
  about-permissions-for-github-packages; data/reusables/package_registry/authenticate-to-container-registry-
  steps.md (read:packages downloads, write:packages downloads and uploads, delete:packages deletes).
- A wrong username, an unknown, revoked or expired token, or another scheme -> 401
  ``{"errors": [{"code": "UNAUTHORIZED", "message": "unauthenticated: User cannot be authenticated with
  the token provided."}]}`` (ghcr.io's answer as quoted in public issue threads, e.g. getwud/wud#219).
- No credentials -> a token with pull on public packages only.

Fake-only conventions (not GitHub behaviour):

- One user, the admin (``--admin-user``), owns every package under its name; ``--public`` names public
  packages, every other one is private. Its personal access token (the admin secret) has ``write:packages``
  and ``read:packages``: it pushes the seed images. It is kept as an ordinary token record, so it can be
  revoked too.
- ``POST /_fake/tokens`` ``{"scopes": ["read:packages"], "expires_at": "<RFC 3339>" | null, "note": ""}``
  with the admin token (Bearer or token) -> 201 ``{"id", "token": "ghp_...", "scopes", "expires_at",
  "note", "revoked", "created_at", "last_used_at"}``: stands in for GitHub's settings page, where a user
  creates a personal access token (classic) by hand (GitHub has no API for it). ``GET /_fake/tokens`` lists
  them (never a secret). Unknown scopes or a past expiry -> 422.
- ``write:packages`` is treated as including ``read:packages`` (the docs say it downloads images; whether
  GitHub's normalized scope list drops ``read:packages`` next to it is not documented).
- Whether ghcr.io checks the username is not documented (its docs say to use your GitHub username): this
  fake requires the token owner's login, case-insensitively, so a wrong stored username fails here.
- The revocation endpoint answers 202 for tokens it does not know too (GitHub does not say whether a
  submitted token was live). GitHub's failed-login lockout and secondary rate limits are not modelled
  (inject them with faults).
- Fault injection: ``/_fake/faults`` (``devstack/fakes/faults.py``); an injected status without a body gets
  GitHub's error shape, or ghcr.io's on ``/token``.
- State (tokens as SHA-256 digests, never in clear) is ``<state-dir>/state.json``; every request is
  appended to ``<state-dir>/requests.jsonl`` (method, path, query keys, whether an Authorization header
  came, its scheme, the identity ``pat:LOGIN:ID`` or ``anonymous``, ``auth_failed``, the status, and for
  /token the scopes asked for and granted -- never a secret); ``<state-dir>/minted-secrets.jsonl`` holds
  the clear text of every token ``/_fake/tokens`` created, for the tests' leak checks only.
"""

from devstack.fakes.profile import VendorProfile

from .api import make_server
from .github import Config, GitHub, GitHubError

__all__ = ["PROFILE", "Config", "GitHub", "GitHubError", "make_server"]

PROFILE = VendorProfile(
    provider="ghcr",
    module="devstack.fakes.github",
    service="ghcr.io",
    issuer="ghcr-issuer",
    realm_path="/token",
    admin_user="octo-admin",
    secret_env="FAKE_GITHUB_ADMIN_SECRET",
    admin_secret_prefix="ghp_",
    seed_images=("octo-admin/app:1.0", "octo-admin/public-app:1.0"),
    # --revoke-on-retire: retirement revokes the old PAT through GitHub's credential-revocation API.
    onboard_args="--username octo-admin --revoke-on-retire true",
    # Tests revoke more than GitHub's 60 an hour.
    extra_args=("--public", "octo-admin/public-app", "--revoke-limit", "100000"),
    ready_path="/",
)
