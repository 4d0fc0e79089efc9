"""RegistryClient.check_pull against real HTTP servers on 127.0.0.1 (no mocks of the HTTP stack).

The client talks through regcred's transport (`regcred.http.transport.Transport`): retries, Retry-After and
redirects are the transport's, the registry and its trusted token realms are `Origin`s from configuration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from regcred.errors import ConfigurationError, DestinationRefused, RegistryError, UntrustedRealmError
from regcred.hosts import Origin
from regcred.http.deadline import Deadline
from regcred.http.transport import Transport, retry_policy
from regcred.registry import (
    DOCKER_HUB,
    MANIFEST_MEDIA_TYPES,
    Credential,
    ImageCheck,
    ImageRef,
    PullCheck,
    PullStatus,
    RegistryClient,
    registry_name,
)
from regcred.routing import Deployment, parse_origin
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

_transports: list[Transport] = []


@pytest.fixture(autouse=True)
def _close_transports() -> Iterator[None]:
    yield
    while _transports:
        _transports.pop().close()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


@pytest.fixture
def waits() -> list[float]:
    return []


def origin_of(server: RecordingServer) -> Origin:
    return Origin("http", server.host, server.port)


def transport_for(
    *local_origins: Origin, waits: list[float] | None = None, max_attempts: int = 3, **options: Any
) -> Transport:
    settings: dict[str, Any] = {"timeout": (1.0, 2.0), "retry": retry_policy(max_attempts)}
    if waits is not None:
        settings["sleep"] = waits.append
    settings.update(options)
    transport = Transport(local_origins=local_origins, **settings)
    _transports.append(transport)
    return transport


def client_for(
    server: RecordingServer,
    waits: list[float],
    *,
    trusted_realms: tuple[Origin, ...] = (),
    local_origins: tuple[Origin, ...] = (),
    clock: Callable[[], float] = time.monotonic,
    **options: Any,
) -> RegistryClient:
    origin = origin_of(server)
    transport = transport_for(origin, *local_origins, waits=waits, **options)
    return RegistryClient(origin, trusted_realms=trusted_realms, transport=transport, clock=clock)


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
    assert (head.header("User-Agent") or "").startswith("regcred/")
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
    client = client_for(server, waits, clock=lambda: now[0])
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
    assert "over" in check.images[0].detail and "bytes" in check.images[0].detail
    assert server.paths("HEAD") == []


def test_huge_manifest_headers_are_unreachable_not_a_crash(
    server: RecordingServer, waits: list[float]
) -> None:
    registry(server, extra_headers=[(f"X-Filler-{i}", "f" * 1000) for i in range(90)])
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.UNREACHABLE] * 2
    assert "headers over" in check.images[0].detail


def test_anonymous_v2_then_challenge_on_manifest(server: RecordingServer, waits: list[float]) -> None:
    # Some registries open /v2/ to everyone and challenge per repository.
    fake = registry(server)
    original = fake.handle
    server.handler = lambda r: Reply(200) if r.path == "/v2/" else original(r)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert check.ok
    assert server.paths().count("/token") == 1


# --- open registries: what pulls without credentials proves nothing -----------------------------------


def test_anonymous_registry_is_open_not_ok(server: RecordingServer, waits: list[float]) -> None:
    server.handler = sequence(Reply(200), Reply(200), Reply(404))
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/app:2.0"])
    assert statuses(check) == [PullStatus.OPEN, PullStatus.NOT_FOUND]
    assert check.images[0].detail == "manifest served without credentials (the credential was not exercised)"
    assert check.images[0].http_status == 200
    assert not check.ok
    assert all(r.header("Authorization") is None for r in server.requests)


def test_a_check_where_every_image_is_open_is_not_ok(server: RecordingServer, waits: list[float]) -> None:
    server.handler = lambda r: Reply(200)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.OPEN] * 2
    assert not check.ok and check.unproven and not check.failed and not check.could_not_check
    assert "acme/app:1.0: open" in check.summary()


def test_anonymous_check_of_an_open_registry_is_ok(server: RecordingServer, waits: list[float]) -> None:
    # Asked anonymously, an open image is simply one that pulls.
    server.handler = lambda r: Reply(200)
    check = client_for(server, waits).check_pull(None, ["acme/app:1.0"])
    assert statuses(check) == [PullStatus.OK] and check.ok


def test_prove_marks_images_that_also_pull_anonymously(server: RecordingServer, waits: list[float]) -> None:
    registry(
        server,
        anonymous_repositories={"acme/public"},
        manifests={("acme/app", "1.0"), ("acme/public", "latest")},
    )
    client = client_for(server, waits)
    assert statuses(client.check_pull(CRED, ["acme/app:1.0", "acme/public"])) == [PullStatus.OK] * 2

    check = client.check_pull(CRED, ["acme/app:1.0", "acme/public"], prove=True)

    assert statuses(check) == [PullStatus.OK, PullStatus.OPEN]
    assert "without credentials" in check.images[1].detail
    assert check.ok  # the credential was needed for acme/app
    only_public = client.check_pull(CRED, ["acme/public"], prove=True)
    assert statuses(only_public) == [PullStatus.OPEN]
    assert not only_public.ok and only_public.unproven
    # The anonymous pass really was anonymous.
    anonymous_tokens = [
        r for r in server.requests if r.path == "/token" and r.header("Authorization") is None
    ]
    assert anonymous_tokens


def test_duplicate_images_are_checked_once(server: RecordingServer, waits: list[float]) -> None:
    registry(server)
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0", "acme/app:1.0", "acme/app"])
    assert statuses(check) == [PullStatus.OK, PullStatus.OK, PullStatus.NOT_FOUND]
    assert len(server.paths("HEAD")) == 2


def test_environment_proxies_and_netrc_are_never_used(
    server: RecordingServer, waits: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What requests' Session took from the environment (proxies, ~/.netrc) has no way into the transport.
    with RecordingServer("127.0.0.2") as proxy:
        netrc = tmp_path / ".netrc"
        netrc.write_text(f"machine {server.host} login netrc-user password netrc-password-41\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("NETRC", str(netrc))
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        registry(server, anonymous_repositories={"acme/app"}, manifests={("acme/app", "1.0")})
        server.handler = sequence(Reply(200))
        check = client_for(server, waits).check_pull(None, ["acme/app:1.0"])
        assert check.ok
        assert server.paths() == ["/v2/", "/v2/acme/app/manifests/1.0"]
        assert all(r.header("Authorization") is None for r in server.requests)
        assert proxy.requests == []


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


def test_retry_after_beyond_the_checks_deadline_is_not_waited_for(
    server: RecordingServer, waits: list[float]
) -> None:
    fake = registry(server)
    fake.manifest_override = sequence(Reply(429, [("Retry-After", "15")]), Reply(200))
    check = client_for(server, waits).check_pull(CRED, ["acme/app:1.0"], deadline=Deadline(5))
    assert statuses(check) == [PullStatus.RATE_LIMITED]
    assert waits == []


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
    origin = Origin("http", "127.0.0.1", closed_port())
    client = RegistryClient(origin, transport=transport_for(origin, waits=waits, max_attempts=3))
    started = time.monotonic()
    check = client.check_pull(CRED, ["acme/app:1.0", "acme/other:2"])
    assert statuses(check) == [PullStatus.UNREACHABLE] * 2
    assert "connection failed after 3 attempt(s)" in check.images[0].detail
    assert len(waits) == 2  # 3 attempts, 2 backoffs, for the whole check (not per image)
    assert time.monotonic() - started < 10  # the backoffs were recorded, not slept
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


def test_the_check_deadline_bounds_a_slow_registry(server: RecordingServer) -> None:
    def slow(_: LoggedRequest) -> Reply:
        time.sleep(0.5)
        return Reply(401, [("WWW-Authenticate", 'Basic realm="r"')])

    server.handler = slow
    origin = origin_of(server)
    client = RegistryClient(
        origin, transport=transport_for(origin, max_attempts=20, timeout=(1.0, 0.4), sleep=time.sleep)
    )
    started = time.monotonic()
    check = client.check_pull(CRED, ["acme/app:1.0", "acme/other:2"], deadline=Deadline(1.0))
    assert statuses(check) == [PullStatus.UNREACHABLE] * 2
    assert time.monotonic() - started < 6


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
    assert "without challenge" in check.images[0].detail


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
    followed = [r for r in server.requests if r.path == "/v2/acme/app/manifests/1.0"]
    assert [r.header("Authorization") for r in followed] == [basic_header(USER, PASSWORD)]


# --- configuration and refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [Origin("http", "10.0.0.5", 5000), Origin("http", "ghcr.io", 80), Origin("http", "fe80::1", 80)],
)
def test_plain_http_to_non_loopback_registry_is_refused(origin: Origin) -> None:
    # Configuration never yields such an origin ...
    with pytest.raises(ConfigurationError, match="plain http"):
        parse_origin(origin.url(), what="REGCRED_ALLOWED_REGISTRY_HOSTS")
    # ... and the transport refuses it anyway, before resolving or connecting.
    calls: list[tuple[str, int]] = []
    transport = transport_for(origin, resolver=lambda host, port: calls.append((host, port)) or [])
    with pytest.raises(DestinationRefused, match="plain http"):
        RegistryClient(origin, transport=transport).check_pull(CRED, ["acme/app:1.0"])
    assert calls == []


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("ghcr.io", "ghcr.io"),
        ("https://ghcr.io/", "ghcr.io"),
        ("https://GHCR.io:443", "ghcr.io"),
        ("ghcr.io:8443", "ghcr.io:8443"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://127.0.0.1:80", "127.0.0.1"),
        ("https://localhost:5000", "localhost:5000"),
        ("[::1]:5000", "[::1]:5000"),
        ("http://[::1]:5000", "[::1]:5000"),
    ],
)
def test_registry_names(given: str, name: str) -> None:
    origin = parse_origin(given, what="REGCRED_ALLOWED_REGISTRY_HOSTS")
    assert registry_name(origin) == name
    assert RegistryClient(origin).registry == name


def test_docker_hub_names_are_one_registry() -> None:
    client = RegistryClient(Origin("https", DOCKER_HUB, 443))
    assert client.registry == "registry-1.docker.io"
    refs = client.resolve_images(
        ["alpine", "docker.io/library/alpine", "index.docker.io/library/alpine:3", "acme/app"]
    )
    assert [str(r) for r in refs] == [
        "registry-1.docker.io/library/alpine:latest",
        "registry-1.docker.io/library/alpine:latest",
        "registry-1.docker.io/library/alpine:3",
        "registry-1.docker.io/acme/app:latest",
    ]


@pytest.mark.parametrize("bad", ["", "ftp://x", "https://u:p@ghcr.io", "ghcr.io/path", "ghcr.io:0"])
def test_invalid_registries(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_origin(bad, what="REGCRED_ALLOWED_REGISTRY_HOSTS")


def test_a_registry_must_be_an_origin() -> None:
    with pytest.raises(TypeError, match="Origin"):
        RegistryClient("ghcr.io")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "origin",
    [
        Origin("https", "169.254.169.254", 443),
        Origin("https", "fd00:ec2::254", 443),
        Origin("https", "2852039166", 443),
    ],
)
def test_metadata_registry_is_refused_before_any_connection(origin: Origin) -> None:
    calls: list[tuple[str, int]] = []
    transport = transport_for(origin, resolver=lambda host, port: calls.append((host, port)) or [])
    with pytest.raises(DestinationRefused, match="refusing"):
        RegistryClient(origin, transport=transport).check_pull(CRED, ["acme/app:1.0"])
    assert calls == []


def test_userinfo_in_registry_url_is_not_echoed() -> None:
    # The first line of defence is the transport's: it never quotes user info, even for a value nothing
    # remembered as a secret.
    fresh = "ui-Unremembered-Passw0rd-5150"
    transport = transport_for()
    with pytest.raises(DestinationRefused) as refused:
        transport.request("GET", f"https://{USER}:{fresh}@ghcr.io/v2/", deadline=Deadline(5))
    assert fresh not in str(refused.value) and USER not in str(refused.value)
    # Configuration refuses it too; its message is scrubbed of every known secret.
    with pytest.raises(ConfigurationError) as err:
        parse_origin(f"https://{USER}:{PASSWORD}@ghcr.io", what="REGCRED_ALLOWED_REGISTRY_HOSTS")
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


def test_realm_on_another_port_needs_to_be_trusted(waits: list[float]) -> None:
    with RecordingServer() as reg, RecordingServer() as auth:
        token_server = FakeTokenRegistry(auth, users={USER: PASSWORD}, grants={USER: {"acme/app"}}).install()
        fake = registry(reg, realm=f"{auth.url}/token")
        fake.issued = token_server.issued  # the registry accepts what the token server issues
        auth_origin = origin_of(auth)
        with pytest.raises(UntrustedRealmError) as err:
            client_for(reg, waits, local_origins=(auth_origin,)).check_pull(CRED, ["acme/app:1.0"])
        message = str(err.value)
        assert auth.host_port in message and "regcred:realm-hosts" in message
        assert "REGCRED_ALLOWED_REGISTRY_HOSTS" in message
        assert PASSWORD not in message
        assert auth.requests == []
        # The same host on its default port is another origin: still not this realm.
        default_port = Origin("http", "127.0.0.1", 80)
        with pytest.raises(UntrustedRealmError):
            client_for(reg, waits, trusted_realms=(default_port,), local_origins=(auth_origin,)).check_pull(
                CRED, ["acme/app:1.0"]
            )
        assert auth.requests == []
        trusted = client_for(reg, waits, trusted_realms=(auth_origin,), local_origins=(auth_origin,))
        check = trusted.check_pull(CRED, ["acme/app:1.0"])
        assert check.ok
        assert [r.path for r in auth.requests] == ["/token"]


def test_trusted_realms_from_the_deployment_allow_list() -> None:
    deployment = Deployment.from_env({"REGCRED_ALLOWED_REGISTRY_HOSTS": "auth.example, other.example:8443"})
    assert deployment.registry_hosts == frozenset(
        {Origin("https", "auth.example", 443), Origin("https", "other.example", 8443)}
    )
    client = RegistryClient(Origin("https", "ghcr.io", 443), trusted_realms=deployment.registry_hosts)
    assert (
        client._check_realm("https://other.example:8443/token?x=1#f")
        == "https://other.example:8443/token?x=1"
    )
    with pytest.raises(UntrustedRealmError):
        client._check_realm("https://other.example/token")  # port 443: not the trusted origin
    with pytest.raises(ConfigurationError, match="not a host"):
        Deployment.from_env({"REGCRED_ALLOWED_REGISTRY_HOSTS": "https://auth.example/token"})


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
    # Open images pull but prove nothing: ok only when the credential was exercised for at least one.
    assert PullCheck("r", (image(PullStatus.OK), image(PullStatus.OPEN))).ok
    only_open = PullCheck("r", (image(PullStatus.OPEN), image(PullStatus.OPEN)))
    assert not only_open.ok and only_open.unproven
    assert not PullCheck("r", (image(PullStatus.OK), image(PullStatus.OPEN))).unproven
    assert not PullCheck("r", ()).unproven


def test_empty_image_list(server: RecordingServer, waits: list[float]) -> None:
    check = client_for(server, waits).check_pull(CRED, [])
    assert check == PullCheck(server.host_port, ())
    assert server.requests == []


def test_client_owns_and_closes_only_its_own_transport(server: RecordingServer) -> None:
    registry(server, "basic")
    with RegistryClient(origin_of(server)) as client:
        assert client.check_pull(CRED, ["acme/app:1.0"]).ok
        owned = client._transport
        assert owned._pools
    assert owned._pools == {}
    shared = transport_for(origin_of(server))
    with RegistryClient(origin_of(server), transport=shared) as client:
        assert client.check_pull(CRED, ["acme/app:1.0"]).ok
    assert shared._pools  # the caller's transport stays open


def test_a_remote_registry_is_never_a_local_destination() -> None:
    # The transport a client makes for itself lets only a loopback registry reach loopback addresses.
    with RegistryClient(Origin("https", "ghcr.io", 443)) as client:
        assert client.registry == "ghcr.io"
        assert client._transport.local_origins == frozenset()
    local = Origin("http", "127.0.0.1", 5000)
    with RegistryClient(local) as client:
        assert client._transport.local_origins == frozenset({local})
