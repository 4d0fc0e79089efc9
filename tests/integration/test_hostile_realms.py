"""A registry whose challenge or redirects point somewhere hostile never gets the credential sent there.

Every test runs with non-loopback connections blocked at the socket layer (pytest-socket), and
records DNS lookups, so "refused before any connection" is checked, not assumed. Each server logs
every request; the assertions read those logs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pytest_socket import SocketConnectBlockedError

from regcred.errors import DestinationRefused, UntrustedRealmError
from regcred.hosts import Origin
from regcred.http.transport import Transport
from regcred.registry import Credential, PullStatus, RegistryClient
from tests.network import ALLOWED_HOSTS
from tests.registry_servers import (
    FakeTokenRegistry,
    LoggedRequest,
    RecordingServer,
    Reply,
    secret_forms,
)

USER = "svc-batch"
PASSWORD = "hostile-test-PASSWORD-41"
CRED = Credential(USER, PASSWORD)

pytestmark = [pytest.mark.allow_hosts(ALLOWED_HOSTS), pytest.mark.usefixtures("loopback_only")]


@pytest.fixture
def registry_server() -> Iterator[RecordingServer]:
    with RecordingServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def other_host() -> Iterator[RecordingServer]:
    """A server on a different loopback host: a different origin, reachable in tests."""
    with RecordingServer("127.0.0.2") as server:
        yield server


_transports: list[Transport] = []


@pytest.fixture(autouse=True)
def _close_transports() -> Iterator[None]:
    yield
    while _transports:
        _transports.pop().close()


def origin(server: RecordingServer) -> Origin:
    return Origin("http", server.host, server.port)


def client(
    server: RecordingServer,
    *,
    trusted_realms: tuple[Origin, ...] = (),
    local: tuple[RecordingServer, ...] = (),
) -> RegistryClient:
    """A client for ``server``; ``local`` are the other loopback servers the deployment allows (a local
    stack's token service, say): only those may be reached at all."""
    transport = Transport(
        local_origins={origin(server), *(origin(s) for s in local)},
        sleep=lambda _s: None,
        timeout=(1.0, 2.0),
    )
    _transports.append(transport)
    return RegistryClient(origin(server), trusted_realms=trusted_realms, transport=transport)


def challenge_to(realm: str) -> Reply:
    return Reply(401, [("WWW-Authenticate", f'Bearer realm="{realm}",service="reg"')])


def assert_never_received_secret(
    server: RecordingServer, *, allowed_paths: tuple[str, ...] = (), any_authorization: bool = True
) -> None:
    """No request outside `allowed_paths` carried the credential (nor, by default, any Authorization)."""
    for request in server.requests:
        if request.path in allowed_paths:
            continue
        if any_authorization:
            assert request.header("Authorization") is None, request
        text = request.text()
        for secret in secret_forms(USER, PASSWORD):
            assert secret not in text, request


# --- the guard itself -------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_non_loopback_connections_really_are_blocked(other_host: RecordingServer) -> None:
    with pytest.raises(SocketConnectBlockedError), socket.create_connection(("10.1.2.3", 80), timeout=0.2):
        pass
    with (
        pytest.raises(SocketConnectBlockedError),
        socket.create_connection(("169.254.169.254", 80), timeout=0.2),
    ):
        pass
    # ... while a second loopback host works.
    with socket.create_connection((other_host.host, other_host.port), timeout=1):
        pass


# --- hostile realms: refused before any connection --------------------------------------------------


@pytest.mark.parametrize(
    ("realm", "named", "trusted"),
    [
        ("http://10.1.2.3/token", "10.1.2.3", ()),
        ("https://evil.example/token", "evil.example", ()),
        ("https://evil.example:8443/token", "evil.example:8443", (Origin("https", "evil.example", 443),)),
        ("https://evil.example/token", "evil.example", (Origin("http", "evil.example", 443),)),  # scheme
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", ()),
        ("https://169.254.170.2/v2/credentials", "169.254.170.2", ()),
        ("https://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254", ()),
        ("https://registry.example@evil.example/token", "URL", ()),
        ("ftp://127.0.0.1/token", "URL", ()),
        ("/token", "URL", ()),
    ],
)
def test_hostile_realm_is_refused_before_any_connection(
    registry_server: RecordingServer,
    lookups: list[str],
    realm: str,
    named: str,
    trusted: tuple[Origin, ...],
) -> None:
    registry_server.handler = lambda r: challenge_to(realm)
    with pytest.raises(UntrustedRealmError) as err:
        client(registry_server, trusted_realms=trusted).check_pull(CRED, ["acme/app:1.0"])
    message = str(err.value)
    assert named in message
    assert "credential was not sent" in message
    assert PASSWORD not in message
    assert registry_server.paths() == ["/v2/"]
    assert_never_received_secret(registry_server)
    # Nothing but the loopback registry was even looked up.
    assert all(host in ("127.0.0.1", registry_server.host) for host in lookups), lookups


@pytest.mark.parametrize(
    ("realm", "trusted", "why"),
    [
        # Trusted by (mis)configuration, still refused by the transport: http only to loopback literals, ...
        ("http://10.1.2.3/token", Origin("http", "10.1.2.3", 80), "plain http"),
        ("http://169.254.169.254/latest/meta-data/", Origin("http", "169.254.169.254", 80), "plain http"),
        # ... and never to a metadata, link-local or numerically spelt address.
        ("https://169.254.169.254/latest/meta-data/", Origin("https", "169.254.169.254", 443), "metadata"),
        ("https://[::ffff:169.254.169.254]/", Origin("https", "::ffff:a9fe:a9fe", 443), "metadata"),
        ("https://[fe80::1]/token", Origin("https", "fe80::1", 443), "link-local"),
        ("https://2852039166/token", Origin("https", "2852039166", 443), "non-canonical"),
    ],
)
def test_trusted_but_forbidden_realm_is_refused_before_any_connection(
    registry_server: RecordingServer, lookups: list[str], realm: str, trusted: Origin, why: str
) -> None:
    registry_server.handler = lambda r: challenge_to(realm)
    with pytest.raises(DestinationRefused, match=why) as err:
        client(registry_server, trusted_realms=(trusted,)).check_pull(CRED, ["acme/app:1.0"])
    assert PASSWORD not in str(err.value)
    assert registry_server.paths() == ["/v2/"]
    assert_never_received_secret(registry_server)
    assert all(host in ("127.0.0.1", registry_server.host) for host in lookups), lookups


def test_untrusted_realm_message_says_how_to_trust_it(registry_server: RecordingServer) -> None:
    registry_server.handler = lambda r: challenge_to("https://auth.docker.io/token")
    with pytest.raises(UntrustedRealmError) as err:
        client(registry_server).check_pull(CRED, ["acme/app:1.0"])
    message = str(err.value)
    assert "add 'auth.docker.io' to the deployment's allowed registry hosts" in message
    assert "REGCRED_ALLOWED_REGISTRY_HOSTS" in message
    assert "the secret's regcred:realm-hosts tag" in message


def test_realm_on_another_loopback_host_is_not_trusted(
    registry_server: RecordingServer, other_host: RecordingServer
) -> None:
    # A loopback destination the deployment allows (plain http) is reachable; that does not make it a
    # trusted realm.
    registry_server.handler = lambda r: challenge_to(f"{other_host.url}/token")
    with pytest.raises(UntrustedRealmError, match=other_host.host):
        client(registry_server, local=(other_host,)).check_pull(CRED, ["acme/app:1.0"])
    assert other_host.requests == []


# --- redirects: Authorization never crosses an origin -----------------------------------------------


def test_realm_redirect_to_another_host_drops_the_credential(
    registry_server: RecordingServer, other_host: RecordingServer
) -> None:
    fake = FakeTokenRegistry(
        registry_server, users={USER: PASSWORD}, grants={USER: {"acme/app"}}, manifests={("acme/app", "1.0")}
    ).install()
    base = fake.handle

    def registry(request: LoggedRequest) -> Reply:
        if request.path == "/token":
            return Reply(302, [("Location", f"{other_host.url}/token?from=registry")])
        return base(request)

    registry_server.handler = registry
    other_host.handler = lambda r: Reply(
        200, [("Content-Type", "application/json")], b'{"token": "evil-token"}'
    )

    check = client(registry_server, local=(other_host,)).check_pull(CRED, ["acme/app:1.0"])

    # The credential went to the trusted realm only; the other host saw no Authorization at all (a second
    # realm request, without a scope, asks whether the credential was served as anonymous).
    assert {r.path for r in other_host.requests} == {"/token"}
    assert_never_received_secret(other_host)
    assert_never_received_secret(registry_server, allowed_paths=("/token",), any_authorization=False)
    # The other host's token proves nothing: the registry does not accept it.
    assert [i.status for i in check.images] == [PullStatus.NO_ACCESS]
    heads = [r for r in registry_server.requests if r.method == "HEAD"]
    assert [h.header("Authorization") for h in heads] == ["Bearer evil-token"]


def test_redirect_back_to_the_realm_does_not_re_add_basic(
    registry_server: RecordingServer, other_host: RecordingServer
) -> None:
    registry_server.handler = lambda r: {
        "/v2/": challenge_to(f"{registry_server.url}/token"),
        "/token": Reply(302, [("Location", f"{other_host.url}/bounce")]),
        "/token2": Reply(401),
    }.get(r.path, Reply(404))
    other_host.handler = lambda r: Reply(307, [("Location", f"{registry_server.url}/token2")])

    check = client(registry_server, local=(other_host,)).check_pull(CRED, ["acme/app:1.0"])

    assert registry_server.paths() == ["/v2/", "/token", "/token2"]
    assert_never_received_secret(registry_server, allowed_paths=("/token",))
    assert_never_received_secret(other_host)
    assert [i.status for i in check.images] == [PullStatus.CREDENTIALS_REJECTED]


def test_same_host_other_port_is_another_origin(registry_server: RecordingServer) -> None:
    with RecordingServer("127.0.0.1") as other_port:
        registry_server.handler = lambda r: {
            "/v2/": challenge_to(f"{registry_server.url}/token"),
            "/token": Reply(301, [("Location", f"{other_port.url}/token")]),
        }.get(r.path, Reply(404))
        other_port.handler = lambda r: Reply(401)
        check = client(registry_server, local=(other_port,)).check_pull(CRED, ["acme/app:1.0"])
        assert [i.status for i in check.images] == [PullStatus.CREDENTIALS_REJECTED]
        assert other_port.paths() == ["/token"]
        assert_never_received_secret(other_port)


@pytest.mark.parametrize(
    "target",
    [
        "http://10.1.2.3/token",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://2852039166/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
def test_realm_redirect_to_forbidden_target_is_refused(
    registry_server: RecordingServer, lookups: list[str], target: str
) -> None:
    registry_server.handler = lambda r: {
        "/v2/": challenge_to(f"{registry_server.url}/token"),
        "/token": Reply(302, [("Location", target)]),
    }.get(r.path, Reply(404))
    with pytest.raises(DestinationRefused, match="refusing") as err:
        client(registry_server).check_pull(CRED, ["acme/app:1.0"])
    assert PASSWORD not in str(err.value)
    assert registry_server.paths() == ["/v2/", "/token"]
    assert all(host in ("127.0.0.1",) for host in lookups), lookups


@pytest.mark.parametrize("mode", ["bearer", "basic"])
def test_manifest_redirect_to_another_host_drops_authorization(
    registry_server: RecordingServer, other_host: RecordingServer, mode: str
) -> None:
    # Registries legitimately redirect to storage on another host: it must get no credential/token.
    fake = FakeTokenRegistry(registry_server, mode=mode, users={USER: PASSWORD}, grants={USER: {"acme/app"}})
    fake.manifest_override = lambda r: Reply(307, [("Location", f"{other_host.url}/blob?sig=public")])
    fake.install()
    other_host.handler = lambda r: Reply(200)

    check = client(registry_server, local=(other_host,)).check_pull(CRED, ["acme/app:1.0"])

    assert [i.status for i in check.images] == [PullStatus.OK]
    assert other_host.paths() == ["/blob"]
    assert_never_received_secret(other_host)
    for token in fake.issued:
        assert all(token not in r.text() for r in other_host.requests)
