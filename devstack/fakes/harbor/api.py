"""The Harbor fake's HTTP API: routes, error bodies, pagination headers, fault injection and the request log.
Test double only; see ``devstack/fakes/harbor/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import socket
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.fakes.faults import Fault, Faults
from devstack.fakes.registry_tokens import now, rfc3339

from .core import Config, Harbor, HarborError
from .query import link_header
from .state import Identity

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
Answer = tuple[int, Any, dict[str, str]]  # status, body (JSON, str for text/plain, None), headers


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


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-harbor/2"
    protocol_version = "HTTP/1.1"
    harbor: Harbor  # set on the subclass made by make_server
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
        self._query = parse_qs(split.query, keep_blank_values=True)
        # read the body before anything can fail, so a kept-alive connection stays in sync
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length > 0 else b""
        path = re.sub("/+", "/", split.path)
        control = self.faults.control(method, path, self._control_body())
        if control is not None:
            self._send(control[0], control[1], {})
            return
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
        fault = self.faults.take(method, path)
        if fault is not None and not fault.after:
            self._answer_fault(fault, path)
            return
        try:
            status, body, headers = self._route(method, path)
        except HarborError as err:
            status, body, headers = err.status, error_body(err.status, err.message), {}
        except Exception as err:  # keep serving; report as 500 in Harbor's error shape
            status, body, headers = 500, error_body(500), {}
            self._entry["exception"] = type(err).__name__
        if fault is not None:
            self._entry["real_status"] = status
            self._answer_fault(fault, path)
            return
        self._entry["status"] = status
        self.harbor.log(self._entry)
        self._send(status, body, headers, head=method == "HEAD", api=path.startswith(API))

    def _control_body(self) -> Any:
        try:
            return json.loads(self._raw_body) if self._raw_body else None
        except ValueError:
            return None

    def _answer_fault(self, fault: Fault, path: str) -> None:
        if fault.delay_s:
            time.sleep(fault.delay_s)
        self._entry["fault"] = fault.id
        if fault.drop:
            self._entry["status"] = None
            self.harbor.log(self._entry)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._entry["status"] = fault.status
        self.harbor.log(self._entry)
        body = fault.body if fault.body is not None else error_body(fault.status)
        self._send(fault.status, body, dict(fault.headers), api=path.startswith(API))

    def _send(
        self, status: int, body: Any, headers: dict[str, str], *, head: bool = False, api: bool = False
    ) -> None:
        if body is None:
            payload, kind = b"", None
        elif isinstance(body, str):
            payload, kind = body.encode(), "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body).encode()
            kind = "application/json; charset=utf-8" if status >= 400 else "application/json"
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        if api:
            self.send_header("X-Request-Id", str(uuid.uuid4()))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)

    def _json_body(self) -> Any:
        if not self._raw_body:
            return None
        try:
            return json.loads(self._raw_body)
        except ValueError:
            raise HarborError(400, "BAD_REQUEST", "the request body is not valid JSON") from None

    def _basic(self) -> tuple[str, str] | None:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, secret) if sep else None

    def _identity(self) -> Identity:
        """Harbor's security middleware: a credential that does not authenticate leaves the request
        anonymous (the endpoint then answers 401 where it needs a caller)."""
        basic = self._basic()
        who = self.harbor.authenticate(*basic) if basic else None
        if who is None:
            if self.headers.get("Authorization") is not None:
                self._entry["auth_failed"] = True
            who = Identity("anonymous")
        self._entry["identity"] = who.label()
        return who

    # ---- routes

    def _route(self, method: str, path: str) -> Answer:
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
                created, location = harbor.create_robot(who, self._json_body())
                return 201, created, {"Location": location}
            return self._list_robots(who, path)
        m = re.fullmatch(r"/robots/([^/]+)", sub)
        if m:
            self._allow(method, "GET", "PUT", "PATCH", "DELETE")
            who, robot_id = self._identity(), m.group(1)
            if method == "GET":
                return 200, harbor.get_robot(who, robot_id), {}
            if method == "PUT":
                harbor.update_robot(who, robot_id, self._json_body())
                return 200, None, {}
            if method == "PATCH":
                return 200, harbor.refresh_secret(who, robot_id, self._json_body()), {}
            harbor.delete_robot(who, robot_id)
            return 200, None, {}
        raise HarborError(404, "NOT_FOUND", f"{path} not found")

    @staticmethod
    def _allow(method: str, *methods: str) -> None:
        if method not in methods and not (method == "HEAD" and "GET" in methods):
            raise HarborError(405, "METHOD_NOT_ALLOWED", "method not allowed")

    def _list_robots(self, who: Identity, path: str) -> Answer:
        page, total, number, size = self.harbor.list_robots(who, self._query)
        headers = {"X-Total-Count": str(total)}
        link = link_header(path, self._query, number, size, total)
        if link:
            headers["Link"] = link
        return 200, page, headers

    def _realm(self) -> Answer:
        """core/service/token: a credential that does not authenticate leaves the request anonymous; an
        anonymous request without a scope (``docker login``) is 401 with an empty body, one with scopes gets
        a token narrowed to what anonymous may do (pull on public projects)."""
        harbor = self.harbor
        service = (self._query.get("service") or [""])[-1]
        if service != harbor.config.service:
            return 400, f"Unable to handle service: {service}", {}
        who = self._identity()
        requested = self._query.get("scope", [])
        self._entry["scopes_requested"] = [s for raw in requested for s in raw.split()]
        if who.kind == "anonymous" and not self._entry["scopes_requested"]:
            return 401, None, {}
        body, access = harbor.registry_token(who, service, requested)
        self._entry["access_granted"] = [f"{a['name']}:{','.join(a['actions'])}" for a in access]
        return 200, body, {}


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``).
    ``server.harbor`` and ``server.faults`` are the fake's logic and pending faults."""
    harbor = Harbor(config)
    faults = Faults()
    handler = type("BoundHandler", (Handler,), {"harbor": harbor, "faults": faults})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.harbor = harbor  # type: ignore[attr-defined]
    server.faults = faults  # type: ignore[attr-defined]
    return server
