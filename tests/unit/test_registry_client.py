"""RegistryClient.check_pull against real HTTP servers on 127.0.0.1 (no mocks of requests)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from regcred.errors import RegistryError, UntrustedRealmError
from regcred.registry import (
    MANIFEST_MEDIA_TYPES,
    Credential,
    ImageCheck,
    ImageRef,
    PullCheck,
    PullStatus,
    RegistryClient,
)
from tests.registry_servers import (
    FakeTokenRegistry,
    LoggedRequest,
    RecordingServer,
    Reply,
    basic_header,
    closed_port,
    secret_forms,
    sequence,
)

USER = "svc-batch"
PASSWORD = "dckr_pat_S3cretPassw0rd"
CRED = Credential(USER, PASSWORD)
DIGEST = "sha256:" + "cd" * 32


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


@pytest.fixture
def waits() -> list[float]:
    return []


def client_for(server: RecordingServer, waits: list[float], **kwargs: object) -> RegistryClient:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment in tests
    options: dict[str, object] = {"session": session, "sleep": waits.append, "timeout": (1.0, 2.0)}
    options.update(kwargs)
    return RegistryClient(server.host_port, **options)  # type: ignore[arg-type]


def registry(server: RecordingServer, mode: str = "bearer", **kwargs: object) -> FakeTokenRegistry:
    options: dict[str, object] = {
        "users": {USER: PASSWORD},
        "grants": {USER: {"acme/app", "acme/other"}},
        "manifests": {("acme/app", "1.0"), ("acme/other", "2"), ("acme/app", DIGEST)},
    }
    options.update(kwargs)
    return FakeTokenRegistry(server, mode=mode, **options).install()  # type: ignore[arg-type]


def assert_no_secret(check: PullCheck, *extra: str) -> None:
    text = repr(check)
    for secret in (*secret_forms(USER, PASSWORD), *extra):
        assert secret not in text


def statuses(check: PullCheck) -> list[PullStatus]:
    return [i.status for i in check.images]


# --- Basic flow -------------------------------------------------------------------------------------


def test_basic_flow_ok(server: RecordingServer, waits: list[float]) -> None:
    registry(server, "basic")
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert check.ok
    assert check.registry == server.host_port
    assert check.images == (
        ImageCheck(f"{server.host_port}/acme/app:1.0", PullStatus.OK, "manifest found", 200),
    )
    probe, head = server.requests
    assert (probe.method, probe.path, probe.header("Authorization")) == ("GET", "/v2/", None)
    assert (head.method, head.path) == ("HEAD", "/v2/acme/app/manifests/1.0")
    assert head.header("Authorization") == basic_header(USER, PASSWORD)
    assert [t.strip() for t in (head.header("Accept") or "").split(",")] == list(MANIFEST_MEDIA_TYPES)
    assert waits == []


def test_basic_flow_rejected_credentials(server: RecordingServer, waits: list[float]) -> None:
    registry(server, "basic")
    check = client_for(server, waits).check_pull(Credential(USER, "wrong"), ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.CREDENTIALS_REJECTED] * 2
    assert check.credentials_rejected and not check.ok and not check.could_not_check
    assert check.images[0].http_status == 401
    assert_no_secret(check, "wrong")


def test_basic_flow_forbidden_repository_is_no_access(server: RecordingServer, waits: list[float]) -> None:
    registry(
        server, "basic", grants={USER: {"acme/app"}}, manifests={("acme/app", "1.0"), ("acme/other", "2")}
    )
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.OK, PullStatus.NO_ACCESS]
    assert check.images[1].http_status == 403


def test_basic_flow_without_credential(server: RecordingServer, waits: list[float]) -> None:
    registry(server, "basic")
    check = client_for(server, waits).check_pull(None, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.CREDENTIALS_REJECTED]
    assert "anonymous" in check.images[0].detail
    assert all(r.header("Authorization") is None for r in server.requests)


# --- Bearer flow ------------------------------------------------------------------------------------


def test_bearer_flow_one_token_request_with_all_scopes(server: RecordingServer, waits: list[float]) -> None:
    fake = registry(server)
    images = ["acme/app:1.0", "acme/other:2", f"acme/app@{DIGEST}", "acme/app:missing"]
    check = client_for(server, waits).check_pull(CRED, images)
    assert statuses(check) == [PullStatus.OK, PullStatus.OK, PullStatus.OK, PullStatus.NOT_FOUND]
    assert check.images[2].image == f"{server.host_port}/acme/app@{DIGEST}"
    token_requests = [r for r in server.requests if r.path == "/token"]
    assert len(token_requests) == 1
    (token_request,) = token_requests
    assert token_request.method == "GET"
    assert token_request.query == {
        "service": ["fake-registry"],
        "scope": ["repository:acme/app:pull", "repository:acme/other:pull"],
        "account": [USER],
    }
    assert token_request.header("Authorization") == basic_header(USER, PASSWORD)
    (token,) = fake.issued
    heads = [r for r in server.requests if r.method == "HEAD"]
    assert [r.path for r in heads] == [
        "/v2/acme/app/manifests/1.0",
        "/v2/acme/other/manifests/2",
        f"/v2/acme/app/manifests/{DIGEST}",
        "/v2/acme/app/manifests/missing",
    ]
    assert all(r.header("Authorization") == f"Bearer {token}" for r in heads)
    # The credential only ever went to the token endpoint.
    for r in server.requests:
        if r.path != "/token":
            assert all(secret not in r.text() for secret in secret_forms(USER, PASSWORD))
    assert_no_secret(check, token)
    assert check.images[3].detail == "manifest or repository unknown (HTTP 404)"


@pytest.mark.parametrize("field", ["token", "access_token"])
def test_token_or_access_token_field(server: RecordingServer, waits: list[float], field: str) -> None:
    registry(server, token_field=field)
    assert client_for(server, waits).check_pull(CRED, ["acme/app:1.0"]).ok


def test_token_endpoint_rejects_credentials(server: RecordingServer, waits: list[float]) -> None:
    registry(server)
    check = client_for(server, waits).check_pull(
        Credential(USER, "bad-pass"), ["acme/app:1.0", "acme/other:2"]
    )
    assert statuses(check) == [PullStatus.CREDENTIALS_REJECTED] * 2
    assert check.images[0].http_status == 401
    assert "token endpoint refused the credential" in check.images[0].detail
    assert server.paths("HEAD") == []  # nothing more to learn
    assert_no_secret(check, "bad-pass")


def test_token_endpoint_403_is_rejected_too(server: RecordingServer, waits: list[float]) -> None:
    fake = registry(server)
    fake.token_body = None
    original = fake.handle

    def handle(request: LoggedRequest) -> Reply:
        return Reply(403) if request.path == "/token" else original(request)

    server.handler = handle
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.CREDENTIALS_REJECTED]


def test_narrowed_scope_is_no_access(server: RecordingServer, waits: list[float]) -> None:
    # The token server says 200 but grants only acme/app: the token alone proves nothing.
    registry(server, grants={USER: {"acme/app"}})
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.OK, PullStatus.NO_ACCESS]
    assert check.images[1].http_status == 401
    assert "error=insufficient_scope" in check.images[1].detail
    assert not check.ok and not check.credentials_rejected


def test_registry_rejecting_a_granted_token_is_no_access(server: RecordingServer, waits: list[float]) -> None:
    fake = registry(server)
    fake.manifest_override = lambda r: Reply(403)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.NO_ACCESS]
    assert check.images[0].http_status == 403


def test_anonymous_bearer_token(server: RecordingServer, waits: list[float]) -> None:
    registry(server, anonymous_repositories={"acme/public"}, manifests={("acme/public", "latest")})
    check = client_for(server, waits).check_pull(None, ["acme/public"])
    assert check.ok
    (token_request,) = [r for r in server.requests if r.path == "/token"]
    assert token_request.header("Authorization") is None
    assert "account" not in token_request.query


def test_token_expiry_defaults_to_60_seconds_and_is_refreshed(
    server: RecordingServer, waits: list[float]
) -> None:
    fake = registry(server, token_body=lambda token: json.dumps({"token": token}).encode())
    now = [1000.0]
    real_manifest = fake._manifest

    def slow_manifest(request: LoggedRequest) -> Reply:
        now[0] += 40  # each HEAD "takes" 40 s of the token's 60 s lifetime
        return real_manifest(request)

    fake.manifest_override = slow_manifest
    client = client_for(server, waits)
    client._clock = lambda: now[0]
    check = client.check_pull(CRED, ["acme/app:1.0", "acme/other:2", f"acme/app@{DIGEST}"])
    assert check.ok
    assert len(server.paths("GET")) == 1 + 2  # /v2/ and a second token once the first one aged


def test_long_lived_token_is_reused(server: RecordingServer, waits: list[float]) -> None:
    registry(server)  # expires_in 300
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert check.ok
    assert server.paths("GET").count("/token") == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"token": ""}',
        b'{"token": 5}',
        b'{"token": "a b"}',
        b'{"token": "a\\r\\nX: y"}',
        b"{}",
    ],
)
def test_unusable_token_response_is_unreachable(
    server: RecordingServer, waits: list[float], body: bytes
) -> None:
    registry(server, token_body=lambda _token: body)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]
    assert "no usable token" in check.images[0].detail
    assert check.could_not_check
    assert server.paths("HEAD") == []


def test_huge_token_response_is_refused(server: RecordingServer, waits: list[float]) -> None:
    registry(server, token_body=lambda token: json.dumps({"token": token, "pad": "x" * 2_000_000}).encode())
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]


def test_anonymous_v2_then_challenge_on_manifest(server: RecordingServer, waits: list[float]) -> None:
    # Some registries open /v2/ to everyone and challenge per repository.
    fake = registry(server)
    original = fake.handle
    server.handler = lambda r: Reply(200) if r.path == "/v2/" else original(r)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert check.ok
    assert server.paths().count("/token") == 1


def test_anonymous_registry(server: RecordingServer, waits: list[float]) -> None:
    registry(server, anonymous_repositories={"acme/app"}, manifests={("acme/app", "1.0")})
    server.handler = sequence(Reply(200), Reply(200), Reply(404))
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/app:2.0"])
    assert statuses(check) == [PullStatus.OK, PullStatus.NOT_FOUND]
    assert check.images[0].detail == "manifest found anonymously (credential not exercised)"
    assert all(r.header("Authorization") is None for r in server.requests)


def test_duplicate_images_are_checked_once(server: RecordingServer, waits: list[float]) -> None:
    registry(server)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/app:1.0", "acme/app"])
    assert statuses(check) == [PullStatus.OK, PullStatus.OK, PullStatus.NOT_FOUND]
    assert len(server.paths("HEAD")) == 2


def test_session_auth_is_never_used(server: RecordingServer, waits: list[float]) -> None:
    registry(server, anonymous_repositories={"acme/app"}, manifests={("acme/app", "1.0")})
    session = requests.Session()
    session.trust_env = False
    session.auth = ("session-user", "session-password")
    session.headers["Authorization"] = "Basic c2Vzc2lvbg=="
    server.handler = sequence(Reply(200))
    client = RegistryClient(server.host_port, session=session, sleep=waits.append)
    assert client.check_pull(None, ["acme/app:1.0"]).ok
    assert all(r.header("Authorization") is None for r in server.requests)


# --- status mapping, rate limits and retries --------------------------------------------------------


def test_rate_limited_with_docker_hub_headers(server: RecordingServer, waits: list[float]) -> None:
    headers = [("ratelimit-limit", "100;w=21600"), ("ratelimit-remaining", "0;w=21600")]
    registry(server, manifest_override=lambda r: Reply(429, headers))
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    (image,) = check.images
    assert image.status is PullStatus.RATE_LIMITED
    assert (image.http_status, image.ratelimit_limit, image.ratelimit_remaining) == (
        429,
        "100;w=21600",
        "0;w=21600",
    )
    assert check.could_not_check
    assert waits == []  # no Retry-After: waiting proves nothing
    assert len(server.paths("HEAD")) == 1


def test_ratelimit_headers_are_reported_on_success(server: RecordingServer, waits: list[float]) -> None:
    registry(
        server, extra_headers=[("RateLimit-Limit", "100;w=21600"), ("RateLimit-Remaining", "76;w=21600")]
    )
    (image,) = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"]).images
    assert (image.status, image.ratelimit_remaining, image.ratelimit_limit) == (
        PullStatus.OK,
        "76;w=21600",
        "100;w=21600",
    )


def test_retry_after_under_the_cap_is_honoured(server: RecordingServer, waits: list[float]) -> None:
    fake = registry(server)
    fake.manifest_override = sequence(Reply(429, [("Retry-After", "7")]), Reply(200))
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert check.ok
    assert waits == [7.0]
    assert len(server.paths("HEAD")) == 2


def test_retry_after_over_the_cap_is_not_waited_for(server: RecordingServer, waits: list[float]) -> None:
    fake = registry(server)
    fake.manifest_override = sequence(Reply(429, [("Retry-After", "3600")]), Reply(200))
    check = client_for(server, waits, max_retry_after=20.0).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.RATE_LIMITED]
    assert "retry after 3600 s" in check.images[0].detail
    assert waits == []
    assert len(server.paths("HEAD")) == 1


def test_retry_after_http_date(server: RecordingServer, waits: list[float]) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    later = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    fake = registry(server)
    fake.manifest_override = sequence(
        Reply(429, [("Retry-After", soon)]), Reply(429, [("Retry-After", later)]), Reply(200)
    )
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.RATE_LIMITED]
    assert len(waits) == 1 and 7.0 <= waits[0] <= 10.0


def test_repeated_429_within_the_cap_stops_after_max_attempts(
    server: RecordingServer, waits: list[float]
) -> None:
    registry(server, manifest_override=lambda r: Reply(429, [("Retry-After", "1")]))
    check = client_for(server, waits, max_attempts=3).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.RATE_LIMITED]
    assert waits == [1.0, 1.0]
    assert len(server.paths("HEAD")) == 3


def test_503_then_200_is_retried(server: RecordingServer, waits: list[float]) -> None:
    fake = registry(server)
    fake.manifest_override = sequence(Reply(503), Reply(502), Reply(200))
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert check.ok
    assert len(waits) == 2 and waits[0] < waits[1] <= 4.0  # exponential, small
    assert len(server.paths("HEAD")) == 3


def test_persistent_5xx_is_unreachable_after_bounded_attempts(
    server: RecordingServer, waits: list[float]
) -> None:
    registry(server, manifest_override=lambda r: Reply(504))
    check = client_for(server, waits, max_attempts=4).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]
    assert check.images[0].http_status == 504
    assert len(server.paths("HEAD")) == 4
    assert len(waits) == 3


def test_500_is_not_retried(server: RecordingServer, waits: list[float]) -> None:
    server.handler = lambda r: Reply(500)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.UNREACHABLE] * 2
    assert server.paths() == ["/v2/"]
    assert waits == []


def test_503_retry_after_over_cap_gives_up_at_once(server: RecordingServer, waits: list[float]) -> None:
    server.handler = lambda r: Reply(503, [("Retry-After", "600")])
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]
    assert waits == [] and server.paths() == ["/v2/"]


def test_rate_limited_probe(server: RecordingServer, waits: list[float]) -> None:
    server.handler = lambda r: Reply(429, [("ratelimit-remaining", "0")])
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.RATE_LIMITED] * 2
    assert check.images[0].ratelimit_remaining == "0"


def test_connection_refused_is_unreachable_with_bounded_attempts(waits: list[float]) -> None:
    port = closed_port()
    session = requests.Session()
    session.trust_env = False
    client = RegistryClient(f"127.0.0.1:{port}", session=session, sleep=waits.append, max_attempts=3)
    started = time.monotonic()
    check = client.check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.UNREACHABLE] * 2
    assert "connection failed after 3 attempt(s)" in check.images[0].detail
    assert len(waits) == 2  # 3 attempts, 2 backoffs, for the whole check (not per image)
    assert time.monotonic() - started < 2
    assert_no_secret(check)


def test_read_timeout_is_unreachable(server: RecordingServer, waits: list[float]) -> None:
    def slow(_: LoggedRequest) -> Reply:
        time.sleep(0.4)
        return Reply(200)

    server.handler = slow
    check = client_for(server, waits, timeout=(1.0, 0.1), max_attempts=2).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]
    assert "read timeout" in check.images[0].detail
    assert len(waits) == 1


@pytest.mark.parametrize(
    ("challenge", "detail"),
    [
        ('Bearer realm="unterminated', "malformed WWW-Authenticate"),
        ("Negotiate", "unsupported auth scheme: negotiate"),
        ('Bearer service="x"', "without realm"),
    ],
)
def test_unusable_challenges_are_protocol_errors(
    server: RecordingServer, waits: list[float], challenge: str, detail: str
) -> None:
    server.handler = lambda r: Reply(401, [("WWW-Authenticate", challenge)])
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]
    assert detail in check.images[0].detail
    assert server.paths() == ["/v2/"]


def test_401_without_challenge_is_protocol_error(server: RecordingServer, waits: list[float]) -> None:
    server.handler = lambda r: Reply(401)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]


def test_not_a_registry(server: RecordingServer, waits: list[float]) -> None:
    server.handler = lambda r: Reply(404)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]
    assert "unexpected HTTP 404" in check.images[0].detail


def test_too_many_redirects(server: RecordingServer, waits: list[float]) -> None:
    server.handler = lambda r: Reply(302, [("Location", "/v2/")])
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.UNREACHABLE]
    assert "redirects" in check.images[0].detail
    assert len(server.requests) == 4  # the request and 3 redirects


def test_same_origin_redirect_keeps_basic_auth(server: RecordingServer, waits: list[float]) -> None:
    fake = registry(server, "basic")
    original = fake.handle

    def handle(request: LoggedRequest) -> Reply:
        if request.path == "/v2/acme/app/manifests/old":
            return Reply(307, [("Location", "/v2/acme/app/manifests/1.0")])
        return original(request)

    server.handler = handle
    assert client_for(server, waits).check_pull(CRED, ["acme/app:old"]).ok


# --- configuration and refusals ---------------------------------------------------------------------


def test_plain_http_to_non_loopback_registry_is_refused() -> None:
    for registry_url in ("http://10.0.0.5:5000", "http://ghcr.io", "http://[fe80::1]"):
        with pytest.raises(RegistryError, match="http"):
            RegistryClient(registry_url)


@pytest.mark.parametrize(
    ("given", "registry_name"),
    [
        ("ghcr.io", "ghcr.io"),
        ("https://ghcr.io/", "ghcr.io"),
        ("https://GHCR.io:443", "ghcr.io"),
        ("docker.io", "registry-1.docker.io"),
        ("index.docker.io", "registry-1.docker.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://localhost:5000", "localhost:5000"),
        ("https://localhost:5000", "localhost:5000"),
        ("[::1]:5000", "[::1]:5000"),
    ],
)
def test_registry_names(given: str, registry_name: str) -> None:
    assert RegistryClient(given).registry == registry_name


@pytest.mark.parametrize(
    "bad", ["", "ftp://x", "https://u:p@ghcr.io", "ghcr.io/path", "ghcr.io:0", "169.254.169.254"]
)
def test_invalid_registries(bad: str) -> None:
    with pytest.raises(RegistryError):
        RegistryClient(bad)


def test_userinfo_in_registry_url_is_not_echoed() -> None:
    with pytest.raises(RegistryError) as err:
        RegistryClient(f"https://{USER}:{PASSWORD}@ghcr.io")
    assert PASSWORD not in str(err.value)


def test_images_on_another_registry_are_refused(server: RecordingServer, waits: list[float]) -> None:
    registry(server)
    client = client_for(server, waits)
    images: list[str | ImageRef] = [
        "ghcr.io/acme/app:1",
        "127.0.0.1:1/acme/app",
        ImageRef("quay.io", "acme/app", "1"),
    ]
    for image in images:
        with pytest.raises(RegistryError, match="not on registry"):
            client.check_pull(CRED, [image])
    with pytest.raises(RegistryError):
        client.check_pull(CRED, "acme/app:1.0")  # a bare string is not a list of images
    assert server.requests == []


def test_imageref_objects_are_accepted(server: RecordingServer, waits: list[float]) -> None:
    registry(server)
    ref = ImageRef(server.host_port, "acme/app", "1.0")
    assert client_for(server, waits).check_pull(CRED, [ref]).ok


def test_username_with_colon_is_refused(server: RecordingServer, waits: list[float]) -> None:
    registry(server)
    with pytest.raises(RegistryError, match="':'"):
        client_for(server, waits).check_pull(Credential("a:b", PASSWORD), ["acme/app:1.0"])
    assert server.requests == []


def test_realm_on_another_port_needs_realm_hosts(waits: list[float]) -> None:
    with RecordingServer() as reg, RecordingServer() as auth:
        token_server = FakeTokenRegistry(auth, users={USER: PASSWORD}, grants={USER: {"acme/app"}}).install()
        fake = registry(reg, realm=f"{auth.url}/token")
        fake.issued = token_server.issued  # the registry accepts what the token server issues
        with pytest.raises(UntrustedRealmError) as err:
            client_for(reg, waits).check_pull(CRED, ["acme/app:1.0"])
        message = str(err.value)
        assert auth.host_port in message and "regcred:realm-hosts" in message
        assert PASSWORD not in message
        assert auth.requests == []
        # A bare host means the default port (80 for http): still not this realm.
        with pytest.raises(UntrustedRealmError):
            client_for(reg, waits, realm_hosts=["127.0.0.1"]).check_pull(CRED, ["acme/app:1.0"])
        assert auth.requests == []
        check = client_for(reg, waits, realm_hosts=[auth.host_port]).check_pull(CRED, ["acme/app:1.0"])
        assert check.ok
        assert [r.path for r in auth.requests] == ["/token"]


def test_realm_hosts_as_tag_string(waits: list[float]) -> None:
    client = RegistryClient("ghcr.io", realm_hosts="auth.example, other.example:8443")
    assert client._realm_hosts == frozenset({("auth.example", None), ("other.example", 8443)})
    with pytest.raises(RegistryError, match="invalid realm host"):
        RegistryClient("ghcr.io", realm_hosts=["https://auth.example/token"])


def test_pull_check_properties() -> None:
    def image(status: PullStatus) -> ImageCheck:
        return ImageCheck("r/x:1", status, "")

    assert not PullCheck("r", ()).ok
    assert PullCheck("r", (image(PullStatus.OK),)).ok
    mixed = PullCheck("r", (image(PullStatus.OK), image(PullStatus.RATE_LIMITED)))
    assert not mixed.ok and mixed.could_not_check and not mixed.credentials_rejected
    assert PullCheck("r", (image(PullStatus.UNREACHABLE),)).could_not_check
    assert PullCheck("r", (image(PullStatus.CREDENTIALS_REJECTED),)).credentials_rejected
    assert not PullCheck("r", (image(PullStatus.NO_ACCESS), image(PullStatus.NOT_FOUND))).could_not_check


def test_empty_image_list(server: RecordingServer, waits: list[float]) -> None:
    check = client_for(server, waits).check_pull(CRED, [])
    assert check == PullCheck(server.host_port, ())
    assert server.requests == []


def test_client_owns_and_closes_its_session() -> None:
    with RegistryClient("ghcr.io") as client:
        assert client.registry == "ghcr.io"
