"""A Docker Hub fake for the local stack: the Hub API for access tokens, and the registry's token realm.

Test double only (it lives under devstack/ and is never shipped in the layer). A real HTTP server on
127.0.0.1:

    python -m devstack.fakes.dockerhub --port P --state-dir D --admin-user acme --org acmecorp \\
        --public library/public --key signing.key --cert signing.crt

The admin secret comes from ``--admin-secret`` or, to keep it out of ``ps``, from the environment
variable ``FAKE_DOCKERHUB_ADMIN_SECRET``.

Docker Hub API (https://hub.docker.com), as documented at docs.docker.com/reference/api/hub/latest:

- ``POST /v2/auth/token`` {"identifier","secret"} -> 200 {"access_token"} (a JWT that lives 10 minutes),
  401 otherwise.  operations/AuthCreateAccessToken, schemas/AuthCreateTokenResponse.
  The identifier is the username for the admin secret or a PAT, the organization name for an OAT.
- ``POST /v2/access-tokens`` -> 201 accessToken (``token`` shown only here); 400, 401.
  operations/postV2AccessTokens, schemas/createAccessTokenRequest (token_label 1..100 chars; scopes
  repo:admin|repo:write|repo:read|repo:public_read; optional expires_at), schemas/accessToken.
- ``GET /v2/access-tokens?page=&page_size=`` -> {"count","active_count","next","previous","results"},
  tokens redacted as "***"; page defaults to 1, page_size to 10.  operations/getV2AccessTokens,
  schemas/getAccessTokensResponse.
- ``GET|PATCH|DELETE /v2/access-tokens/{uuid}`` -> 200 / 200 / 204; 404 for an unknown uuid.
  operations/getV2AccessTokensByUuid, patchV2AccessTokensByUuid (token_label, is_active),
  deleteV2AccessTokensByUuid.
- ``POST|GET /v2/orgs/{name}/access-tokens`` and ``GET|PATCH|DELETE /v2/orgs/{name}/access-tokens/{id}``
  -> 201 createOrgAccessTokenResponse (``token`` = "dckr_oat_..." only here), list {"total","next",
  "previous","results"}, getOrgAccessTokenResponse, updateOrgAccessTokenResponse, 204; 400, 401, 403, 404.
  operations/postV2OrgsByNameAccessTokens, getV2OrgsByNameAccessTokens, and the
  ``/v2/orgs/{org_name}/access-tokens/{access_token_id}`` operations; schemas/createOrgAccessTokenRequest,
  orgAccessTokenResource (TYPE_REPO paths "org/repo", globs like "org/*", "*/*/public" for every public
  repository; this fake also takes "*" for every repository of the org), orgAccessToken.
  Organization access tokens are managed by organization owners (security/access-tokens/
  organization-access-tokens); here the admin user is the only owner of the configured org.
- Error bodies follow schemas/error: {"message", "errinfo", "detail"}.  Every call needs
  ``Authorization: Bearer <access_token>`` except /v2/auth/token (401 without).
- PAT permissions per security/access-tokens/reference: public_read pulls public repositories only;
  read adds private repositories the account can access; write adds push; admin adds delete.

Registry token realm (as auth.docker.io does; docs.docker.com/reference/api/registry/auth):

- ``GET /token?service=..&scope=repository:NAME:pull&scope=..&account=..`` with HTTP Basic
  (username + admin secret, PAT, or org name + OAT) or no credentials (anonymous) ->
  200 {"token","access_token","expires_in":300,"issued_at"}; a bad, revoked, inactive or expired
  credential -> 401 {"details":"incorrect username or password"}.  Scopes the identity may not have are
  dropped silently (the token is narrowed), so a 200 here proves nothing by itself.
- The token is what the CNCF distribution registry 2.8 accepts: RS256, header ``x5c`` (standard base64
  DER of the stack's self-signed certificate, which is the registry's rootcertbundle) and ``kid`` (libtrust
  fingerprint), claims iss, sub, aud (a string: the service), exp, nbf, iat, jti, access.

Pages followed (https://docs.docker.com/...):

- reference/api/hub/latest/ (overview: authentication types, PAT scope implication) and its OpenAPI
  source reference/api/hub/latest.yaml
- reference/api/hub/latest/operations/AuthCreateAccessToken, postV2AccessTokens, getV2AccessTokens,
  getV2AccessTokensByUuid, patchV2AccessTokensByUuid, deleteV2AccessTokensByUuid,
  postV2OrgsByNameAccessTokens, getV2OrgsByNameAccessTokens (and the get/patch/delete operations of
  /v2/orgs/{org_name}/access-tokens/{access_token_id})
- reference/api/hub/latest/schemas/AuthCreateTokenResponse, accessToken, createAccessTokenRequest,
  createAccessTokensResponse, getAccessTokensResponse, createOrgAccessTokenRequest, orgAccessToken,
  orgAccessTokenResource, getOrgAccessTokensResponse, getOrgAccessTokenResponse, error
- security/access-tokens/reference, security/access-tokens/organization-access-tokens
- reference/api/registry/auth (token realm request and response)

Fake-only conventions (not Docker Hub behaviour):

- One user (the admin, given on the command line) who owns one org.  The admin secret is a bootstrap
  credential (password-like): it is not listed under /v2/access-tokens.
- Repositories named with ``--public`` are public; every other repository is private.  The admin secret
  may push to them (a stand-in for their publisher), so the stack can seed them.
- Whether a bearer obtained with a PAT may manage access tokens is not documented; ``--pat-bearer``
  ``allow`` (default) lets it, ``deny`` answers 403.  Bearers from OATs may not manage tokens (403).
- An OAT pulls only what its resources name; public repositories only through "*/*/public".
- A Hub bearer obtained with a PAT or OAT stops working as soon as that token is deleted or disabled.
- State (tokens stored as SHA-256 digests, never in clear) is ``<state-dir>/state.json``; every request
  is appended to ``<state-dir>/requests.jsonl`` with method, path, query keys, whether an Authorization
  header came, its scheme, the authenticated identity (``admin:USER``, ``pat:USER:UUID``,
  ``oat:ORG:ID``, ``anonymous``; ``auth_failed`` when a credential was refused) and the status, plus for
  /token the scopes asked for and granted -- never a secret.
"""

from .api import make_server
from .hub import Config, Hub, HubError

__all__ = ["Config", "Hub", "HubError", "make_server"]
