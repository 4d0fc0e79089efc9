"""regcred's outbound transport (`regcred.http.transport.Transport`) against real servers on loopback.

The trust boundary, one rule per section: where requests may go (https; plain http only to a configured
loopback literal; every resolved address checked, the connection pinned to a checked one), redirects, size
bounds, the per-operation deadline, retries, error texts and TLS. Servers listen on 127.0.0.1 and 127.0.0.2
only; every other connection is blocked at the socket layer (pytest-socket), so "refused before any
connection" is checked, not assumed. Name resolution goes through the transport's ``resolver`` seam.
"""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pytest_socket import SocketConnectBlockedError

from regcred.errors import (
    DeadlineExceeded,
    DestinationRefused,
    OutcomeUnknown,
    ResponseTooLarge,
    TransportError,
    Unreachable,
)
from regcred.hosts import Origin, origin_of
from regcred.http import policy
from regcred.http.deadline import Deadline
from regcred.http.transport import Response, Transport, retry_policy
from tests.network import ALLOWED_HOSTS
from tests.registry_servers import (
    LoggedRequest,
    RecordingServer,
    Reply,
    _RequestHandler,
    _Server,
    basic_header,
    closed_port,
    sequence,
)

TLS_NAME = "registry.test"
REMOTE_NAME = "remote.test"  # in the certificate, never configured as local

pytestmark = [pytest.mark.allow_hosts(ALLOWED_HOSTS), pytest.mark.usefixtures("loopback_only")]


# --- servers ----------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer("127.0.0.1") as s:
        yield s


@pytest.fixture
def other() -> Iterator[RecordingServer]:
    """A second loopback host: another origin."""
    with RecordingServer("127.0.0.2") as s:
        yield s


def local(s: RecordingServer | RawServer) -> Origin:
    return Origin("http", s.host, s.port)


@dataclass(frozen=True)
class RawRequest:
    line: str
    headers: dict[str, str]
    body: bytes

    @property
    def method(self) -> str:
        return self.line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.line.split(" ")[1]


# Writes the answer to one request on the connection; returns whether to keep the connection open.
Script = Callable[[socket.socket, RawRequest], bool]


class RawServer:
    """A TCP server on loopback that answers with raw bytes (what http.server cannot send: drips, bombs,
    huge headers, undecodable values, keep-alive connections, connections dropped mid-request)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.script: Script = lambda conn, request: False
        self.requests: list[RawRequest] = []
        self.connections = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._sock = socket.socket()

    def __enter__(self) -> RawServer:
        self._sock.bind((self.host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buffer = b""
        try:
            while not self.stopping.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for header in header_lines:
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                request = RawRequest(line, headers, buffer[:length])
                buffer = buffer[length:]
                with self._lock:
                    self.requests.append(request)
                if not self.script(conn, request):
                    return
        except OSError:
            pass
        finally:
            conn.close()


def answer(
    status: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"", *, keep: bool = False
) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    if not keep:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- TLS material -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PKI:
    ca: Path  # the CA bundle the transport trusts
    other_ca: Path  # a CA nobody trusts
    cert: Path
    key: Path
    untrusted_cert: Path
    untrusted_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, names: Sequence[str]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write(path: Path, *items: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
    pem = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            pem += item.public_bytes(serialization.Encoding.PEM)
        else:
            pem += item.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
    path.write_bytes(pem)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    root = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("regcred test CA")
    other_key, other_cert = _ca("nobody's CA")
    key, cert = _leaf(ca_key, ca_cert, [TLS_NAME, REMOTE_NAME])
    untrusted_key, untrusted_cert = _leaf(other_key, other_cert, [TLS_NAME])
    return PKI(
        ca=_write(root / "ca.pem", ca_cert),
        other_ca=_write(root / "other-ca.pem", other_cert),
        cert=_write(root / "cert.pem", cert),
        key=_write(root / "key.pem", key),
        untrusted_cert=_write(root / "untrusted-cert.pem", untrusted_cert),
        untrusted_key=_write(root / "untrusted-key.pem", untrusted_key),
    )


class _TLSHTTPServer(_Server):
    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        owner = self.owner
        assert isinstance(owner, TLSServer)
        with owner.lock:
            owner.connections += 1
        sock.settimeout(5)
        # A failed handshake raises ssl.SSLError, an OSError: the serve loop drops that connection.
        tls = owner.context.wrap_socket(sock, server_side=True)
        tls.settimeout(None)
        return tls, address


class TLSServer(RecordingServer):
    """RecordingServer over TLS on 127.0.0.1, recording connections and the SNI names clients sent."""

    def __init__(
        self,
        cert: Path,
        key: Path,
        handler: Callable[[LoggedRequest], Reply] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, handler or (lambda r: Reply(200, [], b"tls ok")))
        self.connections = 0
        self.server_names: list[str | None] = []
        self._bind_port = port
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = self._sni
        self.context = context

    def _sni(self, _sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    def start(self) -> TLSServer:
        server = _TLSHTTPServer((self.host, self._bind_port), _RequestHandler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def __enter__(self) -> TLSServer:
        return self.start()

    def https(self, path: str = "/", host: str = TLS_NAME) -> str:
        return f"https://{host}:{self.port}{path}"

    def origin(self, host: str = TLS_NAME) -> Origin:
        return Origin("https", host, self.port)


@contextlib.contextmanager
def same_port_pair(pki: PKI) -> Iterator[tuple[TLSServer, TLSServer]]:
    """TLS servers on 127.0.0.1 and 127.0.0.2 with the same port (answering "first" and "second")."""
    for _ in range(10):
        first = TLSServer(pki.cert, pki.key, lambda r: Reply(200, [], b"first")).start()
        second = TLSServer(
            pki.cert, pki.key, lambda r: Reply(200, [], b"second"), host="127.0.0.2", port=first.port
        )
        try:
            second.start()
        except OSError:  # that port is taken on 127.0.0.2: try another
            first.stop()
            continue
        try:
            yield first, second
        finally:
            second.stop()
            first.stop()
        return
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture
def tls_server(pki: PKI) -> Iterator[TLSServer]:
    with TLSServer(pki.cert, pki.key) as s:
        yield s


@dataclass
class FakeResolver:
    """The transport's resolver seam: answers in turn (the last one repeats), every call recorded."""

    answers: list[list[str]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        self.calls.append((host, port))
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        out: list[tuple[int, tuple[Any, ...]]] = []
        for address in answer:
            if ipaddress.ip_address(address.split("%")[0]).version == 6:
                out.append((socket.AF_INET6, (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, (address, port)))
        return out


def resolving(*answers: list[str]) -> FakeResolver:
    return FakeResolver(list(answers))


# --- transports ---------------------------------------------------------------------------------------


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def transport(waits: list[float]) -> Iterator[Callable[..., Transport]]:
    """Makes transports (waits recorded instead of slept unless told otherwise); closes them all."""
    made: list[Transport] = []

    def make(*local_origins: Origin, **options: Any) -> Transport:
        options.setdefault("timeout", (1.0, 2.0))
        options.setdefault("sleep", waits.append)
        made.append(Transport(local_origins=local_origins, **options))
        return made[-1]

    yield make
    for t in made:
        t.close()


def soon(seconds: float = 10.0) -> Deadline:
    return Deadline(seconds)


# ======================================================================================================
# Where: https only; plain http only to a configured loopback IP literal
# ======================================================================================================


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_the_transports_own_connections_really_are_blocked_off_loopback(
    transport: Callable[..., Transport],
) -> None:
    # The guard that makes "refused before any connection" an observation: an allowed public address the
    # transport really connects to is stopped by pytest-socket, not reached.
    resolver = resolving(["93.184.216.34"])
    with pytest.raises(SocketConnectBlockedError):
        transport(resolver=resolver).request("GET", "https://registry.example/v2/", deadline=soon())
    assert resolver.calls == [("registry.example", 443)]


def test_plain_http_only_to_a_configured_loopback_literal(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = lambda r: Reply(200, [], b"hello")
    with pytest.raises(DestinationRefused, match="plain http"):
        transport().request("GET", f"{server.url}/v2/", deadline=soon())
    with pytest.raises(DestinationRefused, match="plain http"):
        # Same host, another port: another origin, not configured.
        transport(Origin("http", server.host, server.port + 1)).request(
            "GET", f"{server.url}/v2/", deadline=soon()
        )
    assert server.requests == []
    reply = transport(local(server)).request("GET", f"{server.url}/v2/", deadline=soon())
    assert (reply.status, reply.body, reply.origin) == (200, b"hello", local(server))
    assert server.paths() == ["/v2/"]


def test_plain_http_to_localhost_is_refused_even_when_configured(
    server: RecordingServer, transport: Callable[..., Transport], lookups: list[str]
) -> None:
    configured = Origin("http", "localhost", server.port)
    with pytest.raises(DestinationRefused, match="plain http"):
        transport(configured).request("GET", f"http://localhost:{server.port}/v2/", deadline=soon())
    assert server.requests == [] and lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://169.254.170.2/v2/credentials/x",
        "https://[::ffff:169.254.169.254]/latest/meta-data/",
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "https://[2002:a9fe:a9fe::]/latest/meta-data/",
        "https://2852039166/latest/meta-data/",
        "https://0xa9fea9fe/latest/meta-data/",
        "https://0251.0376.0251.0376/latest/meta-data/",
        "https://169.254.43518/latest/meta-data/",
        "https://169.254.1.1/",
        "https://[fe80::1]/",
        "https://0.0.0.0:443/",
        "https://[::]:443/",
        "https://0.1.2.3/",
        "https://224.0.0.1/",
        "https://[ff02::1]/",
    ],
)
def test_forbidden_literals_are_refused_before_resolution_or_connection(
    url: str, transport: Callable[..., Transport], lookups: list[str]
) -> None:
    resolver = resolving(["127.0.0.1"])
    # Even configured as local destinations, none of these is reachable.
    origin = origin_of(url)
    assert origin is not None
    with pytest.raises(DestinationRefused, match="refusing"):
        transport(origin, resolver=resolver).request("GET", url, deadline=soon())
    assert resolver.calls == [] and lookups == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"])
def test_numeric_spellings_of_loopback_are_refused_too(
    host: str, server: RecordingServer, transport: Callable[..., Transport], lookups: list[str]
) -> None:
    resolver = resolving(["127.0.0.1"])
    url = f"http://{host}:{server.port}/v2/"
    with pytest.raises(DestinationRefused, match="non-canonical spelling"):
        transport(Origin("http", host, server.port), resolver=resolver).request("GET", url, deadline=soon())
    assert server.requests == [] and resolver.calls == [] and lookups == []


def test_https_loopback_literal_is_refused_unless_configured(
    tls_server: TLSServer, transport: Callable[..., Transport]
) -> None:
    with pytest.raises(DestinationRefused, match="loopback"):
        transport().request("GET", f"https://127.0.0.1:{tls_server.port}/v2/", deadline=soon())
    assert tls_server.connections == 0


# ======================================================================================================
# Which addresses: checked after resolution, every one of them; the connection pinned to a checked one
# ======================================================================================================


def test_a_name_resolving_to_loopback_is_refused_when_not_configured_local(
    tls_server: TLSServer, transport: Callable[..., Transport], pki: PKI
) -> None:
    resolver = resolving(["127.0.0.1"])
    with pytest.raises(DestinationRefused, match="loopback") as err:
        transport(resolver=resolver, ca_bundle=str(pki.ca)).request(
            "GET", tls_server.https("/v2/"), deadline=soon()
        )
    assert TLS_NAME in str(err.value)
    assert resolver.calls == [(TLS_NAME, tls_server.port)]
    assert tls_server.connections == 0


@pytest.mark.parametrize(
    "forbidden",
    [
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "169.254.7.7",
        "fe80::1%1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "10.1.2.3",  # not loopback: a local destination must resolve to loopback only
    ],
)
@pytest.mark.parametrize("forbidden_first", [False, True])
def test_every_address_a_name_resolves_to_is_checked(
    forbidden: str,
    forbidden_first: bool,
    tls_server: TLSServer,
    transport: Callable[..., Transport],
    pki: PKI,
) -> None:
    addresses = [forbidden, "127.0.0.1"] if forbidden_first else ["127.0.0.1", forbidden]
    resolver = resolving(addresses)
    t = transport(tls_server.origin(), resolver=resolver, ca_bundle=str(pki.ca))
    with pytest.raises(DestinationRefused, match=f"refusing {TLS_NAME}"):
        t.request("GET", tls_server.https("/v2/"), deadline=soon())
    assert resolver.calls == [(TLS_NAME, tls_server.port)]
    assert tls_server.connections == 0  # one bad answer refuses the name: not even the good one is tried


def test_remote_name_resolving_to_a_forbidden_address_among_public_ones_is_refused(
    transport: Callable[..., Transport], lookups: list[str]
) -> None:
    resolver = resolving(["93.184.216.34", "2606:2800:220:1::", "169.254.169.254"])
    with pytest.raises(DestinationRefused, match="metadata"):
        transport(resolver=resolver).request("GET", "https://registry.example/v2/", deadline=soon())
    resolver = resolving(["93.184.216.34", "127.0.0.1"])
    with pytest.raises(DestinationRefused, match="loopback"):
        transport(resolver=resolver).request("GET", "https://registry.example/v2/", deadline=soon())
    assert lookups == []


def test_the_connection_goes_to_the_checked_address_without_resolving_again(
    tls_server: TLSServer, transport: Callable[..., Transport], pki: PKI, lookups: list[str]
) -> None:
    # A rebinding name: the first answer is good, every later one points at the metadata endpoint.
    resolver = resolving(["127.0.0.1"], ["169.254.169.254"])
    t = transport(tls_server.origin(), resolver=resolver, ca_bundle=str(pki.ca))

    reply = t.request("GET", tls_server.https("/v2/"), deadline=soon())

    assert (reply.status, reply.body) == (200, b"tls ok")
    assert resolver.calls == [(TLS_NAME, tls_server.port)]  # once for the one connection
    assert lookups == []  # nothing resolved the name a second time behind the seam's back
    assert tls_server.connections == 1 and tls_server.paths() == ["/v2/"]
    assert tls_server.server_names == [TLS_NAME]  # TLS still speaks to the name, on the pinned address

    # The server closed that connection (HTTP/1.0): the next one resolves again, and is refused.
    with pytest.raises(DestinationRefused, match="metadata"):
        t.request("GET", tls_server.https("/v2/again"), deadline=soon())
    assert len(resolver.calls) == 2
    assert tls_server.connections == 1 and tls_server.paths() == ["/v2/"]


def test_a_rebinding_name_reaches_only_the_address_that_was_checked(
    pki: PKI, transport: Callable[..., Transport]
) -> None:
    # Two servers with the same certificate, on two loopback addresses and the same port: the resolver's
    # second answer differs from its first, and nothing may connect to it.
    with same_port_pair(pki) as (first, second):
        resolver = resolving(["127.0.0.1"], ["127.0.0.2"])
        t = transport(first.origin(), resolver=resolver, ca_bundle=str(pki.ca))
        reply = t.request("GET", first.https("/v2/"), deadline=soon())
        assert reply.body == b"first"
        assert resolver.calls == [(TLS_NAME, first.port)]
        assert first.connections == 1 and second.connections == 0
        # The next connection follows the new answer, which is checked in its turn (still loopback).
        assert t.request("GET", first.https("/v2/"), deadline=soon()).body == b"second"
        assert len(resolver.calls) == 2 and second.connections == 1


def test_resolution_failures_are_unreachable(
    tls_server: TLSServer, transport: Callable[..., Transport], pki: PKI
) -> None:
    def failing(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    for resolver in (failing, resolving([])):
        t = transport(tls_server.origin(), resolver=resolver, ca_bundle=str(pki.ca), retry=retry_policy(2))
        with pytest.raises(Unreachable) as err:
            t.request("GET", tls_server.https("/v2/"), deadline=soon())
        assert not isinstance(err.value, DestinationRefused)
        assert "after 2 attempt(s)" in str(err.value)
    assert tls_server.connections == 0


# ======================================================================================================
# TLS: the pinned address still gets SNI and certificate verification for the name
# ======================================================================================================


def test_tls_verifies_the_certificate_for_the_name_on_the_pinned_address(
    tls_server: TLSServer, transport: Callable[..., Transport], pki: PKI
) -> None:
    resolver = resolving(["127.0.0.1"])
    t = transport(tls_server.origin(), resolver=resolver, ca_bundle=str(pki.ca))
    tls_server.handler = lambda r: Reply(200, [("Content-Type", "application/json")], b'{"ok": true}')
    reply = t.request("GET", tls_server.https("/v2/"), deadline=soon())
    assert reply.status == 200 and reply.json() == {"ok": True}
    assert reply.url == tls_server.https("/v2/")
    assert tls_server.server_names == [TLS_NAME]


def test_tls_name_not_in_the_certificate_is_refused(
    tls_server: TLSServer, transport: Callable[..., Transport], pki: PKI
) -> None:
    name = "wrong.test"
    t = transport(tls_server.origin(name), resolver=resolving(["127.0.0.1"]), ca_bundle=str(pki.ca))
    with pytest.raises(Unreachable, match="TLS") as err:
        t.request("GET", tls_server.https("/v2/", host=name), deadline=soon())
    assert not isinstance(err.value, DestinationRefused)
    assert tls_server.requests == []
    assert tls_server.server_names == [name]


def test_tls_loopback_literal_is_verified_too(
    tls_server: TLSServer, transport: Callable[..., Transport], pki: PKI
) -> None:
    # Configured as local, the literal passes the destination rules; its certificate names no IP address.
    t = transport(Origin("https", "127.0.0.1", tls_server.port), ca_bundle=str(pki.ca))
    with pytest.raises(Unreachable, match="TLS"):
        t.request("GET", f"https://127.0.0.1:{tls_server.port}/v2/", deadline=soon())
    assert tls_server.requests == []


def test_tls_certificate_from_an_untrusted_ca_is_refused(
    pki: PKI, transport: Callable[..., Transport]
) -> None:
    with TLSServer(pki.untrusted_cert, pki.untrusted_key) as untrusted:
        t = transport(untrusted.origin(), resolver=resolving(["127.0.0.1"]), ca_bundle=str(pki.ca))
        with pytest.raises(Unreachable, match="TLS"):
            t.request("GET", untrusted.https("/v2/"), deadline=soon())
        assert untrusted.requests == []
        # ... and trusting that CA instead makes the same server acceptable: the bundle is what decides.
        t = transport(untrusted.origin(), resolver=resolving(["127.0.0.1"]), ca_bundle=str(pki.other_ca))
        assert t.request("GET", untrusted.https("/v2/"), deadline=soon()).status == 200


# ======================================================================================================
# Redirects
# ======================================================================================================

CREDENTIALS = {
    "Authorization": "Bearer redirect-test-bearer-TOKEN-1",
    "X-Api-Key": "redirect-test-api-KEY-2",
    "Cookie": "session=redirect-test-cookie-3",
    "X-Trace": "trace-kept-on-every-hop",
}


def test_cross_origin_redirect_drops_credentials_and_a_hop_back_never_restores_them(
    server: RecordingServer, other: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = lambda r: {
        "/start": Reply(302, [("Location", f"{other.url}/hop?x=1")]),
        "/end": Reply(200, [], b"done"),
    }.get(r.path, Reply(404))
    other.handler = lambda r: Reply(307, [("Location", f"{server.url}/end")])
    t = transport(local(server), local(other))

    reply = t.request(
        "GET", f"{server.url}/start", deadline=soon(), headers=CREDENTIALS, credential_headers=["X-Api-Key"]
    )

    assert (reply.status, reply.body, reply.url, reply.origin) == (
        200,
        b"done",
        f"{server.url}/end",
        local(server),
    )
    start, end = server.requests
    (hop,) = other.requests
    assert start.header("Authorization") == CREDENTIALS["Authorization"]
    assert start.header("X-Api-Key") == CREDENTIALS["X-Api-Key"]
    for request in (hop, end):
        assert request.header("Authorization") is None
        assert request.header("X-Api-Key") is None
        assert request.header("Cookie") is None
        assert request.header("X-Trace") == CREDENTIALS["X-Trace"]
        assert "redirect-test" not in request.text()
    assert (hop.path, hop.query) == ("/hop", {"x": ["1"]})


def test_same_origin_redirect_keeps_credentials(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = lambda r: Reply(301, [("Location", "/b")]) if r.path == "/a" else Reply(200, [], b"b")
    reply = transport(local(server)).request("GET", f"{server.url}/a", deadline=soon(), headers=CREDENTIALS)
    assert reply.body == b"b"
    assert [r.header("Authorization") for r in server.requests] == [CREDENTIALS["Authorization"]] * 2


def test_same_host_other_port_is_another_origin(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    with RecordingServer("127.0.0.1") as other_port:
        server.handler = lambda r: Reply(308, [("Location", f"{other_port.url}/x")])
        other_port.handler = lambda r: Reply(200)
        transport(local(server), local(other_port)).request(
            "GET", f"{server.url}/x", deadline=soon(), headers=CREDENTIALS
        )
        (request,) = other_port.requests
        assert request.header("Authorization") is None and request.header("Cookie") is None


def test_redirect_to_an_unconfigured_loopback_origin_is_refused(
    server: RecordingServer, other: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = lambda r: Reply(302, [("Location", f"{other.url}/x")])
    with pytest.raises(DestinationRefused, match="plain http"):
        transport(local(server)).request("GET", f"{server.url}/x", deadline=soon())
    assert other.requests == []


def test_https_to_http_redirect_is_refused(
    tls_server: TLSServer, server: RecordingServer, transport: Callable[..., Transport], pki: PKI
) -> None:
    tls_server.handler = lambda r: Reply(302, [("Location", f"{server.url}/v2/")])
    t = transport(
        tls_server.origin(), local(server), resolver=resolving(["127.0.0.1"]), ca_bundle=str(pki.ca)
    )
    with pytest.raises(DestinationRefused, match="https to plain http"):
        t.request("GET", tls_server.https("/v2/"), deadline=soon(), headers=CREDENTIALS)
    assert tls_server.paths() == ["/v2/"]
    assert server.requests == []


@pytest.mark.parametrize(
    "target",
    [
        "https://{tls}:{port}/token",  # the configured local TLS name
        "https://127.0.0.1:{port}/token",  # a configured local literal
        "https://localhost:{port}/token",
        "https://[::1]:{port}/token",
    ],
)
def test_a_remote_origin_never_redirects_into_loopback(
    target: str,
    tls_server: TLSServer,
    transport: Callable[..., Transport],
    pki: PKI,
    monkeypatch: pytest.MonkeyPatch,
    lookups: list[str],
) -> None:
    # Every test server is on loopback, so the remote origin is played by remote.test served from 127.0.0.1,
    # and only its own connection is let through to loopback. What is under test is the redirect rule.
    real = policy.loopback_allowed
    monkeypatch.setattr(policy, "loopback_allowed", lambda o, lo: o.host == REMOTE_NAME or real(o, lo))
    location = target.format(tls=TLS_NAME, port=tls_server.port)
    tls_server.handler = lambda r: Reply(302, [("Location", location)]) if r.path == "/start" else Reply(200)
    resolver = resolving(["127.0.0.1"])
    t = transport(
        tls_server.origin(),
        Origin("https", "127.0.0.1", tls_server.port),
        Origin("https", "localhost", tls_server.port),
        Origin("https", "::1", tls_server.port),
        resolver=resolver,
        ca_bundle=str(pki.ca),
    )
    with pytest.raises(DestinationRefused, match="into loopback"):
        t.request("GET", tls_server.https("/start", host=REMOTE_NAME), deadline=soon())
    assert tls_server.paths() == ["/start"]
    assert resolver.calls == [(REMOTE_NAME, tls_server.port)]
    assert lookups == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_post_is_never_redirected(
    status: int, server: RecordingServer, other: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = lambda r: Reply(status, [("Location", f"{other.url}/tokens")])
    t = transport(local(server), local(other))
    with pytest.raises(DestinationRefused, match="never sent again"):
        t.request("POST", f"{server.url}/tokens", deadline=soon(), json_body={"label": "x"})
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/tokens")]
    assert other.requests == []


def test_redirects_are_bounded(server: RecordingServer, transport: Callable[..., Transport]) -> None:
    server.handler = lambda r: Reply(302, [("Location", "/again")])
    with pytest.raises(Unreachable, match="more than 3 redirects"):
        transport(local(server)).request("GET", f"{server.url}/", deadline=soon())
    assert len(server.requests) == 4


def test_redirects_can_be_left_to_the_caller(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = lambda r: Reply(302, [("Location", "http://10.1.2.3/elsewhere")])
    reply = transport(local(server)).request("GET", f"{server.url}/", deadline=soon(), follow_redirects=False)
    assert reply.status == 302 and reply.header("Location") == "http://10.1.2.3/elsewhere"
    assert len(server.requests) == 1


@pytest.mark.parametrize("body_size", [5, 64 * 1024])
def test_a_redirect_with_a_body_on_a_kept_alive_connection(
    body_size: int, transport: Callable[..., Transport], waits: list[float]
) -> None:
    # Registries answer redirects with a body ("Found." or an HTML page) on keep-alive connections: the
    # body must not be taken for the answer to the next hop, and the next hop must not fail because of it.
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            if request.target == "/a":
                conn.sendall(answer("302 Found", [("Location", "/b")], b"F" * body_size, keep=True))
            else:
                conn.sendall(answer("200 OK", [], b"the real answer", keep=True))
            return True

        raw.script = script
        reply = transport(local(raw)).request("GET", raw.url("/a"), deadline=soon())
        assert (reply.status, reply.body) == (200, b"the real answer")
        assert [r.target for r in raw.requests] == ["/a", "/b"]
        assert waits == []  # no failed attempt on the way


# ======================================================================================================
# Bounds: body (raw and decompressed), headers, Content-Length
# ======================================================================================================


def test_content_length_over_the_bound_is_refused_without_reading(
    transport: Callable[..., Transport],
) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            # Announce 10 MiB, send nothing: reading any of it would wait for the deadline.
            conn.sendall(answer("200 OK", [("Content-Length", str(10 * 1024 * 1024))]))
            raw.stopping.wait(20)
            return False

        raw.script = script
        started = time.monotonic()
        with pytest.raises(ResponseTooLarge, match="over 1048576 bytes"):
            transport(local(raw)).request("GET", raw.url("/big"), deadline=Deadline(20))
        assert time.monotonic() - started < 6


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_body_over_the_bound_without_content_length_is_refused(
    framing: str, transport: Callable[..., Transport]
) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            if framing == "chunked":
                conn.sendall(answer("200 OK", [("Transfer-Encoding", "chunked")]))
                chunk = b"x" * 4096
                for _ in range(40):
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.sendall(b"0\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 200_000)
            return False

        raw.script = script
        with pytest.raises(ResponseTooLarge, match="over 100000 bytes"):
            transport(local(raw), max_body=100_000).request("GET", raw.url("/"), deadline=soon())


def test_per_request_body_bound(server: RecordingServer, transport: Callable[..., Transport]) -> None:
    server.handler = lambda r: Reply(200, [], b"x" * 100)
    t = transport(local(server))
    assert t.request("GET", f"{server.url}/", deadline=soon(), max_body=100).body == b"x" * 100
    with pytest.raises(ResponseTooLarge):
        t.request("GET", f"{server.url}/", deadline=soon(), max_body=99)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate"])
def test_a_compression_bomb_is_refused(
    encoding: str, server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    expanded = b"\0" * (64 * 1024 * 1024)
    bomb = gzip.compress(expanded, compresslevel=9) if "gzip" in encoding else zlib.compress(expanded, 9)
    assert len(bomb) < 1024 * 1024  # small on the wire: only the decompressed size is over the bound
    server.handler = lambda r: Reply(200, [("Content-Encoding", encoding)], bomb)
    with pytest.raises(ResponseTooLarge, match="decompressed body over"):
        transport(local(server)).request("GET", f"{server.url}/", deadline=soon())


def test_compressed_bodies_within_the_bound_are_decoded(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    document = json.dumps({"results": ["x" * 100] * 100}).encode()
    server.handler = lambda r: Reply(200, [("Content-Encoding", "gzip")], gzip.compress(document))
    reply = transport(local(server)).request("GET", f"{server.url}/", deadline=soon())
    assert reply.body == document
    assert server.requests[0].header("Accept-Encoding") == "identity"


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [("gzip", b"\x1f\x8b not gzip at all", "corrupt"), ("br", b"\x0b\x02\x80hello", "unsupported")],
)
def test_undecodable_bodies_are_unreachable(
    encoding: str, body: bytes, message: str, server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = lambda r: Reply(200, [("Content-Encoding", encoding)], body)
    with pytest.raises(Unreachable, match=message):
        transport(local(server)).request("GET", f"{server.url}/", deadline=soon())


def test_huge_headers_are_refused(server: RecordingServer, transport: Callable[..., Transport]) -> None:
    server.handler = lambda r: Reply(200, [(f"X-Filler-{i}", "f" * 1000) for i in range(90)], b"ok")
    with pytest.raises(ResponseTooLarge, match="headers over"):
        transport(local(server)).request("GET", f"{server.url}/", deadline=soon())


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n",  # one line over http.client's limit
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)),  # too many headers
        b"HTTP/1.1 200 " + b"O" * 70_000 + b"\r\n",  # a status line without end
    ],
)
def test_malformed_huge_heads_fail_cleanly(head: bytes, transport: Callable[..., Transport]) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            conn.sendall(head + b"Content-Length: 0\r\n\r\n")
            return False

        raw.script = script
        with pytest.raises(Unreachable, match="connection broken after 2 attempt") as err:
            transport(local(raw), retry=retry_policy(2)).request("GET", raw.url("/"), deadline=soon())
        assert "a" * 100 not in str(err.value) and "O" * 100 not in str(err.value)
        assert len(raw.requests) == 2


# ======================================================================================================
# One deadline per operation
# ======================================================================================================


def test_a_body_dripped_a_byte_at_a_time_cannot_outlast_the_deadline(
    transport: Callable[..., Transport],
) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            conn.sendall(answer("200 OK", [("Content-Length", "200")]))
            for _ in range(200):  # 20 s in all, each byte well within the read timeout
                if raw.stopping.wait(0.1):
                    break
                conn.sendall(b"x")
            return False

        raw.script = script
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="deadline"):
            transport(local(raw), timeout=(1.0, 2.0)).request("GET", raw.url("/"), deadline=Deadline(1.0))
        assert time.monotonic() - started < 6


def test_headers_dripped_a_byte_at_a_time_cannot_outlast_the_deadline(
    transport: Callable[..., Transport],
) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"s" * 200 + b"\r\nContent-Length: 0\r\n\r\n":
                if raw.stopping.wait(0.1):
                    break
                conn.sendall(bytes([byte]))
            return False

        raw.script = script
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            transport(local(raw), retry=retry_policy(10)).request("GET", raw.url("/"), deadline=Deadline(1.0))
        assert time.monotonic() - started < 6
        assert len(raw.requests) <= 2


def test_retries_cannot_outlast_the_deadline(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    def slow(_: LoggedRequest) -> Reply:
        time.sleep(0.6)
        return Reply(200)

    server.handler = slow
    t = transport(
        local(server), timeout=(1.0, 0.5), retry=retry_policy(50, backoff_factor=0.1), sleep=time.sleep
    )
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        t.request("GET", f"{server.url}/", deadline=Deadline(1.5))
    assert time.monotonic() - started < 6
    assert 1 <= len(server.requests) <= 6


def test_connection_retries_with_real_backoff_cannot_outlast_the_deadline(
    transport: Callable[..., Transport],
) -> None:
    origin = Origin("http", "127.0.0.1", closed_port())
    t = transport(origin, retry=retry_policy(50, backoff_factor=1.0), sleep=time.sleep)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="no time left to retry"):
        t.request("GET", origin.url("/"), deadline=Deadline(1.0))
    assert time.monotonic() - started < 6


def test_a_retry_after_longer_than_the_deadline_is_not_waited_for(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    server.handler = sequence(Reply(503, [("Retry-After", "10")]), Reply(200))
    t = transport(local(server), sleep=time.sleep)  # 10 s is within the 20 s cap, not within the deadline
    started = time.monotonic()
    reply = t.request("GET", f"{server.url}/", deadline=Deadline(1.0))
    assert reply.status == 503
    assert time.monotonic() - started < 6
    assert len(server.requests) == 1


def test_a_deadline_that_has_passed_sends_nothing(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    deadline = Deadline(0.01)
    time.sleep(0.05)
    with pytest.raises(DeadlineExceeded):
        transport(local(server)).request("GET", f"{server.url}/", deadline=deadline)
    assert server.requests == []


def test_a_dripped_answer_does_not_spoil_the_next_request(transport: Callable[..., Transport]) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            if request.target == "/slow":
                conn.sendall(answer("200 OK", [("Content-Length", "100")], keep=True))
                for _ in range(100):
                    if raw.stopping.wait(0.1):
                        break
                    conn.sendall(b"x")
                return False
            conn.sendall(answer("200 OK", [], b"fast", keep=True))
            return True

        raw.script = script
        t = transport(local(raw))
        with pytest.raises(DeadlineExceeded):
            t.request("GET", raw.url("/slow"), deadline=Deadline(0.5))
        assert t.request("GET", raw.url("/fast"), deadline=soon()).body == b"fast"


# ======================================================================================================
# Retries: urllib3's Retry, idempotent requests only
# ======================================================================================================


def test_a_post_that_times_out_after_being_sent_is_outcome_unknown(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    def slow(_: LoggedRequest) -> Reply:
        time.sleep(1.0)
        return Reply(201)

    server.handler = slow
    t = transport(local(server), timeout=(1.0, 0.3))
    with pytest.raises(OutcomeUnknown, match="not sent again") as err:
        t.request("POST", f"{server.url}/tokens", deadline=soon(), json_body={"label": "mint"})
    assert err.value.sent
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/tokens")]


def test_a_post_whose_connection_drops_is_outcome_unknown(transport: Callable[..., Transport]) -> None:
    with RawServer() as raw:
        raw.script = lambda conn, request: False  # read the request, close without an answer
        with pytest.raises(OutcomeUnknown):
            transport(local(raw)).request("POST", raw.url("/tokens"), deadline=soon(), json_body={"a": 1})
        assert [r.method for r in raw.requests] == ["POST"]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_post_answered_5xx_is_returned_never_sent_again(
    status: int, server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    server.handler = sequence(Reply(status, [("Retry-After", "1")]), Reply(201))
    reply = transport(local(server)).request("POST", f"{server.url}/tokens", deadline=soon(), json_body={})
    assert reply.status == status
    assert len(server.requests) == 1
    assert waits == []


def test_a_post_to_a_closed_port_is_retried_as_nothing_was_sent(transport: Callable[..., Transport]) -> None:
    origin = Origin("http", "127.0.0.1", closed_port())
    with pytest.raises(Unreachable, match="connection failed after 3 attempt") as err:
        transport(origin).request("POST", origin.url("/tokens"), deadline=soon(), json_body={})
    assert not isinstance(err.value, OutcomeUnknown)
    assert not err.value.sent


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_idempotent_requests_are_retried_on_503(
    method: str, server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    server.handler = sequence(Reply(503), Reply(200))
    reply = transport(local(server)).request(method, f"{server.url}/x", deadline=soon())
    assert reply.status == 200
    assert [r.method for r in server.requests] == [method, method]
    assert waits == [0.0]  # urllib3's backoff: none before the first retry


def test_retries_are_counted(
    server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    server.handler = lambda r: Reply(502)
    reply = transport(local(server), retry=retry_policy(4)).request("GET", f"{server.url}/x", deadline=soon())
    assert reply.status == 502
    assert len(server.requests) == 4
    assert len(waits) == 3 and waits == sorted(waits) and max(waits) <= 4.0


def test_a_post_marked_idempotent_is_retried(
    server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    # A login creates nothing to revoke: its caller marks it idempotent.
    server.handler = sequence(Reply(503), Reply(200, [], b'{"token": "x"}'))
    t = transport(local(server))
    reply = t.request("POST", f"{server.url}/login", deadline=soon(), json_body={}, idempotent=True)
    assert reply.status == 200 and len(server.requests) == 2


def test_a_get_marked_not_idempotent_is_not_retried(
    server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    server.handler = sequence(Reply(503), Reply(200))
    reply = transport(local(server)).request("GET", f"{server.url}/x", deadline=soon(), idempotent=False)
    assert reply.status == 503 and len(server.requests) == 1 and waits == []


def test_429_retry_after_within_the_cap_is_waited_for(
    server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    server.handler = sequence(Reply(429, [("Retry-After", "3")]), Reply(200))
    reply = transport(local(server)).request("GET", f"{server.url}/x", deadline=soon(30))
    assert reply.status == 200
    assert waits == [3.0]
    assert len(server.requests) == 2


def test_429_retry_after_over_the_cap_is_not(
    server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    server.handler = sequence(Reply(429, [("Retry-After", "30")]), Reply(200))
    reply = transport(local(server), max_retry_after=20.0).request(
        "GET", f"{server.url}/x", deadline=soon(60)
    )
    assert reply.status == 429 and reply.header("Retry-After") == "30"
    assert waits == [] and len(server.requests) == 1


def test_429_without_retry_after_is_final(
    server: RecordingServer, transport: Callable[..., Transport], waits: list[float]
) -> None:
    server.handler = sequence(Reply(429), Reply(200))
    reply = transport(local(server)).request("GET", f"{server.url}/x", deadline=soon())
    assert reply.status == 429 and waits == [] and len(server.requests) == 1


# Retry-After values a server may send, and the waits a 429 carrying them gets (regcred's cap: 20 s).
ODD_RETRY_AFTER = {
    "٣٠".encode(): [],  # Arabic-Indic digits (UTF-8 on the wire): not a number to an HTTP peer
    "\uff13\uff10".encode(): [],  # full-width digits
    b"garbage": [],
    b"-5": [],
    b"1e3": [],
    b"3.5": [],
    b"0x10": [],
    b"\xff\xfe\xfd": [],
    b"9" * 5000: [],  # beyond what int() parses
    b"99999999999999999999": [],  # over the cap
    b"Fri, 31 Dec 9999 23:59:59 GMT": [],  # over the cap
    b"Tue, 31 Feb 2001 25:61:61 GMT": [0.0, 0.0],  # a date in the past: now, within the retry count
}


@pytest.mark.parametrize(("value", "expected_waits"), ODD_RETRY_AFTER.items())
def test_odd_retry_after_on_429_never_crashes_and_never_waits_long(
    value: bytes, expected_waits: list[float], transport: Callable[..., Transport], waits: list[float]
) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            conn.sendall(answer("429 Too Many Requests", [("Retry-After", value.decode("latin-1"))]))
            return False

        raw.script = script
        reply = transport(local(raw)).request("GET", raw.url("/x"), deadline=soon())
        assert reply.status == 429
        assert waits == expected_waits
        assert len(raw.requests) == len(expected_waits) + 1


@pytest.mark.parametrize("value", ODD_RETRY_AFTER)
def test_odd_retry_after_on_503_falls_back_to_bounded_backoff(
    value: bytes, transport: Callable[..., Transport], waits: list[float]
) -> None:
    with RawServer() as raw:

        def script(conn: socket.socket, request: RawRequest) -> bool:
            if len(raw.requests) == 1:
                conn.sendall(answer("503 Unavailable", [("Retry-After", value.decode("latin-1"))]))
            else:
                conn.sendall(answer("200 OK", [], b"ok"))
            return False

        raw.script = script
        reply = transport(local(raw), max_retry_after=20.0).request("GET", raw.url("/x"), deadline=soon())
        # Either the unusable value is ignored (backoff, then the 200) or it is over the cap (the 503 stands).
        assert (reply.status, waits) in ((200, [0.0]), (503, []))
        assert sum(waits) <= 20.0


# ======================================================================================================
# Error texts
# ======================================================================================================

BEARER = "errtext-bearer-TOKEN-9f8e7d6c"
BODY_SECRET = "errtext-body-SECRET-1a2b3c4d"


def test_error_text_is_scrubbed_of_every_credential_the_request_carried(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    def echo(request: LoggedRequest) -> Reply:
        # A hostile or careless server echoes everything it got.
        body = {
            "message": f"denied: {request.header('Authorization')}",
            "detail": f"token {BEARER} and secret {BODY_SECRET}",
            "errors": [{"code": "DENIED", "message": f"payload {request.body.decode()}"}],
        }
        return Reply(403, [("Content-Type", "application/json")], json.dumps(body).encode())

    server.handler = echo
    reply = transport(local(server)).request(
        "POST",
        f"{server.url}/tokens",
        deadline=soon(),
        headers={"Authorization": f"Bearer {BEARER}"},
        json_body={"secret": BODY_SECRET},
        secrets=(BODY_SECRET,),
    )
    text = reply.error_text(limit=1000)
    assert reply.status == 403
    assert "denied" in text and "<redacted>" in text and "DENIED" in text
    assert BEARER not in text and BODY_SECRET not in text
    assert "errtext" not in text


def test_error_text_scrubs_a_basic_credential_built_by_the_caller(
    server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    password = "errtext-basic-PASSWORD-77aa"
    server.handler = lambda r: Reply(
        401, [], json.dumps({"details": f"user svc password {password} is wrong"}).encode()
    )
    reply = transport(local(server)).request(
        "GET",
        f"{server.url}/token",
        deadline=soon(),
        headers={"Authorization": basic_header("svc", password)},
    )
    text = reply.error_text()
    assert "is wrong" in text and password not in text and "svc:" not in text


def test_error_text_scrubs_the_secrets_it_was_given() -> None:
    # The response knows what its request carried, even values nothing else remembered.
    fresh = "errtext-never-remembered-c0ffee"
    body = json.dumps({"message": f"bad value {fresh}"}).encode()
    origin = Origin("https", "api.example", 443)
    reply = Response(400, (), body, "https://api.example/x", origin, secrets=(fresh,))
    assert reply.error_text() == "bad value <redacted>"


def test_error_text_keeps_only_known_fields_truncated_and_printable() -> None:
    body = json.dumps(
        {
            "message": "first\x1b[31m red\u202e rtl\r\nInjected: header\x00",
            "internal": "stack trace: /srv/app.py line 3",
            "error_description": "x" * 500,
        }
    ).encode()
    reply = Response(400, (), body, "https://api.example/x", Origin("https", "api.example", 443))
    text = reply.error_text(limit=100)
    assert text.startswith("first [31m red rtl Injected: header") and "; xxxxx" in text
    assert len(text) == 103 and text.endswith("...")
    assert all(0x20 <= ord(c) < 0x7F for c in text)
    assert "stack trace" not in text
    assert reply.error_text(("message",), limit=200) == "first [31m red rtl Injected: header"


@pytest.mark.parametrize(
    "body",
    [b"<html>Internal error at /srv/app.py</html>", b"", b"{}", b'{"internal": "x"}', b"[1, 2]", b"\xff"],
)
def test_error_text_of_unusable_bodies_is_empty(body: bytes) -> None:
    reply = Response(500, (), body, "https://api.example/x", Origin("https", "api.example", 443))
    assert reply.error_text() == ""


QUERY_MARK = "qmark-5d41402a"
HEADER_MARK = "hmark-7d793037"
BODY_MARK = "bmark-2c26b46b"


def _slow(_: LoggedRequest) -> Reply:
    time.sleep(0.5)
    return Reply(200)


@pytest.mark.parametrize(
    "scenario",
    [
        "connection refused",
        "read timeout",
        "post timeout",
        "too large",
        "redirect refused",
        "destination refused",
        "too many redirects",
        "corrupt body",
        "deadline",
    ],
)
def test_transport_errors_never_quote_headers_queries_or_bodies(
    scenario: str, server: RecordingServer, transport: Callable[..., Transport]
) -> None:
    url = f"{server.url}/path?token={QUERY_MARK}"
    method = "GET"
    t = transport(local(server), timeout=(1.0, 0.2), retry=retry_policy(2))
    deadline = soon()
    if scenario == "connection refused":
        port = closed_port()
        url = f"http://127.0.0.1:{port}/path?token={QUERY_MARK}"
        t = transport(Origin("http", "127.0.0.1", port), retry=retry_policy(2))
    elif scenario in ("read timeout", "post timeout", "deadline"):
        server.handler = _slow
        method = "POST" if scenario == "post timeout" else "GET"
        if scenario == "deadline":
            t = transport(local(server), timeout=(1.0, 5.0))
            deadline = Deadline(0.2)
    elif scenario == "too large":
        server.handler = lambda r: Reply(200, [], b"x" * 2000)
        t = transport(local(server), max_body=1000)
    elif scenario == "redirect refused":
        server.handler = lambda r: Reply(302, [("Location", f"http://10.1.2.3/x?token={QUERY_MARK}")])
    elif scenario == "destination refused":
        url = f"http://10.1.2.3/path?token={QUERY_MARK}"
    elif scenario == "too many redirects":
        server.handler = lambda r: Reply(302, [("Location", f"/loop?token={QUERY_MARK}")])
    elif scenario == "corrupt body":
        server.handler = lambda r: Reply(
            200, [("Content-Encoding", "gzip")], b"not gzip " + BODY_MARK.encode()
        )
    with pytest.raises(TransportError) as err:
        t.request(method, url, deadline=deadline, headers={"X-Trace": HEADER_MARK}, body=BODY_MARK.encode())
    message = f"{err.value} {err.value!r}"
    for mark in (QUERY_MARK, HEADER_MARK, BODY_MARK, "X-Trace", "token="):
        assert mark not in message, scenario
    assert err.value.__cause__ is None


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections stay open: urllib3 pools them between requests
    body = bytes(range(256)) * 8

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_one_transport_serves_many_threads_on_pooled_connections(transport: Callable[..., Transport]) -> None:
    # The sweep shares one transport among its threads. Once a body is read, urllib3 hands its connection
    # back to the pool, where another thread may take it (or close it) while the first is still in its read
    # loop: the loop must not touch that connection's socket again.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    server.daemon_threads = True
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        port = server.server_address[1]
        shared = transport(Origin("http", "127.0.0.1", port))
        answers: list[tuple[int, bytes]] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(40):
                try:
                    reply = shared.request("GET", f"http://127.0.0.1:{port}/v2/", deadline=soon())
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    continue
                with lock:
                    answers.append((reply.status, reply.body))

        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.shutdown()
        server.server_close()
    assert errors == []
    assert len(answers) == 640 and all(a == (200, _KeepAlive.body) for a in answers)
