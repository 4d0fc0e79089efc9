"""The HTTP plumbing every vendor fake shares: a request handler base class that dispatches each request,
reads its body before anything can fail, applies injected faults (``devstack/fakes/faults.py``), writes the
JSONL request log and sends bodies with a Content-Length. Test double only.

A vendor's handler subclasses `FakeHandler` and supplies:

- ``route(method, path) -> (status, body, headers)``: its endpoints. A body is JSON, a ``str`` (text, where
  the fake sets ``text_type``) or None (no body);
- ``error_body(status, message)``: its vendor's documented error shape (``message`` None: the default one for
  ``status``, which an injected fault without a body gets);
- ``error_answer(err, path)``: its own exception as an answer (the base answers any other with a 500 in
  ``error_body``'s shape and notes the exception's type in the log entry);
- ``bad_json()``: the error `json_body` raises for a body that is not JSON;
- anything else vendor-specific (its credentials, pagination), with the helpers below for the common parts
  (Bearer and Basic credentials, the identity and realm scopes in the log, JSON bodies, query parameters).

`bind` makes the server: the handler bound to the fake's logic (a `FakeBackend`, which keeps the request
log) and its faults.

Where the fakes were written to behave differently (which fields the request log gets, when an ``after``
fault's delay runs, how a drop closes the connection), class attributes and small hooks keep each one as it
is.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Protocol, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from devstack.fakes.faults import Fault, Faults, drop
from devstack.fakes.registry_tokens import now, rfc3339
from devstack.fakes.state_base import FakeBackend

Json = dict[str, Any]
Answer = tuple[int, Any, dict[str, str]]  # status, body (JSON, str, or None for none), headers
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


class Labelled(Protocol):
    def label(self) -> str: ...


Who = TypeVar("Who", bound=Labelled)


class FakeHandler(BaseHTTPRequestHandler):
    """One request to a vendor fake; see the module docstring for what a subclass supplies."""

    protocol_version = "HTTP/1.1"
    methods: ClassVar[tuple[str, ...]] = ALL_METHODS  # others: 501, as BaseHTTPRequestHandler answers
    json_type: ClassVar[str] = "application/json"  # Content-Type of a JSON body
    text_type: ClassVar[str | None] = None  # Content-Type of a str body; None: a str is sent as JSON
    # Fault semantics that differ between the fakes:
    log_control: ClassVar[bool] = False  # control requests (/_fake/faults) are logged too
    note_fault: ClassVar[bool] = True  # a faulted request's log entry has ``fault`` (its id)
    note_real_status: ClassVar[bool] = False  # ... and, for an ``after`` fault, ``real_status``
    delay_first: ClassVar[bool] = True  # an ``after`` fault sleeps before the real work (else after it)
    shutdown_on_drop: ClassVar[bool] = False  # a drop shuts the socket down at once (else it just closes)
    fault_heeds_head: ClassVar[bool] = False  # an injected answer to HEAD has no body
    backend: FakeBackend  # set on the subclass made by `bind`
    faults: Faults

    # the request, set by _dispatch
    query: dict[str, list[str]]
    raw_body: bytes
    entry: Json
    req_path: str

    # quiet default stderr access log: the JSONL log is the record
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        self._dispatch(self.command)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    # ---- what a vendor supplies

    def route(self, method: str, path: str) -> Answer:
        raise NotImplementedError

    def error_body(self, status: int, message: str | None) -> Any:
        raise NotImplementedError

    def error_answer(self, err: Exception, path: str) -> Answer:
        """The answer for an exception ``route`` raised: here, any is a 500 in the vendor's error shape."""
        self.entry["exception"] = type(err).__name__
        return 500, self.error_body(500, None), {}

    def bad_json(self) -> Exception:
        """What `json_body` raises for a body that is not JSON (the vendor's 400)."""
        return ValueError("the request body is not valid JSON")

    def normalize_path(self, path: str) -> str:
        """The path as the fake routes, logs and matches faults on it."""
        return path

    def content_length(self) -> int:
        return int(self.headers.get("Content-Length") or 0)

    def auth_fields(self) -> Json:
        """What the request log notes about the request's credentials (never a secret)."""
        auth = self.headers.get("Authorization")
        return {
            "authorization": auth is not None,
            "auth_scheme": auth.split(" ", 1)[0].lower() if auth else None,
        }

    def fault_reply(self, fault: Fault, path: str, after: bool) -> tuple[Any, dict[str, str]]:
        """The body and headers of an injected answer: the fault's, else the vendor's error body."""
        body = fault.body if fault.body is not None else self.error_body(fault.status, None)
        return body, dict(fault.headers)

    def drop_entry(self) -> Json | None:
        """What the log entry of a dropped answer gets; None: a drop is not logged."""
        return {"status": None}

    def extra_headers(self) -> dict[str, str]:
        """Headers every answer gets (before the route's own)."""
        return {}

    def encode(self, status: int, body: Any, headers: dict[str, str]) -> tuple[bytes, str | None]:
        """The payload and its Content-Type (None: no Content-Type header)."""
        if body is None:
            return b"", None
        if isinstance(body, str) and self.text_type is not None:
            return body.encode(), self.text_type
        return json.dumps(body).encode(), self.json_type

    # ---- plumbing

    def _dispatch(self, method: str) -> None:
        if method not in self.methods:
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({method!r})")
            return
        split = urlsplit(self.path)
        path = self.req_path = self.normalize_path(split.path)
        self.query = parse_qs(split.query, keep_blank_values=True)
        # read the body before anything can fail, so a kept-alive connection stays in sync
        length = self.content_length()
        self.raw_body = self.rfile.read(length) if length > 0 else b""
        self.entry = {
            "ts": rfc3339(now()),
            "method": method,
            "path": path,
            "query_keys": sorted(self.query),
            **self.auth_fields(),
            "identity": None,
        }
        control = self.faults.control(method, path, self.json_or_none())
        if control is not None:
            if self.log_control:
                self.reply(control[0], control[1], {})
            else:
                self.send(control[0], control[1], {})
            return
        fault = self.faults.take(method, path)
        if fault is not None:
            if self.note_fault:
                self.entry["fault"] = fault.id
            if self.delay_first and fault.delay_s:
                time.sleep(fault.delay_s)
            if not fault.after:
                self._answer_fault(fault, method, path, None)
                return
        status, body, headers = self.answer(method, path)
        if fault is not None:  # after: the real work is done, then its answer is lost or replaced
            self._answer_fault(fault, method, path, status)
            return
        self.reply(status, body, headers, head=method == "HEAD")

    def answer(self, method: str, path: str) -> Answer:
        try:
            return self.route(method, path)
        except Exception as err:  # keep serving: the vendor's error, or a 500 in its error shape
            return self.error_answer(err, path)

    def _answer_fault(self, fault: Fault, method: str, path: str, real_status: int | None) -> None:
        if fault.delay_s and not self.delay_first:
            time.sleep(fault.delay_s)
        if real_status is not None and self.note_real_status:
            self.entry["real_status"] = real_status
        if fault.drop:
            noted = self.drop_entry()
            if noted is not None:
                self.entry.update(noted)
                self.backend.log(self.entry)
            if self.shutdown_on_drop:
                drop(self)
            else:
                self.close_connection = True  # no answer at all: the connection just closes
            return
        body, headers = self.fault_reply(fault, path, after=real_status is not None)
        self.reply(fault.status, body, headers, head=self.fault_heeds_head and method == "HEAD")

    def reply(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        """Log the request with its status, then send the answer."""
        self.entry["status"] = status
        self.backend.log(self.entry)
        self.send(status, body, headers, head=head)

    def send(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        payload, kind = self.encode(status, body, headers)
        self.send_response(status)
        if kind is not None:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in self.extra_headers().items():
            self.send_header(k, v)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)

    # ---- helpers for the routes

    def json_or_none(self) -> Any:
        """The body as JSON; None when there is none or it is not JSON."""
        try:
            return json.loads(self.raw_body) if self.raw_body else None
        except ValueError:
            return None

    def json_body(self) -> Any:
        """The body as JSON, None when there is none; `bad_json()` is raised for one that is not JSON."""
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            raise self.bad_json() from None

    def last(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter, ``default`` when it is absent."""
        values = self.query.get(name)
        return values[-1] if values else default

    def base_url(self, path: str) -> str:
        address = cast(tuple[str, int], self.server.server_address)
        host = self.headers.get("Host") or f"{address[0]}:{address[1]}"
        return f"http://{host}{path}"

    def bearer(self, *schemes: str) -> str | None:
        """The token of ``Authorization: <scheme> <token>`` for one of ``schemes`` (default: Bearer); None
        for another scheme or an empty token."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in (schemes or ("bearer",)):
            return None
        return token.strip() or None

    def basic_credentials(self) -> tuple[str, str] | None:
        """(user, secret) of ``Authorization: Basic``; None for another scheme or an undecodable value."""
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, secret) if sep else None

    def note_identity(self, who: Labelled | None) -> None:
        """Note who the request is in the log: ``identity``, or ``auth_failed`` for None (a credential that
        does not authenticate)."""
        if who is None:
            self.entry["auth_failed"] = True
        else:
            self.entry["identity"] = who.label()

    def identified(self, who: Who | None, refused: Exception) -> Who:
        """``who``, noted in the log (`note_identity`); ``refused`` is raised when it is None."""
        self.note_identity(who)
        if who is None:
            raise refused
        return who

    def bearer_identity(
        self, lookup: Callable[[str], Who | None], missing: Exception, refused: Exception
    ) -> Who:
        """The identity of ``Authorization: Bearer <token>``, ``lookup(token)`` (`identified`: ``refused``
        when None); ``missing`` is raised without such a header."""
        token = self.bearer()
        if token is None:
            raise missing
        return self.identified(lookup(token), refused)

    def realm_identity(self, check: Callable[[str, str], Who | None], anonymous: Who) -> Who | None:
        """Who a token realm request is, noted in the log (`note_identity`): ``anonymous`` without an
        Authorization header, else ``check(user, secret)`` of its HTTP Basic credentials (None when they do
        not authenticate)."""
        if self.headers.get("Authorization") is None:
            who: Who | None = anonymous
        else:
            credentials = self.basic_credentials()
            who = check(*credentials) if credentials else None
        self.note_identity(who)
        return who

    def note_realm(self, requested: list[str], access: list[Json] | None = None) -> None:
        """Log the scopes a realm request asked for and, once known, the access granted."""
        self.entry["scopes_requested"] = [s for raw in requested for s in raw.split()]
        if access is not None:
            self.entry["access_granted"] = [f"{a['name']}:{','.join(a['actions'])}" for a in access]


def bind(
    handler: type[FakeHandler],
    backend: FakeBackend,
    host: str,
    port: int,
    *,
    faults: Faults | None = None,
    **attrs: Any,
) -> ThreadingHTTPServer:
    """Build (not start) a fake's server: ``handler`` bound to its logic (``backend``, and ``attrs`` under
    the vendor's own names) and its pending faults; ``port=0`` picks a free port (see
    ``server.server_address``)."""
    bound = type(
        "BoundHandler",
        (handler,),
        {"backend": backend, "faults": Faults() if faults is None else faults, **attrs},
    )
    server = ThreadingHTTPServer((host, port), bound)
    server.daemon_threads = True
    return server
