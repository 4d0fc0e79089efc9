"""The GitHub fake's HTTP API: routes, GitHub's headers and error bodies, and what its fault injection and
request log do differently, on the plumbing all the fakes share (``devstack/fakes/http_base.py``). Test
double only; see ``devstack/fakes/github/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import secrets
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any

from devstack.fakes.faults import Fault
from devstack.fakes.http_base import Answer, FakeHandler, bind

from .github import Config, GitHub, GitHubError, expiration_header
from .state import Identity

SUPPORTED_API_VERSIONS = frozenset({"2022-11-28"})
REALM_PATH = "/token"
USER_DOCS = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
# What ghcr.io answers for a credential it cannot authenticate (as reported in public issue threads).
GHCR_UNAUTHORIZED = {
    "errors": [
        {
            "code": "UNAUTHORIZED",
            "message": "unauthenticated: User cannot be authenticated with the token provided.",
        }
    ]
}

Json = dict[str, Any]


def ghcr_error(status: int) -> Json:
    code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN", 429: "TOOMANYREQUESTS"}.get(
        status, "UNKNOWN"
    )
    return {"errors": [{"code": code, "message": HTTPStatus(status).phrase.lower()}]}


def github_error(status: int) -> Json:
    return GitHubError(status, HTTPStatus(status).phrase).body()


class Handler(FakeHandler):
    """GitHub's (and ghcr.io's) routes, headers and error shapes on the shared plumbing
    (`devstack.fakes.http_base`)."""

    server_version = "fake-github/1"
    methods = ("GET", "POST", "PATCH", "DELETE", "HEAD")
    json_type = "application/json; charset=utf-8"
    log_control = True  # the log has the /_fake/faults requests too
    github: GitHub  # set on the subclass made by make_server

    def normalize_path(self, path: str) -> str:
        return path.rstrip("/") or "/"

    def error_body(self, status: int, message: str | None) -> Json:
        return github_error(status) if message is None else GitHubError(status, message).body()

    def error_answer(self, err: Exception, path: str) -> Answer:
        if isinstance(err, GitHubError):
            return err.status, err.body(), err.headers
        return super().error_answer(err, path)  # keep serving; report as 500 in GitHub's error shape

    def fault_reply(self, fault: Fault, path: str, after: bool) -> tuple[Any, dict[str, str]]:
        body = fault.body
        if body is None and fault.status != 204:
            body = ghcr_error(fault.status) if path == REALM_PATH else github_error(fault.status)
        return body, dict(fault.headers)

    def drop_entry(self) -> Json | None:
        return {"status": None, "dropped": True}  # a drop is logged with dropped: true

    def extra_headers(self) -> dict[str, str]:
        return {"X-GitHub-Request-Id": secrets.token_hex(8).upper()}

    def bad_json(self) -> Exception:
        return GitHubError(400, "Problems parsing JSON")

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "127.0.0.1"
        return f"http://{host}"

    def _token_of(self) -> str | None:
        """The token of ``Authorization: Bearer <t>`` or ``token <t>``; None when no header came."""
        if self.headers.get("Authorization") is None:
            return None
        return self.bearer("bearer", "token") or ""

    def _authenticated(self) -> Identity | None:
        """The caller's identity; None when anonymous; 401 Bad credentials for a token GitHub would not
        take (unknown, revoked, expired, or a scheme other than Bearer/token)."""
        token = self._token_of()
        if token is None:
            return None
        return self.identified(
            self.github.identity(token) if token else None, GitHubError(401, "Bad credentials")
        )

    def _rate(self, who: Identity | None) -> dict[str, str]:
        """Count the request against the user's (or the address's) primary rate limit."""
        cfg = self.github.config
        if who is None:
            ok, window = self.github.take_rate("anonymous", self.client_address[0], cfg.anonymous_rate_limit)
            subject = f"{self.client_address[0]}"
        else:
            ok, window = self.github.take_rate("user", who.login.lower(), cfg.rate_limit)
            subject = "user ID 1"
        headers = window.headers()
        if not ok:
            raise GitHubError(
                403, f"API rate limit exceeded for {subject}.", documentation_url=RATE_DOCS, headers=headers
            )
        return headers

    def _api_checks(self) -> None:
        if not self.headers.get("User-Agent"):
            raise GitHubError(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent "
                "header.",
            )
        version = self.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            raise GitHubError(400, f"API version {version!r} is not supported.")

    # ---- routes

    def route(self, method: str, path: str) -> Answer:
        if path == REALM_PATH:
            if method != "GET":
                return 405, ghcr_error(405), {"Allow": "GET"}
            return self._realm()
        if path == "/_fake/tokens":
            return self._fake_tokens(method)
        self._api_checks()
        if path == "/":
            if method != "GET":
                raise GitHubError(404, "Not Found")
            base = self._base_url()
            return 200, {"current_user_url": f"{base}/user"}, {}
        if path == "/user":
            if method != "GET":
                raise GitHubError(404, "Not Found")
            return self._user()
        if path == "/credentials/revoke":
            if method != "POST":
                raise GitHubError(404, "Not Found")
            return self._revoke()
        raise GitHubError(404, "Not Found")

    def _user(self) -> Answer:
        try:
            who = self._authenticated()
        except GitHubError:
            headers = self._rate(None)
            raise GitHubError(401, "Bad credentials", headers=headers) from None
        headers = self._rate(who)
        if who is None:
            raise GitHubError(401, "Requires authentication", documentation_url=USER_DOCS, headers=headers)
        with self.github.state.lock:
            record = self.github.state.tokens[str(who.token_id)]
            expires_at = record.get("expires_at")
        headers["X-OAuth-Scopes"] = ", ".join(who.scopes)
        headers["X-Accepted-OAuth-Scopes"] = ""
        if expires_at:
            headers["GitHub-Authentication-Token-Expiration"] = expiration_header(expires_at)
        return 200, self.github.user(self._base_url()), headers

    def _revoke(self) -> Answer:
        if self.headers.get("Authorization") is not None:
            # "Any authenticated requests will return a 403."
            raise GitHubError(
                403,
                "This endpoint does not accept authenticated requests.",
                documentation_url="https://docs.github.com/rest/credentials/revoke#revoke-a-list-of-credentials",
            )
        ok, _ = self.github.take_rate("revoke", self.client_address[0], self.github.config.revoke_limit)
        if not ok:
            raise GitHubError(422, "Validation failed, or the endpoint has been spammed.")
        revoked = self.github.revoke(self.json_body())
        self.entry["revoked"] = revoked
        return 202, {}, {}

    def _fake_tokens(self, method: str) -> Answer:
        """Fake-only: create (POST) or list (GET) the admin user's tokens, with the admin token."""
        who = self._authenticated()
        if who is None or not who.admin:
            raise GitHubError(401, "Requires the admin token")
        if method == "POST":
            return 201, self.github.create_token(self.json_body()), {}
        if method == "GET":
            with self.github.state.lock:
                tokens = [self.github.view(r) for r in self.github.state.tokens.values()]
            return 200, {"tokens": tokens}, {}
        raise GitHubError(405, "Use POST or GET")

    def _realm(self) -> Answer:
        github = self.github
        service = self.last("service", github.config.service)
        if service != github.config.service:
            return 400, {"errors": [{"code": "UNSUPPORTED", "message": f"unknown service {service!r}"}]}, {}
        who = self.realm_identity(github.realm_identity, Identity())
        if who is None:
            return 401, GHCR_UNAUTHORIZED, {}
        requested = self.query.get("scope", [])
        body, access = github.registry_token(who, service, requested)
        self.note_realm(requested, access)
        return 200, body, {}


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    github = GitHub(config)
    return bind(Handler, github, host, port, github=github)
