"""The GitHub fake's HTTP API: routes, GitHub's headers and error bodies, fault injection and the request
log. Test double only; see ``devstack/fakes/github/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.fakes.faults import Fault, Faults
from devstack.fakes.registry_tokens import now, rfc3339

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
Answer = tuple[int, Any, dict[str, str]]


def ghcr_error(status: int) -> Json:
    code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN", 429: "TOOMANYREQUESTS"}.get(
        status, "UNKNOWN"
    )
    return {"errors": [{"code": code, "message": HTTPStatus(status).phrase.lower()}]}


def github_error(status: int) -> Json:
    return GitHubError(status, HTTPStatus(status).phrase).body()


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-github/1"
    protocol_version = "HTTP/1.1"
    github: GitHub  # set on the subclass made by make_server
    faults: Faults

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the JSONL log is the record

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    # ---- plumbing

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        self._query = parse_qs(split.query, keep_blank_values=True)
        # read the body before anything can fail, so a kept-alive connection stays in sync
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length > 0 else b""
        auth = self.headers.get("Authorization")
        self._entry: Json = {
            "ts": rfc3339(now()),
            "method": method,
            "path": path,
            "query_keys": sorted(self._query),
            "authorization": auth is not None,
            "auth_scheme": auth.split(" ", 1)[0].lower() if auth else None,
            "identity": None,
        }
        control = self.faults.control(method, path, self._body_or_none())
        if control is not None:
            self._finish(control[0], control[1], {})
            return
        fault = self.faults.take(method, path)
        if fault is not None:
            self._entry["fault"] = fault.id
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if not fault.after:
                self._answer_fault(fault, path)
                return
        status, body, headers = self._real(method, path)
        if fault is not None:
            self._answer_fault(fault, path)
            return
        self._finish(status, body, headers, head=method == "HEAD")

    def _real(self, method: str, path: str) -> Answer:
        try:
            return self._route(method, path)
        except GitHubError as err:
            return err.status, err.body(), err.headers
        except Exception as err:  # keep serving; report as 500 in GitHub's error shape
            self._entry["exception"] = type(err).__name__
            return 500, github_error(500), {}

    def _answer_fault(self, fault: Fault, path: str) -> None:
        if fault.drop:
            self._entry["status"] = None
            self._entry["dropped"] = True
            self.github.log(self._entry)
            self.close_connection = True
            return
        body = fault.body
        if body is None and fault.status != 204:
            body = ghcr_error(fault.status) if path == REALM_PATH else github_error(fault.status)
        self._finish(fault.status, body, dict(fault.headers))

    def _finish(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        self._entry["status"] = status
        self.github.log(self._entry)
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-GitHub-Request-Id", secrets.token_hex(8).upper())
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)

    def _body_or_none(self) -> Any:
        try:
            return json.loads(self._raw_body) if self._raw_body else None
        except ValueError:
            return None

    def _json_body(self) -> Any:
        if not self._raw_body:
            return None
        try:
            return json.loads(self._raw_body)
        except ValueError:
            raise GitHubError(400, "Problems parsing JSON") from None

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "127.0.0.1"
        return f"http://{host}"

    def _token_of(self) -> str | None:
        """The token of ``Authorization: Bearer <t>`` or ``token <t>``; None when no header came."""
        auth = self.headers.get("Authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token.strip():
            return ""
        return token.strip()

    def _authenticated(self) -> Identity | None:
        """The caller's identity; None when anonymous; 401 Bad credentials for a token GitHub would not
        take (unknown, revoked, expired, or a scheme other than Bearer/token)."""
        token = self._token_of()
        if token is None:
            return None
        who = self.github.identity(token) if token else None
        if who is None:
            self._entry["auth_failed"] = True
            raise GitHubError(401, "Bad credentials")
        self._entry["identity"] = who.label()
        return who

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

    def _route(self, method: str, path: str) -> Answer:
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
        revoked = self.github.revoke(self._json_body())
        self._entry["revoked"] = revoked
        return 202, {}, {}

    def _fake_tokens(self, method: str) -> Answer:
        """Fake-only: create (POST) or list (GET) the admin user's tokens, with the admin token."""
        who = self._authenticated()
        if who is None or not who.admin:
            raise GitHubError(401, "Requires the admin token")
        if method == "POST":
            return 201, self.github.create_token(self._json_body()), {}
        if method == "GET":
            with self.github.state.lock:
                tokens = [self.github.view(r) for r in self.github.state.tokens.values()]
            return 200, {"tokens": tokens}, {}
        raise GitHubError(405, "Use POST or GET")

    def _realm(self) -> Answer:
        github = self.github
        services = self._query.get("service", [])
        service = services[-1] if services else github.config.service
        if service != github.config.service:
            return 400, {"errors": [{"code": "UNSUPPORTED", "message": f"unknown service {service!r}"}]}, {}
        auth = self.headers.get("Authorization")
        if auth is None:
            who = Identity()
        else:
            scheme, _, value = auth.partition(" ")
            user, sep, token = "", "", ""
            if scheme.lower() == "basic":
                try:
                    user, sep, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    user, sep, token = "", "", ""
            found = github.realm_identity(user, token) if sep else None
            if found is None:
                self._entry["auth_failed"] = True
                return 401, GHCR_UNAUTHORIZED, {}
            who = found
        self._entry["identity"] = who.label()
        requested = self._query.get("scope", [])
        body, access = github.registry_token(who, service, requested)
        self._entry["scopes_requested"] = [s for raw in requested for s in raw.split()]
        self._entry["access_granted"] = [f"{a['name']}:{','.join(a['actions'])}" for a in access]
        return 200, body, {}


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    github = GitHub(config)
    handler = type("BoundHandler", (Handler,), {"github": github, "faults": Faults()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
