"""Real HTTP servers on loopback for the registry client tests.

`RecordingServer` logs every request it receives (method, path, query, headers, body) and answers
with whatever its `handler` returns. `FakeTokenRegistry` is a small Docker Registry v2 with Basic or
Bearer (token) auth built on it, enough to exercise `RegistryClient.check_pull` end to end.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def text(self) -> str:
        """Everything the client sent, as one string (for "the secret never arrived" assertions)."""
        lines = [f"{self.method} {self.raw_target}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return "\n".join(lines) + "\n" + self.body.decode("latin-1")


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""


Handler = Callable[[LoggedRequest], Reply]


def _not_found(_: LoggedRequest) -> Reply:
    return Reply(404)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = LoggedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            raw_target=self.path,
            headers=tuple(self.headers.items()),
            body=body,
        )
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(request)
        reply = owner.handler(request)
        self.send_response(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: RecordingServer


class RecordingServer:
    """An HTTP server on `host` (ephemeral port) in a thread; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", handler: Handler = _not_found) -> None:
        self.host = host
        self.handler = handler
        self.requests: list[LoggedRequest] = []
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RecordingServer:
        server = _Server((self.host, 0), _RequestHandler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]


@contextmanager
def running(*servers: RecordingServer) -> Iterator[tuple[RecordingServer, ...]]:
    """Start servers and always stop them, whatever the test does."""
    started: list[RecordingServer] = []
    try:
        for server in servers:
            started.append(server.start())
        yield servers
    finally:
        for server in started:
            server.stop()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def sequence(*replies: Reply) -> Handler:
    """A handler answering the given replies in order, then repeating the last one."""
    queue = list(replies)
    lock = threading.Lock()

    def handle(_: LoggedRequest) -> Reply:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return handle


@dataclass
class FakeTokenRegistry:
    """A Docker Registry v2 with Basic or Bearer auth, serving manifest HEADs.

    users: username -> password. grants: username -> repositories it may pull. manifests: the
    (repository, reference) pairs that exist. With mode "bearer" the token endpoint is `token_path`
    on `realm` (default: this same server) and issues opaque tokens for the granted subset of the
    requested scopes, silently narrowing the rest as real token servers do.
    """

    server: RecordingServer
    mode: str = "bearer"
    users: dict[str, str] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    manifests: set[tuple[str, str]] = field(default_factory=set)
    realm: str | None = None
    service: str = "fake-registry"
    token_path: str = "/token"
    token_field: str = "token"
    token_body: Callable[[str], bytes] | None = None
    anonymous_repositories: set[str] = field(default_factory=set)
    manifest_override: Handler | None = None
    extra_headers: Sequence[tuple[str, str]] = ()
    issued: dict[str, set[str]] = field(default_factory=dict)

    def install(self) -> FakeTokenRegistry:
        self.server.handler = self.handle
        return self

    @property
    def realm_url(self) -> str:
        return self.realm or f"{self.server.url}{self.token_path}"

    def _challenge(self, scope: str | None = None, error: str | None = None) -> tuple[str, str]:
        if self.mode == "basic":
            return ("WWW-Authenticate", 'Basic realm="fake-registry"')
        value = f'Bearer realm="{self.realm_url}",service="{self.service}"'
        if scope:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return ("WWW-Authenticate", value)

    def _basic_user(self, request: LoggedRequest) -> str | None:
        header = request.header("Authorization") or ""
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password else None

    def handle(self, request: LoggedRequest) -> Reply:
        if request.path == self.token_path and self.mode == "bearer":
            return self._token(request)
        if request.path == "/v2/":
            if self.mode == "basic" and self._basic_user(request) is not None:
                return Reply(200)
            return Reply(401, [self._challenge()], b'{"errors":[{"code":"UNAUTHORIZED"}]}')
        if request.path.startswith("/v2/") and "/manifests/" in request.path:
            if self.manifest_override is not None:
                return self.manifest_override(request)
            return self._manifest(request)
        return Reply(404)

    def _token(self, request: LoggedRequest) -> Reply:
        auth = request.header("Authorization")
        user = self._basic_user(request)
        if auth is not None and user is None:
            return Reply(401, [], b'{"details":"incorrect username or password"}')
        allowed = self.grants.get(user, set()) if user else self.anonymous_repositories
        granted: set[str] = set()
        for scope in request.query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and "pull" in actions.split(",") and name in allowed:
                granted.add(name)
        token = "tok-" + secrets.token_hex(8)
        self.issued[token] = granted
        body = (
            self.token_body(token)
            if self.token_body
            else json.dumps({self.token_field: token, "expires_in": 300}).encode()
        )
        return Reply(200, [("Content-Type", "application/json")], body)

    def _manifest(self, request: LoggedRequest) -> Reply:
        repository, _, reference = request.path[len("/v2/") :].partition("/manifests/")
        scope = f"repository:{repository}:pull"
        headers = list(self.extra_headers)
        if repository not in self.anonymous_repositories:
            auth = request.header("Authorization") or ""
            if self.mode == "basic":
                user = self._basic_user(request)
                if user is None:
                    return Reply(401, [self._challenge(), *headers])
                if repository not in self.grants.get(user, set()):
                    return Reply(403, headers)
            else:
                if not auth.startswith("Bearer ") or auth[7:] not in self.issued:
                    return Reply(401, [self._challenge(scope, "invalid_token" if auth else None), *headers])
                if repository not in self.issued[auth[7:]]:
                    return Reply(401, [self._challenge(scope, "insufficient_scope"), *headers])
        if (repository, reference) not in self.manifests:
            return Reply(404, headers)
        return Reply(
            200,
            [
                ("Content-Type", "application/vnd.oci.image.index.v1+json"),
                ("Docker-Content-Digest", "sha256:" + "0" * 64),
                *headers,
            ],
        )


def secret_forms(username: str, password: str) -> Iterable[str]:
    """Every form in which the credential could leak on the wire."""
    yield password
    yield base64.b64encode(f"{username}:{password}".encode()).decode()
    yield basic_header(username, password)
