"""The Harbor fake's HTTP API: routes, error bodies, pagination headers, and what its fault injection and
request log do differently, on the plumbing all the fakes share (``devstack/fakes/http_base.py``). Test
double only; see ``devstack/fakes/harbor/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import re
import uuid
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any

from devstack.fakes.faults import Faults
from devstack.fakes.http_base import Answer, FakeHandler, bind

from .core import Config, Harbor
from .query import link_header
from .state import HarborError, Identity

API = "/api/v2.0"
REALM = "/service/token"
# lib/errors/const.go and lib/http/error.go: the error code Harbor writes for each status.
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION",
    413: "REQUEST_ENTITY_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUEST",
    500: "UNKNOWN",
}

Json = dict[str, Any]


def error_body(status: int, message: str | None = None) -> Json:
    """Harbor's error body, ``{"errors": [{"code", "message"}]}`` (swagger definitions/Errors). A 5xx says
    only "internal server error", as lib/http/error.go SendError does."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    code = CODES.get(status) or ("UNKNOWN" if status >= 500 else phrase.upper().replace(" ", "_"))
    if status >= 500:
        message = "internal server error"
    return {"errors": [{"code": code, "message": message or phrase.lower()}]}


class Handler(FakeHandler):
    """Harbor's routes and error shape on the shared plumbing (`devstack.fakes.http_base`)."""

    server_version = "fake-harbor/2"
    text_type = "text/plain; charset=utf-8"
    # an ``after`` fault's delay comes after the real work, whose status the log keeps (``real_status``);
    # a drop shuts the socket down at once
    delay_first = False
    note_real_status = True
    shutdown_on_drop = True
    harbor: Harbor  # set on the subclass made by make_server

    def normalize_path(self, path: str) -> str:
        return re.sub("/+", "/", path)

    def error_body(self, status: int, message: str | None) -> Json:
        return error_body(status, message)

    def error_answer(self, err: Exception, path: str) -> Answer:
        if isinstance(err, HarborError):
            return err.status, error_body(err.status, err.message), {}
        return super().error_answer(err, path)  # keep serving; report as 500 in Harbor's error shape

    def encode(self, status: int, body: Any, headers: dict[str, str]) -> tuple[bytes, str | None]:
        payload, kind = super().encode(status, body, headers)
        if kind == self.json_type and status >= 400:
            kind = "application/json; charset=utf-8"
        return payload, kind

    def extra_headers(self) -> dict[str, str]:
        """Every API answer has an ``X-Request-Id`` (swagger responses/*)."""
        return {"X-Request-Id": str(uuid.uuid4())} if self.req_path.startswith(API) else {}

    def bad_json(self) -> Exception:
        return HarborError(400, "BAD_REQUEST", "the request body is not valid JSON")

    def _identity(self) -> Identity:
        """Harbor's security middleware: a credential that does not authenticate leaves the request
        anonymous (the endpoint then answers 401 where it needs a caller)."""
        basic = self.basic_credentials()
        who = self.harbor.authenticate(*basic) if basic else None
        if who is None:
            if self.headers.get("Authorization") is not None:
                self.entry["auth_failed"] = True
            who = Identity("anonymous")
        self.entry["identity"] = who.label()
        return who

    # ---- routes

    def route(self, method: str, path: str) -> Answer:
        path = path.rstrip("/") or "/"
        if path == REALM:
            if method != "GET":
                return 405, None, {"Allow": "GET"}
            return self._realm()
        if path == API or not path.startswith(API + "/"):
            raise HarborError(404, "NOT_FOUND", f"{path} not found")
        harbor = self.harbor
        sub = path[len(API) :]
        if sub == "/ping":
            self._allow(method, "GET")
            return 200, "Pong", {}
        if sub == "/users/current":
            self._allow(method, "GET")
            return 200, harbor.current_user(self._identity()), {}
        m = re.fullmatch(r"/projects/([^/]+)", sub)
        if m:
            self._allow(method, "GET")
            is_name = (self.headers.get("X-Is-Resource-Name") or "").lower() == "true"
            return 200, harbor.project_view(self._identity(), m.group(1), is_name), {}
        if sub == "/robots":
            self._allow(method, "GET", "POST")
            who = self._identity()
            if method == "POST":
                created, location = harbor.create_robot(who, self.json_body())
                return 201, created, {"Location": location}
            return self._list_robots(who, path)
        m = re.fullmatch(r"/robots/([^/]+)", sub)
        if m:
            self._allow(method, "GET", "PUT", "PATCH", "DELETE")
            who, robot_id = self._identity(), m.group(1)
            if method == "GET":
                return 200, harbor.get_robot(who, robot_id), {}
            if method == "PUT":
                harbor.update_robot(who, robot_id, self.json_body())
                return 200, None, {}
            if method == "PATCH":
                return 200, harbor.refresh_secret(who, robot_id, self.json_body()), {}
            harbor.delete_robot(who, robot_id)
            return 200, None, {}
        raise HarborError(404, "NOT_FOUND", f"{path} not found")

    @staticmethod
    def _allow(method: str, *methods: str) -> None:
        if method not in methods and not (method == "HEAD" and "GET" in methods):
            raise HarborError(405, "METHOD_NOT_ALLOWED", "method not allowed")

    def _list_robots(self, who: Identity, path: str) -> Answer:
        page, total, number, size = self.harbor.list_robots(who, self.query)
        headers = {"X-Total-Count": str(total)}
        link = link_header(path, self.query, number, size, total)
        if link:
            headers["Link"] = link
        return 200, page, headers

    def _realm(self) -> Answer:
        """core/service/token: a credential that does not authenticate leaves the request anonymous; an
        anonymous request without a scope (``docker login``) is 401 with an empty body, one with scopes gets
        a token narrowed to what anonymous may do (pull on public projects)."""
        harbor = self.harbor
        service = self.last("service", "")
        if service != harbor.config.service:
            return 400, f"Unable to handle service: {service}", {}
        who = self._identity()
        requested = self.query.get("scope", [])
        self.note_realm(requested)
        if who.kind == "anonymous" and not self.entry["scopes_requested"]:
            return 401, None, {}
        body, access = harbor.registry_token(who, service, requested)
        self.note_realm(requested, access)
        return 200, body, {}


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``).
    ``server.harbor`` and ``server.faults`` are the fake's logic and pending faults."""
    harbor = Harbor(config)
    faults = Faults()
    server = bind(Handler, harbor, host, port, faults=faults, harbor=harbor)
    server.harbor = harbor  # type: ignore[attr-defined]
    server.faults = faults  # type: ignore[attr-defined]
    return server
