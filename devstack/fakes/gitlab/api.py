"""The GitLab fake's HTTP API: routes under ``/api/v4``, the ``/jwt/auth`` realm, offset pagination headers,
error bodies, fault injection and the request log. Test double only; see
``devstack/fakes/gitlab/__init__.py`` for the documented API it follows."""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from devstack.fakes.faults import Fault, Faults
from devstack.fakes.registry_tokens import now, rfc3339

from .model import GitLab
from .state import Config, GitLabError, Who, message, param_error, unauthorized

Json = dict[str, Any]
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
RATE_LIMIT = 2000  # requests per minute, as RateLimit-Limit says on an injected 429
_TOKENS = re.compile(
    r"/api/v4/(projects|groups)/([^/]+)/(deploy_tokens|access_tokens)(?:/([^/]+))?(/rotate)?"
)
_RESOURCE = re.compile(r"/api/v4/(projects|groups)/([^/]+)")
_REASONS = {
    400: "400 Bad request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    412: "412 Precondition Failed",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}


def error_body(status: int) -> tuple[Any, dict[str, str]]:
    """GitLab's body (and headers) for a status: ``{"message": "<status> <reason>"}``; 422 in the
    validation shape; 429 as the rate limiter sends it (plain text, ``Retry-After``, ``RateLimit-*``)."""
    if status == 429:
        reset = int(time.time()) + 60
        return "Retry later\n", {
            "Content-Type": "text/plain",
            "Retry-After": "60",
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(RATE_LIMIT),
            "RateLimit-Observed": str(RATE_LIMIT + 1),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
        }
    if status == 422:
        return {"message": {"base": ["422 Unprocessable Entity"]}}, {}
    return {"message": _REASONS.get(status, f"{status} Error")}, {}


def paginate(
    items: list[Json], query: dict[str, list[str]], base_url: str
) -> tuple[list[Json], dict[str, str]]:
    """One page of ``items`` and GitLab's offset pagination headers (``x-page``, ``x-per-page``,
    ``x-total``, ``x-total-pages``, ``x-next-page``, ``x-prev-page``, ``Link``)."""

    def number(name: str, default: int) -> int:
        raw = (query.get(name) or [str(default)])[-1].strip()
        if not re.fullmatch(r"-?[0-9]{1,9}", raw):
            raise param_error(f"{name} is invalid")
        return int(raw)

    page = max(1, number("page", 1))
    per_page = number("per_page", DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    total_pages = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    rest = {k: v for k, v in query.items() if k not in ("page", "per_page")}

    def link(number_: int) -> str:
        return f"{base_url}?{urlencode({**rest, 'page': number_, 'per_page': per_page}, doseq=True)}"

    links = []
    if page > 1:
        links.append(f'<{link(min(page - 1, total_pages))}>; rel="prev"')
    if page < total_pages:
        links.append(f'<{link(page + 1)}>; rel="next"')
    links += [f'<{link(1)}>; rel="first"', f'<{link(total_pages)}>; rel="last"']
    headers = {
        "x-page": str(page),
        "x-per-page": str(per_page),
        "x-total": str(len(items)),
        "x-total-pages": str(total_pages),
        "x-next-page": str(page + 1) if page < total_pages else "",
        "x-prev-page": str(page - 1) if page > 1 else "",
        "Link": ", ".join(links),
    }
    return chunk, headers


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-gitlab/1"
    protocol_version = "HTTP/1.1"
    gitlab: GitLab  # set on the subclass made by make_server
    faults: Faults

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the JSONL request log is the record

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

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
        self._entry: Json = {
            "ts": rfc3339(now()),
            "method": method,
            "path": split.path,
            "query_keys": sorted(self._query),
            "private_token": self.headers.get("PRIVATE-TOKEN") is not None,
            "auth_scheme": (self.headers.get("Authorization") or " ").split(" ", 1)[0].lower() or None,
            "identity": None,
        }
        control = self.faults.control(method, split.path, self._json_body(quiet=True))
        if control is not None:
            status, body = control
            self._send(status, body, {})
            return
        fault = self.faults.take(method, split.path)
        if fault is not None and not fault.after:
            self._fault(fault)
            return
        try:
            status, body, headers = self._route(method, split.path)
        except GitLabError as err:
            status, body, headers = err.status, err.body, dict(err.headers)
        except Exception as err:  # keep serving; GitLab's shape for a 500
            status, body, headers = 500, {"message": "500 Internal Server Error"}, {}
            self._entry["exception"] = type(err).__name__
        if fault is not None:
            self._entry["real_status"] = status
            self._fault(fault)
            return
        self._entry["status"] = status
        self.gitlab.log(self._entry)
        self._send(status, body, headers, head=(method == "HEAD"))

    def _fault(self, fault: Fault) -> None:
        if fault.delay_s:
            time.sleep(fault.delay_s)
        self._entry.update(fault=fault.id, status=None if fault.drop else fault.status)
        self.gitlab.log(self._entry)
        if fault.drop:
            self.close_connection = True  # no answer at all: the connection just closes
            return
        body, headers = error_body(fault.status)
        if fault.body is not None:
            body, headers = fault.body, {k: v for k, v in headers.items() if k != "Content-Type"}
        self._send(fault.status, body, {**headers, **fault.headers})

    def _send(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        if body is None:
            payload = b""
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        self.send_response(status)
        if body is not None and "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)

    def _json_body(self, quiet: bool = False) -> Any:
        if not self._raw_body:
            return None
        try:
            return json.loads(self._raw_body)
        except ValueError:
            if quiet:
                return None
            raise message(400, "400 Bad request - the request body is not valid JSON") from None

    def _params(self) -> Json:
        """POST parameters: a JSON body, else form fields (``scopes[]`` as a list), else the query string."""
        body = self._json_body()
        if isinstance(body, dict):
            return body
        ctype = self.headers.get("Content-Type") or ""
        source = self._raw_body.decode() if "form" in ctype else ""
        fields = parse_qs(source, keep_blank_values=True) if source else self._query
        out: Json = {}
        for key, values in fields.items():
            if key.endswith("[]"):
                out[key[:-2]] = values
            else:
                out[key] = values[-1]
        if isinstance(out.get("access_level"), str) and out["access_level"].isdigit():
            out["access_level"] = int(out["access_level"])
        return out

    def _base_url(self, path: str) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}{path}"

    def _who(self, method: str, *, required: bool = True) -> Who | None:
        token = self.headers.get("PRIVATE-TOKEN")
        if token is None:
            scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        if not token:
            if required:
                raise unauthorized()
            return None
        who = self.gitlab.api_identity(token.strip())
        if who is None:
            self._entry["auth_failed"] = True
            raise unauthorized()
        self._entry["identity"] = who.label()
        self.gitlab.require_scope(who, method)
        return who

    # ---- routes

    def _route(self, method: str, path: str) -> tuple[int, Any, dict[str, str]]:
        path = path.rstrip("/") or "/"
        gl = self.gitlab
        if path == "/jwt/auth":
            if method != "GET":
                return 404, None, {}
            return self._realm()
        if path == "/-/readiness":
            return 200, {"status": "ok", "master_check": [{"status": "ok"}]}, {}
        if path == "/api/v4/user":
            if method != "GET":
                raise message(405, "405 Method Not Allowed")
            who = self._who(method)
            assert who is not None
            return 200, gl.user_view(gl.state.table("users")[str(who.user_id)]), {}
        m = _TOKENS.fullmatch(path)
        if m:
            plural, ident, collection, token_id, rotate = m.groups()
            kind = plural[:-1]
            who = self._who(method)
            assert who is not None
            with gl.state.lock:
                holder = gl.holder(kind, unquote(ident), who)
                if collection == "deploy_tokens":
                    return self._deploy_tokens(method, path, kind, holder, who, token_id, rotate)
                return self._access_tokens(method, path, kind, holder, who, token_id, rotate)
        m = _RESOURCE.fullmatch(path)
        if m:
            if method != "GET":
                raise message(405, "405 Method Not Allowed")
            kind = m.group(1)[:-1]
            who = self._who(method, required=False)
            with gl.state.lock:
                record = gl.holder(kind, unquote(m.group(2)), who)
                return 200, gl.project_view(record) if kind == "project" else gl.group_view(record), {}
        if path.startswith("/api/v4/"):
            raise message(404, "404 Not Found")
        return 404, {"error": "404 Not Found"}, {}

    def _deploy_tokens(
        self,
        method: str,
        path: str,
        kind: str,
        holder: Json,
        who: Who,
        token_id: str | None,
        rotate: str | None,
    ) -> tuple[int, Any, dict[str, str]]:
        gl = self.gitlab
        if rotate is not None:
            raise message(404, "404 Not Found")
        if token_id is None:
            if method == "POST":
                return 201, gl.create_deploy_token(kind, holder, who, self._params()), {}
            if method == "GET":
                active = (self._query.get("active") or [""])[-1].lower()
                if active not in ("", "true", "false"):
                    raise param_error("active is invalid")
                items = gl.deploy_tokens(kind, holder, who, active_only=active == "true")
                chunk, headers = paginate(items, self._query, self._base_url(path))
                return 200, chunk, headers
            raise message(405, "405 Method Not Allowed")
        if not token_id.isdigit():
            raise param_error("token_id is invalid")
        if method == "GET":
            return 200, gl.get_deploy_token(kind, holder, who, token_id), {}
        if method == "DELETE":
            gl.delete_deploy_token(kind, holder, who, token_id)
            return 204, None, {}
        raise message(405, "405 Method Not Allowed")

    def _access_tokens(
        self,
        method: str,
        path: str,
        kind: str,
        holder: Json,
        who: Who,
        token_id: str | None,
        rotate: str | None,
    ) -> tuple[int, Any, dict[str, str]]:
        gl = self.gitlab
        if token_id is None:
            if method == "POST":
                return 201, gl.create_access_token(kind, holder, who, self._params()), {}
            if method == "GET":
                items = gl.access_tokens(kind, holder, who, self._query)
                chunk, headers = paginate(items, self._query, self._base_url(path))
                return 200, chunk, headers
            raise message(405, "405 Method Not Allowed")
        if rotate is not None:
            if method != "POST":
                raise message(405, "405 Method Not Allowed")
            return 200, gl.rotate_access_token(kind, holder, who, token_id, self._params()), {}
        if method == "GET":
            return 200, gl.get_access_token(kind, holder, who, token_id), {}
        if method == "DELETE":
            gl.revoke_access_token(kind, holder, who, token_id)
            return 204, None, {}
        raise message(405, "405 Method Not Allowed")

    def _realm(self) -> tuple[int, Any, dict[str, str]]:
        gl = self.gitlab
        service = (self._query.get("service") or [""])[-1]
        if service != gl.config.service:
            return 404, None, {}  # JwtController: head :not_found for an unknown service
        auth = self.headers.get("Authorization")
        denied = {"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]}
        if auth is None:
            who = Who("anonymous")
        else:
            scheme, _, value = auth.partition(" ")
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            login, sep, password = decoded.partition(":")
            found = gl.registry_identity(login, password) if scheme.lower() == "basic" and sep else None
            if found is None:
                self._entry["auth_failed"] = True
                return 401, denied, {"WWW-Authenticate": 'Basic realm="GitLab"'}
            who = found
        self._entry["identity"] = who.label()
        requested = self._query.get("scope", [])
        with gl.state.lock:
            body, access = gl.registry_token(who, service, requested)
        self._entry["scopes_requested"] = [s for raw in requested for s in raw.split()]
        self._entry["access_granted"] = [f"{a['name']}:{','.join(a['actions'])}" for a in access]
        if who.kind == "anonymous" and not access:
            return 403, {"errors": [{"code": "DENIED", "message": "access forbidden"}]}, {}
        return 200, body, {}


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    handler = type("BoundHandler", (Handler,), {"gitlab": GitLab(config), "faults": Faults()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
