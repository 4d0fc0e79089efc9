"""The Artifactory fake's HTTP API: routes, authentication, error bodies, and what its fault injection and
request log do differently, on the plumbing all the fakes share (``devstack/fakes/http_base.py``). Test
double only; see ``devstack/fakes/artifactory/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import re
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from devstack.fakes.faults import Fault
from devstack.fakes.http_base import Answer, FakeHandler, bind

from .access import Access, AccessError, Config, Identity, error_body

TOKENS = "/access/api/v1/tokens"
_TOKEN_PATH = re.compile(r"/access/api/v1/tokens/([^/]+)")
_REALM_PATH = re.compile(r"/artifactory/api/docker/([^/]+)/v2/token")
PING_PATHS = ("/artifactory/api/system/ping", "/access/api/v1/system/ping")

Json = dict[str, Any]


class Handler(FakeHandler):
    """The Access service's routes and error shape on the shared plumbing (`devstack.fakes.http_base`)."""

    server_version = "fake-artifactory/7"
    text_type = "text/plain"
    access: Access  # set on the subclass made by make_server

    def content_length(self) -> int:
        try:
            return super().content_length()
        except ValueError:
            return 0

    def error_body(self, status: int, message: str | None) -> Json:
        return error_body(status, message or f"injected {status}")

    def error_answer(self, err: Exception, path: str) -> Answer:
        if isinstance(err, AccessError):
            return err.status, err.body, self._auth_headers(err.status, path)
        # keep serving; report a 500 in the Access error shape
        return 500, error_body(500, f"internal error ({type(err).__name__})"), {}

    def fault_reply(self, fault: Fault, path: str, after: bool) -> tuple[Any, dict[str, str]]:
        body, headers = super().fault_reply(fault, path, after)
        return body, {**self._auth_headers(fault.status, path), **headers}

    def drop_entry(self) -> Json | None:
        return {"status": "dropped"}  # a drop is logged with that status

    def bad_json(self) -> Exception:
        return AccessError(400, "the request body is not valid JSON")

    def encode(self, status: int, body: Any, headers: dict[str, str]) -> tuple[bytes, str | None]:
        payload, kind = super().encode(status, body, headers)
        return payload, kind if payload else None

    def _auth_headers(self, status: int, path: str) -> dict[str, str]:
        if status == 401 and _REALM_PATH.fullmatch(path.rstrip("/")):
            return {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'}
        return {}

    def _body(self) -> dict[str, Any]:
        """A create request's fields: JSON, or form fields (application/x-www-form-urlencoded)."""
        kind = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if not self.raw_body:
            return {}
        if kind == "application/json":
            body = self.json_body()
            if not isinstance(body, dict):
                raise AccessError(400, "the request body must be a JSON object")
            return body
        if kind in ("application/x-www-form-urlencoded", ""):
            try:
                form = parse_qs(self.raw_body.decode(), keep_blank_values=True, strict_parsing=True)
            except (ValueError, UnicodeDecodeError):
                raise AccessError(400, "the request body is not a valid form") from None
            return {k: v[-1] for k, v in form.items()}
        raise AccessError(415, f"unsupported content type {kind!r}")

    def _bearer(self) -> Identity:
        missing = AccessError(401, "Unauthenticated: a Bearer access token is required")
        refused = AccessError(401, "Invalid token, expired or revoked")
        return self.bearer_identity(self.access.identity_of, missing, refused)

    # ---- routes

    def route(self, method: str, path: str) -> Answer:
        self.access.purge_expired()
        path = path.rstrip("/") or "/"
        if path in PING_PATHS:
            return (200, "OK", {}) if method in ("GET", "HEAD") else (405, error_body(405, "use GET"), {})
        m = _REALM_PATH.fullmatch(path)
        if m:
            if method != "GET":
                raise AccessError(405, "method not allowed")
            return self._realm(m.group(1))
        if path == TOKENS:
            who = self._bearer()
            if method == "POST":
                return 200, self.access.create(self._body(), who), {}
            if method == "GET":
                return 200, self.access.listing(self.query, who), {}
            raise AccessError(405, "method not allowed")
        m = _TOKEN_PATH.fullmatch(path)
        if m:
            who = self._bearer()
            if method == "GET":
                return 200, self.access.get(m.group(1), who), {}
            if method == "DELETE":
                return (200, None, {}) if self.access.revoke(m.group(1), who) else (204, None, {})
            raise AccessError(405, "method not allowed")
        raise AccessError(404, "not found")

    def _realm(self, repo_key: str) -> Answer:
        access = self.access
        if repo_key not in access.config.repo_keys:
            raise AccessError(404, f"repository {repo_key!r} is not a Docker repository")
        service = self.last("service", access.config.service)
        if service != access.config.service:
            raise AccessError(400, f"unknown service {service!r}")
        who = self.realm_identity(self._token_of_user, Identity())
        if who is None:
            raise AccessError(401, "Bad credentials")
        requested = self.query.get("scope", [])
        body, granted = access.registry_token(who, repo_key, service, requested)
        self.note_realm(requested, granted)
        return 200, body, {}

    def _token_of_user(self, user: str, secret: str) -> Identity | None:
        """The identity of HTTP Basic credentials: an access token of that very user."""
        found = self.access.identity_of(secret)
        return found if found is not None and found.username == user.lower() else None


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    access = Access(config)
    return bind(Handler, access, host, port, access=access)
