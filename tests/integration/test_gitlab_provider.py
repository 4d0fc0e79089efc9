"""The GitLab provider against the GitLab fake (a real HTTP server on loopback, in this process), and the
fake's documented behaviours that the provider relies on."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.fakes.gitlab import PROFILE, Config, make_server
from devstack.fakes.registry_tokens import b64url_decode, ensure_signing_material
from regcred import labels, providers
from regcred.config import SecretConfig
from regcred.errors import ConfigurationError, MintOutcomeUnknown, ProviderAuthError, ProviderError
from regcred.hosts import Origin
from regcred.http.transport import Transport
from regcred.providers import gitlab as gitlab_module
from regcred.providers.base import AdminCredential
from regcred.providers.gitlab import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_USERNAME,
    SPEC,
    GitLabProvider,
    expiry_date,
)
from regcred.revocation import RevokeResult, revoke_minted
from regcred.routing import Deployment, resolve
from tests import leak_guard
from tests.registry_servers import LoggedRequest, RecordingServer, Reply

pytestmark = pytest.mark.stack

ADMIN = "gitlab-admin"
ADMIN_TOKEN = "glpat-admin-" + uuid.uuid4().hex
PROJECT = "acme/app"
REPO = "acme/app/api"
leak_guard.watch(ADMIN_TOKEN)
JSON = (("Content-Type", "application/json"),)


@dataclass
class Fake:
    origin: Origin
    state_dir: Path
    server: Any

    @property
    def url(self) -> str:
        return self.origin.url()

    def minted(self) -> list[str]:
        path = self.state_dir / "minted-secrets.jsonl"
        return [json.loads(line)["token"] for line in path.read_text().splitlines()] if path.exists() else []

    def fault(self, **spec: Any) -> None:
        assert requests.post(f"{self.url}/_fake/faults", json=spec, timeout=5).status_code == 201

    def api(
        self, method: str, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any
    ) -> requests.Response:
        headers = {"PRIVATE-TOKEN": token} if token else {}
        return requests.request(method, f"{self.url}/api/v4{path}", headers=headers, timeout=5, **kwargs)

    def realm(self, user: str | None, secret: str | None, *scopes: str) -> requests.Response:
        return requests.get(
            f"{self.url}{PROFILE.realm_path}",
            params={"service": PROFILE.service, "scope": list(scopes)},
            auth=(user, secret) if user is not None and secret is not None else None,
            timeout=5,
        )

    def granted(self, user: str, secret: str, repository: str = REPO) -> list[str]:
        """The actions the realm grants on ``repository`` (from the JWT's access claim); [] when refused."""
        reply = self.realm(user, secret, f"repository:{repository}:pull,push")
        if reply.status_code != 200:
            return []
        claims = json.loads(b64url_decode(reply.json()["token"].split(".")[1]))
        return sorted(a for item in claims["access"] if item["name"] == repository for a in item["actions"])

    def provider(self, **kwargs: Any) -> GitLabProvider:
        if "group" not in kwargs:
            kwargs.setdefault("project", PROJECT)
        token = kwargs.pop("token", ADMIN_TOKEN)
        transport = Transport(local_origins={self.origin}, sleep=lambda s: None)
        return GitLabProvider(token, api=self.origin, transport=transport, **kwargs)


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("gitlab-signing")
    key, cert = where / "signing.key", where / "signing.crt"
    ensure_signing_material(key, cert)
    return key, cert


def start(tmp_path: Path, signing: tuple[Path, Path], **overrides: Any) -> Iterator[Fake]:
    key, cert = signing
    state = tmp_path / "fake"
    config = Config(
        state_dir=state,
        admin_user=ADMIN,
        admin_secret=ADMIN_TOKEN,
        key_path=key,
        cert_path=cert,
        projects=overrides.pop("projects", [PROJECT, "acme/team/tool", "other/thing"]),
        service=PROFILE.service,
        issuer=PROFILE.issuer,
        **overrides,
    )
    server = make_server(config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    leak_guard.watch_minted(state / "minted-secrets.jsonl")
    try:
        yield Fake(Origin("http", "127.0.0.1", server.server_address[1]), state, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake(tmp_path: Path, signing: tuple[Path, Path]) -> Iterator[Fake]:
    yield from start(tmp_path, signing)


def label(name: str = "batch/gitlab", rotation: str | None = None) -> str:
    return labels.label_for(name, rotation or str(uuid.uuid4()), max_length=SPEC.label_max)


def no_secret_in(text: str, fake: Fake) -> None:
    assert ADMIN_TOKEN not in text
    for token in fake.minted():
        assert token not in text


# -- lifecycles ----------------------------------------------------------------------------------


def test_project_deploy_token_lifecycle(fake: Fake) -> None:
    provider = fake.provider()
    name = label()
    issued = provider.issue(name, datetime.now(UTC) + timedelta(days=30))
    assert issued.password.startswith("gldt-")
    assert issued.username == f"gitlab+deploy-token-{issued.token_id}"
    assert [t.token_id for t in provider.list_tokens() if t.label == name] == [issued.token_id]
    record = provider.describe_token(issued.token_id)
    assert record is not None and record.label == name and record.active
    assert fake.granted(issued.username, issued.password) == ["pull"]
    assert fake.granted("someone-else", issued.password) == []  # the username must be the token's
    assert fake.granted(issued.username, issued.password, "other/thing/img") == []
    provider.revoke(issued.token_id)
    provider.revoke(issued.token_id)  # already gone: not an error
    assert provider.describe_token(issued.token_id) is None
    assert all(t.token_id != issued.token_id for t in provider.list_tokens())
    assert fake.realm(issued.username, issued.password, f"repository:{REPO}:pull").status_code == 401


def test_group_deploy_token_pulls_from_every_project_of_the_group(fake: Fake) -> None:
    provider = fake.provider(group="acme")
    issued = provider.issue(label(), None)
    assert issued.expires_at is None
    assert fake.granted(issued.username, issued.password) == ["pull"]
    assert fake.granted(issued.username, issued.password, "acme/team/tool") == ["pull"]
    assert fake.granted(issued.username, issued.password, "other/thing") == []
    assert revoke_minted(provider, issued.token_id, "batch/gitlab") is RevokeResult.REVOKED
    assert fake.granted(issued.username, issued.password) == []


@pytest.mark.parametrize("where", [{"project": PROJECT}, {"group": "acme"}])
def test_access_token_lifecycle(fake: Fake, where: dict[str, str]) -> None:
    provider = fake.provider(token_kind=ACCESS_TOKEN, **where)
    wanted = datetime.now(UTC) + timedelta(days=10, minutes=5)
    issued = provider.issue(label(), wanted)
    assert issued.password.startswith("glpat-") and issued.username == ACCESS_TOKEN_USERNAME
    assert issued.expires_at is not None and issued.expires_at >= wanted
    assert issued.expires_at - wanted < timedelta(days=1)
    assert issued.expires_at.time().isoformat() == "00:00:00"
    kind = "projects" if "project" in where else "groups"
    ident = PROJECT.replace("/", "%2F") if "project" in where else "acme"
    created = fake.api("GET", f"/{kind}/{ident}/access_tokens/{issued.token_id}").json()
    assert created["access_level"] == 20 and created["scopes"] == ["read_registry"]
    assert any(t.token_id == issued.token_id for t in provider.list_tokens())
    assert fake.granted("any-name", issued.password) == ["pull"]
    assert fake.realm("", issued.password, f"repository:{REPO}:pull").status_code == 401  # blank username
    provider.revoke(issued.token_id)
    provider.revoke(issued.token_id)
    record = provider.describe_token(issued.token_id)
    assert record is None or not record.active
    assert all(t.token_id != issued.token_id for t in provider.list_tokens())
    assert fake.granted("any-name", issued.password) == []
    assert revoke_minted(provider, issued.token_id, "batch/gitlab").done


def test_the_listing_reads_every_page(fake: Fake) -> None:
    for kind in ("deploy-token", ACCESS_TOKEN):
        provider = fake.provider(token_kind=kind, page_size=3)
        minted = {provider.issue(label(rotation=f"r{i}"), None).token_id for i in range(8)}
        assert minted <= {t.token_id for t in provider.list_tokens()}


def test_labels_round_trip_at_the_vendor_limit(fake: Fake) -> None:
    secret = "batch/" + "x" * 300
    for kind in ("deploy-token", ACCESS_TOKEN):
        provider = fake.provider(token_kind=kind)
        name = labels.label_for(secret, "onboard-1", max_length=SPEC.label_max)
        assert len(name) == 255
        issued = provider.issue(name, None)
        record = provider.describe_token(issued.token_id)
        assert record is not None and record.label == name and labels.belongs_to(record.label, secret)
        assert [t.label for t in provider.list_tokens() if t.token_id == issued.token_id] == [name]


def test_revocation_follows_the_vendors_label(fake: Fake) -> None:
    provider = fake.provider()
    theirs = provider.issue(label("team-b/pull", "onboard-1"), None)
    assert revoke_minted(provider, theirs.token_id, "team-a/pull") is RevokeResult.NOT_MINTED_FOR_SECRET
    assert provider.describe_token(theirs.token_id) is not None
    assert revoke_minted(provider, theirs.token_id, "team-b/pull") is RevokeResult.REVOKED
    assert revoke_minted(provider, theirs.token_id, "team-b/pull") is RevokeResult.ALREADY_GONE


@pytest.mark.parametrize("bad", ["0", "01", "-1", "1a", "../1", "1/2", " 1", "", "1" * 20, "\u0661"])
def test_token_ids_are_strict(fake: Fake, bad: str) -> None:
    provider = fake.provider()
    assert not provider.valid_token_id(bad)
    assert revoke_minted(provider, bad, "batch/gitlab") is RevokeResult.INVALID_ID
    with pytest.raises(ProviderError, match="positive integer"):
        provider.revoke(bad)
    assert provider.valid_token_id("1") and provider.valid_token_id("123456789")


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, None, ProviderAuthError),
        (403, None, ProviderError),
        (404, {"message": "404 Project Not Found"}, ProviderError),
        (409, None, ProviderError),
        (422, None, ProviderError),
        (400, {"message": {"name": ["is too long (maximum is 255 characters)"]}}, ProviderError),
        (400, {"error": "scopes does not have a valid value"}, ProviderError),
        (500, None, ProviderError),
        (503, None, ProviderError),
    ],
)
def test_vendor_errors_on_mint_say_what_happened(fake: Fake, status: int, body: Any, expected: type) -> None:
    provider = fake.provider()
    spec: dict[str, Any] = {"method": "POST", "path": "/deploy_tokens$", "status": status}
    if body is not None:
        spec["body"] = body
    fake.fault(**spec)
    with pytest.raises(expected) as caught:
        provider.issue(label(), None)
    text = str(caught.value)
    assert f"HTTP {status}" in text and "GitLab POST /api/v4/projects/acme%2Fapp/deploy_tokens" in text
    no_secret_in(text, fake)
    if status == 401:
        assert "regcred:admin-secret" in text and "api scope" in text
    if status == 403:
        assert "Maintainer" in text
    if body is not None:
        assert (body.get("error") or "") in text
        if isinstance(body.get("message"), dict):
            assert "is too long" in text


def test_a_rate_limited_listing_names_retry_after(fake: Fake) -> None:
    provider = fake.provider()
    fake.fault(method="GET", path="/deploy_tokens$", status=429, headers={"Retry-After": "7"}, times=5)
    with pytest.raises(ProviderError, match=r"HTTP 429.*retry after 7 s") as caught:
        provider.list_tokens()
    no_secret_in(str(caught.value), fake)


def test_a_rejected_admin_token_names_the_admin_secret(fake: Fake) -> None:
    wrong = "glpat-wrong-" + uuid.uuid4().hex
    leak_guard.watch(wrong)
    with pytest.raises(
        ProviderAuthError, match=r"HTTP 401: 401 Unauthorized.*regcred:admin-secret"
    ) as caught:
        fake.provider(token=wrong).list_tokens()
    assert wrong not in str(caught.value)


def test_an_unknown_project_is_a_clear_404(fake: Fake) -> None:
    with pytest.raises(ProviderError, match="HTTP 404: 404 Project Not Found") as caught:
        fake.provider(project="acme/nope").issue(label(), None)
    no_secret_in(str(caught.value), fake)


def test_group_tokens_need_the_owner_role(tmp_path: Path, signing: tuple[Path, Path]) -> None:
    for running in start(tmp_path, signing, admin_role="maintainer"):
        with pytest.raises(ProviderError, match=r"HTTP 403: 403 Forbidden.*Owner role") as caught:
            running.provider(group="acme").issue(label(), None)
        no_secret_in(str(caught.value), running)
        assert running.provider(group="acme").list_tokens() == []  # Maintainers may list
        with pytest.raises(ProviderError, match="HTTP 400: 400 Bad request - User does not have permission"):
            running.provider(group="acme", token_kind=ACCESS_TOKEN).issue(label(), None)
        issued = running.provider().issue(label(), None)  # project tokens need Maintainer only
        running.provider().revoke(issued.token_id)


@pytest.mark.parametrize("kind", ["deploy-token", ACCESS_TOKEN])
def test_a_mint_without_answer_is_found_by_its_label(fake: Fake, kind: str) -> None:
    provider = fake.provider(token_kind=kind)
    collection = "deploy_tokens" if kind == "deploy-token" else "access_tokens"
    fake.fault(method="POST", path=f"/{collection}$", drop=True, after=True)
    name = label()
    with pytest.raises(MintOutcomeUnknown) as caught:
        provider.issue(name, None)
    no_secret_in(str(caught.value), fake)
    found = [t for t in provider.list_tokens() if t.label == name]
    assert len(found) == 1
    assert revoke_minted(provider, found[0].token_id, "batch/gitlab") is RevokeResult.REVOKED


def test_a_502_to_a_mint_is_an_unknown_outcome(fake: Fake) -> None:
    fake.fault(method="POST", path="/deploy_tokens$", status=502, after=True)
    with pytest.raises(MintOutcomeUnknown, match="HTTP 502"):
        fake.provider().issue(label(), None)


def test_access_token_lifetime_is_checked_before_sending(fake: Fake) -> None:
    provider = fake.provider(token_kind=ACCESS_TOKEN)
    with pytest.raises(ProviderError, match="at most 365 days"):
        provider.issue(label(), datetime.now(UTC) + timedelta(days=366))
    issued = provider.issue(label(), datetime.now(UTC) + timedelta(days=SPEC.lifetime.max_s // 86400))
    assert issued.expires_at is not None


def test_expiry_dates_round_up() -> None:
    assert expiry_date(datetime(2027, 1, 1, tzinfo=UTC)) == date(2027, 1, 1)
    assert expiry_date(datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)) == date(2027, 1, 2)
    assert expiry_date(datetime(2027, 1, 1, 23, 30, tzinfo=UTC)) == date(2027, 1, 2)
    # 01:30 at UTC+2 is 23:30 UTC the day before: the token must live into 2 January (UTC)
    plus_two = timezone(timedelta(hours=2))
    assert expiry_date(datetime(2027, 1, 2, 1, 30, tzinfo=plus_two)) == date(2027, 1, 2)


# -- hostile or odd API servers -------------------------------------------------------------------


def on(server: RecordingServer, **kwargs: Any) -> GitLabProvider:
    origin = Origin("http", "127.0.0.1", server.port)
    return GitLabProvider(ADMIN_TOKEN, api=origin, transport=Transport(local_origins={origin}), **kwargs)


def _token(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"regcred t{i}", "username": f"gitlab+deploy-token-{i}", "revoked": False}


def test_x_next_page_is_followed_when_there_is_no_link() -> None:
    def handle(request: LoggedRequest) -> Reply:
        page = int(request.query.get("page", ["1"])[0])
        nxt = (("x-next-page", str(page + 1)),) if page < 3 else (("x-next-page", ""),)
        return Reply(200, JSON + nxt, json.dumps([_token(page * 10 + j) for j in range(2)]).encode())

    with RecordingServer("127.0.0.1", handle) as server:
        provider = on(server, project="1")
        assert len(provider.list_tokens()) == 6
        assert [r.query["page"] for r in server.requests] == [["1"], ["2"], ["3"]]
        assert all(r.header("PRIVATE-TOKEN") == ADMIN_TOKEN for r in server.requests)


def test_a_pagination_link_to_another_host_is_refused() -> None:
    with RecordingServer("127.0.0.2") as elsewhere:

        def handle(request: LoggedRequest) -> Reply:
            link = (("Link", f'<{elsewhere.url}/api/v4/projects/1/deploy_tokens?page=2>; rel="next"'),)
            return Reply(200, JSON + link, json.dumps([_token(1)]).encode())

        with RecordingServer("127.0.0.1", handle) as server:
            provider = on(server, project="1")
            with pytest.raises(ProviderError, match="must stay on it"):
                provider.list_tokens()
        assert elsewhere.requests == []


def test_a_create_reply_without_username_is_an_unknown_outcome() -> None:
    def handle(request: LoggedRequest) -> Reply:
        return Reply(201, JSON, json.dumps({"id": 5, "name": "x", "token": "gldt-" + "a" * 20}).encode())

    with RecordingServer("127.0.0.1", handle) as server:
        provider = on(server, group="acme")
        with pytest.raises(MintOutcomeUnknown, match="username"):
            provider.issue("regcred x", None)


def _revoke_server(active: bool) -> RecordingServer:
    def handle(request: LoggedRequest) -> Reply:
        if request.method == "DELETE":
            return Reply(
                400, JSON, json.dumps({"message": "400 Bad request - Failed to find bot user"}).encode()
            )
        record = {"id": 7, "name": "regcred x", "revoked": not active, "active": active, "expires_at": None}
        return Reply(200, JSON, json.dumps(record).encode())

    return RecordingServer("127.0.0.1", handle)


@pytest.mark.parametrize("active", [False, True])
def test_a_400_to_revoking_an_access_token_counts_only_if_it_is_dead(active: bool) -> None:
    with _revoke_server(active) as server:
        provider = on(server, project="acme/app", token_kind=ACCESS_TOKEN)
        if active:
            with pytest.raises(ProviderError, match="HTTP 400: 400 Bad request - Failed to find bot user"):
                provider.revoke("7")
        else:
            provider.revoke("7")
        assert server.paths() == [
            "/api/v4/projects/acme%2Fapp/access_tokens/7",
            "/api/v4/projects/acme%2Fapp/access_tokens/7",
        ]


# -- configuration --------------------------------------------------------------------------------


def build(tags: dict[str, str], api: str = "http://127.0.0.1:9", registry: str = "127.0.0.1:8") -> Any:
    base = {
        "regcred:managed": "true",
        "regcred:provider": "gitlab",
        "regcred:api": api,
        "regcred:registry": registry,
    }
    cfg = SecretConfig.from_tags({**base, **tags}, "batch/gitlab")
    deployment = Deployment(
        registry_hosts=frozenset({Origin("http", "127.0.0.1", 8)}),
        api_hosts=frozenset({Origin("http", "127.0.0.1", 9)}),
    )
    routing = resolve(SPEC, cfg, deployment)
    admin = AdminCredential({"username": ADMIN, "password": ADMIN_TOKEN})
    return providers.build(cfg, routing, admin, transport=Transport(), secret_name="batch/gitlab")


def test_build_reads_the_settings() -> None:
    provider = build({"regcred:group": "acme/team", "regcred:token-kind": "access-token"})
    assert isinstance(provider, GitLabProvider) and provider.kind == ACCESS_TOKEN
    assert provider.where == "group acme/team"
    assert build({"regcred:project": "42"}).where == "project 42"


@pytest.mark.parametrize(
    "tags",
    [{}, {"regcred:project": "acme/app", "regcred:group": "acme"}],
)
def test_build_needs_exactly_one_of_project_and_group(tags: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match=r"--project.*--group"):
        build(tags)


@pytest.mark.parametrize(
    "tags",
    [
        {"regcred:project": "app"},  # no namespace
        {"regcred:project": "acme/../app"},
        {"regcred:project": "acme/app?x=1"},
        {"regcred:group": "-acme"},
        {"regcred:token-kind": "pat", "regcred:project": "acme/app"},
    ],
)
def test_bad_settings_are_refused(tags: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        build(tags)


def test_gitlab_com_and_self_managed_hosts_are_never_mixed() -> None:
    cfg = SecretConfig.from_tags(
        {"regcred:managed": "true", "regcred:provider": "gitlab", "regcred:project": "acme/app"}, "s"
    )
    routing, com = resolve(SPEC, cfg, Deployment()), Origin("https", "gitlab.com", 443)
    assert routing.registry.host == "registry.gitlab.com" and routing.api == com and com in routing.realms
    admin = AdminCredential({"password": ADMIN_TOKEN})
    assert isinstance(providers.build(cfg, routing, admin, transport=Transport()), GitLabProvider)
    mixed = SecretConfig.from_tags({**cfg.tags, "regcred:registry": "registry.example.com"}, "s")
    deployment = Deployment(registry_hosts=frozenset({Origin("https", "registry.example.com", 443)}))
    with pytest.raises(ConfigurationError, match="--registry and --api"):
        providers.build(mixed, resolve(SPEC, mixed, deployment), admin, transport=Transport())


def test_the_spec_declares_everything() -> None:
    for name in ("title", "credential", "setup", "admin_permissions", "username_form", "realm_note"):
        assert getattr(SPEC, name), name
    assert SPEC.cannot and SPEC.admin_fields and SPEC.label_max == 255
    assert [s.name for s in SPEC.settings] == ["project", "group", "token-kind"]
    assert SPEC.lifetime.max_s is not None and SPEC.lifetime.max_s < 365 * 86400
    assert "never calls" in str(gitlab_module.__doc__) and "/rotate" in str(gitlab_module.__doc__)


# -- the fake's documented behaviours -------------------------------------------------------------


def test_fake_pagination_headers(fake: Fake) -> None:
    for i in range(5):
        assert (
            fake.api(
                "POST",
                "/projects/acme%2Fapp/deploy_tokens",
                json={"name": f"t{i}", "scopes": ["read_registry"]},
            ).status_code
            == 201
        )
    reply = fake.api(
        "GET", "/projects/acme%2Fapp/deploy_tokens", params={"per_page": 2, "page": 2, "active": "true"}
    )
    assert reply.status_code == 200 and len(reply.json()) == 2
    headers = reply.headers
    assert (headers["x-page"], headers["x-per-page"], headers["x-total"], headers["x-total-pages"]) == (
        "2",
        "2",
        "5",
        "3",
    )
    assert (headers["x-next-page"], headers["x-prev-page"]) == ("3", "1")
    for rel in ("prev", "next", "first", "last"):
        assert f'rel="{rel}"' in headers["Link"]
    assert "active=true" in headers["Link"] and "page=3" in headers["Link"]
    last = fake.api("GET", "/projects/acme%2Fapp/deploy_tokens", params={"per_page": 500, "page": 1})
    assert last.headers["x-per-page"] == "100" and last.headers["x-next-page"] == ""
    assert 'rel="next"' not in last.headers["Link"]


def test_fake_error_shapes(fake: Fake) -> None:
    assert fake.api("GET", "/user", token=None).json() == {"message": "401 Unauthorized"}
    assert fake.api("GET", "/user", token="glpat-nope").status_code == 401
    assert fake.api("GET", "/user").json()["username"] == ADMIN
    assert fake.api("GET", "/projects/acme%2Fnope").json() == {"message": "404 Project Not Found"}
    assert fake.api("GET", "/groups/nope").json() == {"message": "404 Group Not Found"}
    assert fake.api("GET", "/projects/acme%2Fapp").json()["path_with_namespace"] == PROJECT
    project_id = fake.api("GET", "/projects/acme%2Fapp").json()["id"]
    assert fake.api("GET", f"/projects/{project_id}").json()["path_with_namespace"] == PROJECT
    missing = fake.api("POST", "/projects/acme%2Fapp/deploy_tokens", json={"scopes": ["read_registry"]})
    assert (missing.status_code, missing.json()) == (400, {"error": "name is missing"})
    long = fake.api(
        "POST", "/projects/acme%2Fapp/deploy_tokens", json={"name": "x" * 256, "scopes": ["read_registry"]}
    )
    assert long.json() == {"message": "Name is too long (maximum is 255 characters)"}
    too_far = (date.today() + timedelta(days=400)).isoformat()
    far = fake.api(
        "POST",
        "/projects/acme%2Fapp/access_tokens",
        json={"name": "t", "scopes": ["read_registry"], "expires_at": too_far},
    )
    assert far.status_code == 400 and far.json()["message"].startswith(
        "400 Bad request - Expires at must be before"
    )
    gone = fake.api("GET", "/projects/acme%2Fapp/deploy_tokens/999")
    assert gone.json() == {"message": "404 Not found"}
    fake.fault(method="GET", path="/user$", status=429)
    limited = fake.api("GET", "/user")
    assert limited.status_code == 429 and limited.text == "Retry later\n"
    assert limited.headers["Retry-After"] and limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) > 0 and limited.headers["RateLimit-ResetTime"].endswith(
        "GMT"
    )


def test_fake_realm(fake: Fake) -> None:
    denied = fake.realm("u", "wrong", f"repository:{REPO}:pull")
    assert denied.status_code == 401
    assert denied.json() == {"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]}
    assert fake.realm(None, None, f"repository:{REPO}:pull").status_code == 403  # private, anonymous
    assert fake.granted(ADMIN, ADMIN_TOKEN) == ["pull", "push"]
    assert fake.granted("whoever", ADMIN_TOKEN) == ["pull", "push"]  # a PAT ignores the username
    wrong_service = requests.get(
        f"{fake.url}/jwt/auth", params={"service": "x"}, auth=(ADMIN, ADMIN_TOKEN), timeout=5
    )
    assert wrong_service.status_code == 404
    body = fake.realm(ADMIN, ADMIN_TOKEN, f"repository:{REPO}:pull").json()
    claims = json.loads(b64url_decode(body["token"].split(".")[1]))
    assert (claims["iss"], claims["aud"], body["expires_in"]) == ("gitlab-issuer", "container_registry", 300)
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["x5c"]


def test_fake_rotate_revokes_at_once_and_reuse_revokes_the_family(fake: Fake) -> None:
    base = "/projects/acme%2Fapp/access_tokens"
    first = fake.api("POST", base, json={"name": "t", "scopes": ["read_registry"], "access_level": 20}).json()
    second = fake.api("POST", f"{base}/{first['id']}/rotate").json()
    assert second["id"] != first["id"] and second["name"] == "t" and second["token"] != first["token"]
    assert fake.granted("x", first["token"]) == [] and fake.granted("x", second["token"]) == ["pull"]
    assert second["expires_at"] == (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    again = fake.api("POST", f"{base}/{first['id']}/rotate")
    assert again.status_code == 400 and "Token already revoked" in again.json()["message"]
    assert fake.api("GET", f"{base}/{second['id']}").json()["active"] is False
    assert fake.granted("x", second["token"]) == []
