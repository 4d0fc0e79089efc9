"""The Artifactory fake's HTTP API: routes, authentication, error bodies, fault injection and the request
log. Test double only; see ``devstack/fakes/artifactory/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.fakes.faults import Fault, Faults
from devstack.fakes.registry_tokens import now, rfc3339

from .access import Access, AccessError, Config, Identity, error_body

TOKENS = "/access/api/v1/tokens"
_TOKEN_PATH = re.compile(r"/access/api/v1/tokens/([^/]+)")
_REALM_PATH = re.compile(r"/artifactory/api/docker/([^/]+)/v2/token")
PING_PATHS = ("/artifactory/api/system/ping", "/access/api/v1/system/ping")

Json = dict[str, Any]
Answer = tuple[int, Any, dict[str, str]]


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-artifactory/7"
    protocol_version = "HTTP/1.1"
    access: Access  # set on the subclass made by make_server
    faults: Faults

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the JSONL log is the record

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    # ---- plumbing

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        self._query = parse_qs(split.query, keep_blank_values=True)
        # read the body before anything can fail, so a kept-alive connection stays in sync
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
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
        control = self.faults.control(method, path, self._json_or_none())
        if control is not None:
            self._entry["status"] = control[0]
            self._send(control[0], control[1], {})
            return
        fault = self.faults.take(method, path)
        if fault is not None:
            self._entry["fault"] = fault.id
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if not fault.after:
                self._answer_fault(fault, path)
                return
        status, body, headers = self._run(method, path)
        if fault is not None:  # after: the real work is done, the answer is the fault's
            self._answer_fault(fault, path)
            return
        self._entry["status"] = status
        self.access.log(self._entry)
        self._send(status, body, headers, head=method == "HEAD")

    def _run(self, method: str, path: str) -> Answer:
        try:
            self.access.purge_expired()
            return self._route(method, path.rstrip("/") or "/")
        except AccessError as err:
            return err.status, err.body, self._auth_headers(err.status, path)
        except Exception as err:  # keep serving; report a 500 in the Access error shape
            return 500, error_body(500, f"internal error ({type(err).__name__})"), {}

    def _answer_fault(self, fault: Fault, path: str) -> None:
        if fault.drop:
            self._entry["status"] = "dropped"
            self.access.log(self._entry)
            self.close_connection = True
            return
        body = fault.body if fault.body is not None else error_body(fault.status, f"injected {fault.status}")
        headers = {**self._auth_headers(fault.status, path), **fault.headers}
        self._entry["status"] = fault.status
        self.access.log(self._entry)
        self._send(fault.status, body, headers)

    def _auth_headers(self, status: int, path: str) -> dict[str, str]:
        if status == 401 and _REALM_PATH.fullmatch(path.rstrip("/")):
            return {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'}
        return {}

    def _send(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        if isinstance(body, str):
            payload, kind = body.encode(), "text/plain"
        else:
            payload, kind = (b"" if body is None else json.dumps(body).encode()), "application/json"
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)

    def _json_or_none(self) -> Any:
        try:
            return json.loads(self._raw_body) if self._raw_body else None
        except ValueError:
            return None

    def _body(self) -> dict[str, Any]:
        """A create request's fields: JSON, or form fields (application/x-www-form-urlencoded)."""
        kind = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if not self._raw_body:
            return {}
        if kind == "application/json":
            try:
                body = json.loads(self._raw_body)
            except ValueError:
                raise AccessError(400, "the request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise AccessError(400, "the request body must be a JSON object")
            return body
        if kind in ("application/x-www-form-urlencoded", ""):
            try:
                form = parse_qs(self._raw_body.decode(), keep_blank_values=True, strict_parsing=True)
            except (ValueError, UnicodeDecodeError):
                raise AccessError(400, "the request body is not a valid form") from None
            return {k: v[-1] for k, v in form.items()}
        raise AccessError(415, f"unsupported content type {kind!r}")

    def _bearer(self) -> Identity:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AccessError(401, "Unauthenticated: a Bearer access token is required")
        who = self.access.identity_of(token.strip())
        if who is None:
            self._entry["auth_failed"] = True
            raise AccessError(401, "Invalid token, expired or revoked")
        self._entry["identity"] = who.label()
        return who

    # ---- routes

    def _route(self, method: str, path: str) -> Answer:
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
                return 200, self.access.listing(self._query, who), {}
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
        services = self._query.get("service", [])
        service = services[-1] if services else access.config.service
        if service != access.config.service:
            raise AccessError(400, f"unknown service {service!r}")
        auth = self.headers.get("Authorization")
        who = Identity()
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            user, sep, secret = "", "", ""
            if scheme.lower() == "basic":
                with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                    user, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            found = access.identity_of(secret) if sep else None
            if found is None or found.username != user.lower():
                self._entry["auth_failed"] = True
                raise AccessError(401, "Bad credentials")
            who = found
        self._entry["identity"] = who.label()
        requested = self._query.get("scope", [])
        body, granted = access.registry_token(who, repo_key, service, requested)
        self._entry["scopes_requested"] = [s for raw in requested for s in raw.split()]
        self._entry["access_granted"] = [f"{a['name']}:{','.join(a['actions'])}" for a in granted]
        return 200, body, {}


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    handler = type("BoundHandler", (Handler,), {"access": Access(config), "faults": Faults()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
