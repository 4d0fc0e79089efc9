"""The Docker Hub fake's HTTP API: routes, error bodies, pagination and the request log. Test double only;
see ``devstack/fakes/dockerhub/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from devstack.fakes.faults import drop
from devstack.fakes.registry_tokens import now, rfc3339

from .hub import Config, Hub, HubError
from .state import Identity, usable

MAX_PAGE_SIZE = 100

Json = dict[str, Any]


def paginate(
    items: list[Json], query: dict[str, list[str]], base_url: str
) -> tuple[list[Json], str | None, str | None]:
    def number(name: str, default: int) -> int:
        raw = query.get(name, [str(default)])[-1]
        try:
            value = int(float(raw))
        except (ValueError, OverflowError):
            raise HubError(400, f"{name} must be a number", {"field": name}) from None
        if value < 1 or float(raw) != value:
            raise HubError(400, f"{name} must be a positive integer", {"field": name})
        return value

    page = number("page", 1)
    size = number("page_size", 10)
    if size > MAX_PAGE_SIZE:
        raise HubError(400, f"page_size must be at most {MAX_PAGE_SIZE}", {"field": "page_size"})
    start = (page - 1) * size
    chunk = items[start : start + size]
    nxt = (
        f"{base_url}?{urlencode({'page': page + 1, 'page_size': size})}"
        if start + size < len(items)
        else None
    )
    prev = None
    if page > 1:
        last = max(1, -(-len(items) // size))
        prev = f"{base_url}?{urlencode({'page': min(page - 1, last), 'page_size': size})}"
    return chunk, nxt, prev


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-dockerhub/1"
    protocol_version = "HTTP/1.1"
    hub: Hub  # set on the subclass made by make_server

    # quiet default stderr access log: the JSONL log is the record
    def log_message(self, format: str, *args: Any) -> None:
        pass

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
        self._query = parse_qs(split.query, keep_blank_values=True)
        # read the body before anything can fail, so a kept-alive connection stays in sync
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length > 0 else b""
        auth = self.headers.get("Authorization")
        self._entry: Json = {
            "ts": rfc3339(now()),
            "method": method,
            "path": split.path,
            "query_keys": sorted(self._query),
            "authorization": auth is not None,
            "auth_scheme": auth.split(" ", 1)[0].lower() if auth else None,
            "identity": None,
        }
        control = self.hub.faults.control(method, split.path, self._control_body())
        if control is not None:
            self._send(control[0], control[1], {})
            return
        fault = self.hub.faults.take(method, split.path)
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault is not None and not fault.after:
            if fault.drop:
                drop(self)
                return
            status, body, headers = fault.status, fault.body, dict(fault.headers)
            if body is None:
                body = {
                    "message": f"injected {fault.status}",
                    "errinfo": {},
                    "detail": f"injected {fault.status}",
                }
        else:
            status, body, headers = self._answer(method, split.path)
            if fault is not None:  # the real work is done: then the answer is lost, or replaced
                if fault.drop:
                    drop(self)
                    return
                status, headers = fault.status, dict(fault.headers)
                body = fault.body if fault.body is not None else {"message": f"injected {fault.status}"}
        self._entry["status"] = status
        self.hub.log(self._entry)
        self._send(status, body, headers, head=(method == "HEAD"))

    def _answer(self, method: str, path: str) -> tuple[int, Any, dict[str, str]]:
        try:
            return self._route(method, path)
        except HubError as err:
            return err.status, {"message": err.message, "errinfo": err.errinfo, "detail": err.message}, {}
        except Exception as err:  # keep serving; report as 500 in Hub's error shape
            body = {
                "message": "internal error",
                "errinfo": {"type": type(err).__name__},
                "detail": "internal error",
            }
            return 500, body, {}

    def _control_body(self) -> Any:
        try:
            return json.loads(self._raw_body) if self._raw_body else None
        except ValueError:
            return None

    def _send(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)

    def _json_body(self) -> Any:
        raw = self._raw_body
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise HubError(400, "request body is not valid JSON") from None

    def _base_url(self, path: str) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}{path}"

    def _bearer(self) -> Identity:
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HubError(401, "authentication required")
        who = self.hub.bearer_identity(token.strip())
        if who is None:
            self._entry["auth_failed"] = True
            raise HubError(401, "invalid or expired bearer token")
        self._entry["identity"] = who.label()
        return who

    def _token_manager(self) -> Identity:
        who = self._bearer()
        if who.kind == "oat" or (who.kind == "pat" and not self.hub.config.pat_bearer_may_manage):
            raise HubError(403, "this credential may not manage access tokens")
        return who

    # ---- routes

    def _route(self, method: str, path: str) -> tuple[int, Any, dict[str, str]]:
        path = path.rstrip("/") or "/"
        hub = self.hub
        if path == "/token":
            if method != "GET":
                return 405, {"details": "method not allowed"}, {"Allow": "GET"}
            return self._realm()
        if path == "/v2/auth/token":
            if method != "POST":
                raise HubError(405, "method not allowed")
            return self._auth_token()
        if path == "/v2/access-tokens":
            self._token_manager()
            if method == "POST":
                rec = hub.create_pat(
                    self._json_body(), self.client_address[0], self.headers.get("User-Agent", "")
                )
                return 201, rec, {}
            if method == "GET":
                return 200, self._list_pats(path), {}
            raise HubError(405, "method not allowed")
        m = re.fullmatch(r"/v2/access-tokens/([^/]+)", path)
        if m:
            self._token_manager()
            token_uuid = m.group(1)
            if method == "GET":
                return 200, hub.pat_view(hub.get_pat(token_uuid)), {}
            if method == "PATCH":
                return 200, hub.patch_pat(token_uuid, self._json_body()), {}
            if method == "DELETE":
                hub.delete_pat(token_uuid)
                return 204, None, {}
            raise HubError(405, "method not allowed")
        m = re.fullmatch(r"/v2/orgs/([^/]+)/access-tokens(?:/([^/]+))?", path)
        if m:
            who = self._token_manager()
            org, token_id = m.group(1), m.group(2)
            if who.kind != "admin" and who.kind != "pat":
                raise HubError(403, "only organization owners may manage organization access tokens")
            hub.check_org(org)
            if token_id is None:
                if method == "POST":
                    return 201, hub.create_oat(org, self._json_body(), who), {}
                if method == "GET":
                    return 200, self._list_oats(path), {}
                raise HubError(405, "method not allowed")
            if method == "GET":
                return 200, hub.oat_view(hub.get_oat(org, token_id), resources=True), {}
            if method == "PATCH":
                return 200, hub.patch_oat(org, token_id, self._json_body()), {}
            if method == "DELETE":
                hub.delete_oat(org, token_id)
                return 204, None, {}
            raise HubError(405, "method not allowed")
        raise HubError(404, "not found")

    def _auth_token(self) -> tuple[int, Any, dict[str, str]]:
        body = self._json_body()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("identifier"), str)
            or not isinstance(body.get("secret"), str)
        ):
            raise HubError(400, "identifier and secret are required")
        who = self.hub.check_secret(body["identifier"], body["secret"])
        if who is None:
            self._entry["auth_failed"] = True
            raise HubError(401, "incorrect username or password")
        self._entry["identity"] = who.label()
        return 200, {"access_token": self.hub.issue_hub_bearer(who)}, {}

    def _realm(self) -> tuple[int, Any, dict[str, str]]:
        hub = self.hub
        services = self._query.get("service", [])
        service = services[-1] if services else hub.config.service
        if service != hub.config.service:
            return 400, {"details": f"unknown service {service!r}"}, {}
        auth = self.headers.get("Authorization")
        if auth is None:
            who = Identity("anonymous")
        else:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "basic":
                return 401, {"details": "incorrect username or password"}, {}
            try:
                user, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, sep, secret = "", "", ""
            found = hub.check_secret(user, secret) if sep else None
            if found is None:
                self._entry["auth_failed"] = True
                return 401, {"details": "incorrect username or password"}, {}
            who = found
        self._entry["identity"] = who.label()
        requested = self._query.get("scope", [])
        body, access = hub.registry_token(who, service, requested)
        self._entry["scopes_requested"] = [s for raw in requested for s in raw.split()]
        self._entry["access_granted"] = [f"{a['name']}:{','.join(a['actions'])}" for a in access]
        return 200, body, {}

    def _list_pats(self, path: str) -> Json:
        with self.hub.state.lock:
            recs = sorted(self.hub.state.pats.values(), key=lambda r: -int(r.get("seq", 0)))
            chunk, nxt, prev = paginate(recs, self._query, self._base_url(path))
            return {
                "count": len(recs),
                "active_count": sum(1 for r in recs if usable(r)),
                "next": nxt,
                "previous": prev,
                "results": [self.hub.pat_view(r) for r in chunk],
            }

    def _list_oats(self, path: str) -> Json:
        with self.hub.state.lock:
            recs = sorted(self.hub.state.oats.values(), key=lambda r: -int(r.get("seq", 0)))
            chunk, nxt, prev = paginate(recs, self._query, self._base_url(path))
            return {
                "total": len(recs),
                "next": nxt,
                "previous": prev,
                "results": [self.hub.oat_view(r, resources=False) for r in chunk],
            }


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    hub = Hub(config)
    handler = type("BoundHandler", (Handler,), {"hub": hub})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
