"""The GitLab fake's HTTP API: routes under ``/api/v4``, the ``/jwt/auth`` realm, offset pagination headers,
error bodies, and what its fault injection and request log do differently, on the plumbing all the fakes
share (``devstack/fakes/http_base.py``). Test double only; see ``devstack/fakes/gitlab/__init__.py`` for the
documented API it follows."""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from devstack.fakes.faults import Fault
from devstack.fakes.http_base import Answer, FakeHandler, bind

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


@dataclass(frozen=True)
class Tokens:
    """What a request under ``/api/v4/(projects|groups)/:id/(deploy|access)_tokens`` is about: the project or
    group (as the caller may see it), the caller, the token the path names, and whether it is ``/rotate``."""

    kind: str  # project or group
    holder: Json
    who: Who
    token_id: str | None
    rotate: bool


class Handler(FakeHandler):
    """GitLab's routes and error shapes on the shared plumbing (`devstack.fakes.http_base`)."""

    server_version = "fake-gitlab/1"
    methods = ("GET", "POST", "PUT", "DELETE", "HEAD")
    # an ``after`` fault's delay comes after the real work, whose status the log keeps (``real_status``)
    delay_first = False
    note_real_status = True
    gitlab: GitLab  # set on the subclass made by make_server

    def auth_fields(self) -> Json:
        return {
            "private_token": self.headers.get("PRIVATE-TOKEN") is not None,
            "auth_scheme": (self.headers.get("Authorization") or " ").split(" ", 1)[0].lower() or None,
        }

    def error_body(self, status: int, message: str | None) -> Any:
        return error_body(status)[0]

    def error_answer(self, err: Exception, path: str) -> Answer:
        if isinstance(err, GitLabError):
            return err.status, err.body, dict(err.headers)
        return super().error_answer(err, path)  # GitLab's shape for a 500

    def fault_reply(self, fault: Fault, path: str, after: bool) -> tuple[Any, dict[str, str]]:
        body, headers = error_body(fault.status)
        if fault.body is not None:
            body, headers = fault.body, {k: v for k, v in headers.items() if k != "Content-Type"}
        return body, {**headers, **fault.headers}

    def encode(self, status: int, body: Any, headers: dict[str, str]) -> tuple[bytes, str | None]:
        """A str is sent as it is (the rate limiter's text, with its own Content-Type)."""
        if body is None:
            return b"", None
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return payload, None if "Content-Type" in headers else self.json_type

    def bad_json(self) -> Exception:
        return message(400, "400 Bad request - the request body is not valid JSON")

    def _params(self) -> Json:
        """POST parameters: a JSON body, else form fields (``scopes[]`` as a list), else the query string."""
        body = self.json_body()
        if isinstance(body, dict):
            return body
        ctype = self.headers.get("Content-Type") or ""
        source = self.raw_body.decode() if "form" in ctype else ""
        fields = parse_qs(source, keep_blank_values=True) if source else self.query
        out: Json = {}
        for key, values in fields.items():
            if key.endswith("[]"):
                out[key[:-2]] = values
            else:
                out[key] = values[-1]
        if isinstance(out.get("access_level"), str) and out["access_level"].isdigit():
            out["access_level"] = int(out["access_level"])
        return out

    def _who(self, method: str, *, required: bool = True) -> Who | None:
        token = self.headers.get("PRIVATE-TOKEN")
        if token is None:
            token = self.bearer()
        if not token:
            if required:
                raise unauthorized()
            return None
        who = self.identified(self.gitlab.api_identity(token.strip()), unauthorized())
        self.gitlab.require_scope(who, method)
        return who

    # ---- routes

    def route(self, method: str, path: str) -> Answer:
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
                at = Tokens(kind, gl.holder(kind, unquote(ident), who), who, token_id, rotate is not None)
                if collection == "deploy_tokens":
                    return self._deploy_tokens(method, path, at)
                return self._access_tokens(method, path, at)
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

    def _deploy_tokens(self, method: str, path: str, at: Tokens) -> Answer:
        gl = self.gitlab
        if at.rotate:
            raise message(404, "404 Not Found")
        if at.token_id is None:
            if method == "POST":
                return 201, gl.create_deploy_token(at.kind, at.holder, at.who, self._params()), {}
            if method == "GET":
                active = (self.last("active") or "").lower()
                if active not in ("", "true", "false"):
                    raise param_error("active is invalid")
                return self._page(
                    gl.deploy_tokens(at.kind, at.holder, at.who, active_only=active == "true"), path
                )
            raise message(405, "405 Method Not Allowed")
        if not at.token_id.isdigit():
            raise param_error("token_id is invalid")
        return self._one_token(method, at, gl.get_deploy_token, gl.delete_deploy_token)

    def _access_tokens(self, method: str, path: str, at: Tokens) -> Answer:
        gl = self.gitlab
        if at.token_id is None:
            if method == "POST":
                return 201, gl.create_access_token(at.kind, at.holder, at.who, self._params()), {}
            if method == "GET":
                return self._page(gl.access_tokens(at.kind, at.holder, at.who, self.query), path)
            raise message(405, "405 Method Not Allowed")
        if at.rotate:
            if method != "POST":
                raise message(405, "405 Method Not Allowed")
            return 200, gl.rotate_access_token(at.kind, at.holder, at.who, at.token_id, self._params()), {}
        return self._one_token(method, at, gl.get_access_token, gl.revoke_access_token)

    @staticmethod
    def _one_token(method: str, at: Tokens, get: Callable[..., Json], delete: Callable[..., None]) -> Answer:
        """GET (the token) or DELETE (204) the token the path names."""
        if method == "GET":
            return 200, get(at.kind, at.holder, at.who, at.token_id), {}
        if method == "DELETE":
            delete(at.kind, at.holder, at.who, at.token_id)
            return 204, None, {}
        raise message(405, "405 Method Not Allowed")

    def _page(self, items: list[Json], path: str) -> Answer:
        chunk, headers = paginate(items, self.query, self.base_url(path))
        return 200, chunk, headers

    def _realm(self) -> Answer:
        gl = self.gitlab
        service = self.last("service", "")
        if service != gl.config.service:
            return 404, None, {}  # JwtController: head :not_found for an unknown service
        who = self.realm_identity(gl.registry_identity, Who("anonymous"))
        if who is None:
            denied = {"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]}
            return 401, denied, {"WWW-Authenticate": 'Basic realm="GitLab"'}
        requested = self.query.get("scope", [])
        with gl.state.lock:
            body, access = gl.registry_token(who, service, requested)
        self.note_realm(requested, access)
        if who.kind == "anonymous" and not access:
            return 403, {"errors": [{"code": "DENIED", "message": "access forbidden"}]}, {}
        return 200, body, {}


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    gitlab = GitLab(config)
    return bind(Handler, gitlab, host, port, gitlab=gitlab)
