"""The Docker Hub fake's HTTP API: routes, error bodies, pagination and what its request log and faults do
differently, on the plumbing all the fakes share (``devstack/fakes/http_base.py``). Test double only; see
``devstack/fakes/dockerhub/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import re
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from devstack.fakes.faults import Fault
from devstack.fakes.http_base import Answer, FakeHandler, bind

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


class Handler(FakeHandler):
    """Docker Hub's routes and error shape on the shared plumbing (`devstack.fakes.http_base`)."""

    server_version = "fake-dockerhub/1"
    methods = ("GET", "POST", "PATCH", "DELETE", "HEAD")
    # faults as this fake was first written: the log names no fault, a drop is not logged and shuts the
    # socket down, an injected answer to HEAD has no body
    note_fault = False
    shutdown_on_drop = True
    fault_heeds_head = True
    hub: Hub  # set on the subclass made by make_server

    def error_body(self, status: int, message: str | None) -> Json:
        text = message or f"injected {status}"
        return {"message": text, "errinfo": {}, "detail": text}

    def error_answer(self, err: Exception, path: str) -> Answer:
        if isinstance(err, HubError):
            return err.status, {"message": err.message, "errinfo": err.errinfo, "detail": err.message}, {}
        # keep serving; report as 500 in Hub's error shape
        body = {
            "message": "internal error",
            "errinfo": {"type": type(err).__name__},
            "detail": "internal error",
        }
        return 500, body, {}

    def fault_reply(self, fault: Fault, path: str, after: bool) -> tuple[Any, dict[str, str]]:
        if after and fault.body is None:
            return {"message": f"injected {fault.status}"}, dict(fault.headers)
        return super().fault_reply(fault, path, after)

    def drop_entry(self) -> Json | None:
        return None

    def bad_json(self) -> Exception:
        return HubError(400, "request body is not valid JSON")

    def _bearer(self) -> Identity:
        missing = HubError(401, "authentication required")
        refused = HubError(401, "invalid or expired bearer token")
        return self.bearer_identity(self.hub.bearer_identity, missing, refused)

    def _token_manager(self) -> Identity:
        who = self._bearer()
        if who.kind == "oat" or (who.kind == "pat" and not self.hub.config.pat_bearer_may_manage):
            raise HubError(403, "this credential may not manage access tokens")
        return who

    # ---- routes

    def route(self, method: str, path: str) -> Answer:
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
                    self.json_body(), self.client_address[0], self.headers.get("User-Agent", "")
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
                return 200, hub.patch_pat(token_uuid, self.json_body()), {}
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
                    return 201, hub.create_oat(org, self.json_body(), who), {}
                if method == "GET":
                    return 200, self._list_oats(path), {}
                raise HubError(405, "method not allowed")
            if method == "GET":
                return 200, hub.oat_view(hub.get_oat(org, token_id), resources=True), {}
            if method == "PATCH":
                return 200, hub.patch_oat(org, token_id, self.json_body()), {}
            if method == "DELETE":
                hub.delete_oat(org, token_id)
                return 204, None, {}
            raise HubError(405, "method not allowed")
        raise HubError(404, "not found")

    def _auth_token(self) -> Answer:
        body = self.json_body()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("identifier"), str)
            or not isinstance(body.get("secret"), str)
        ):
            raise HubError(400, "identifier and secret are required")
        who = self.identified(
            self.hub.check_secret(body["identifier"], body["secret"]),
            HubError(401, "incorrect username or password"),
        )
        return 200, {"access_token": self.hub.issue_hub_bearer(who)}, {}

    def _realm(self) -> Answer:
        hub = self.hub
        service = self.last("service", hub.config.service)
        if service != hub.config.service:
            return 400, {"details": f"unknown service {service!r}"}, {}
        refused: Answer = 401, {"details": "incorrect username or password"}, {}
        auth = self.headers.get("Authorization")
        if auth is not None and auth.partition(" ")[0].lower() != "basic":
            return refused  # another scheme: refused before any check (not logged as auth_failed)
        who = self.realm_identity(hub.check_secret, Identity("anonymous"))
        if who is None:
            return refused
        requested = self.query.get("scope", [])
        body, access = hub.registry_token(who, service, requested)
        self.note_realm(requested, access)
        return 200, body, {}

    def _list_pats(self, path: str) -> Json:
        with self.hub.state.lock:
            recs = sorted(self.hub.state.pats.values(), key=lambda r: -int(r.get("seq", 0)))
            chunk, nxt, prev = paginate(recs, self.query, self.base_url(path))
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
            chunk, nxt, prev = paginate(recs, self.query, self.base_url(path))
            return {
                "total": len(recs),
                "next": nxt,
                "previous": prev,
                "results": [self.hub.oat_view(r, resources=False) for r in chunk],
            }


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    hub = Hub(config)
    return bind(Handler, hub, host, port, faults=hub.faults, hub=hub)
