"""The Harbor provider against the Harbor fake (a real HTTP server on loopback, in this process), the fake's
documented behaviours, and hostile or failing API servers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.fakes.harbor import PROFILE, Config, make_server
from devstack.fakes.registry_tokens import b64url_decode, ensure_signing_material
from regcred import labels
from regcred.config import SecretConfig
from regcred.errors import ConfigurationError, MintOutcomeUnknown, ProviderAuthError, ProviderError
from regcred.hosts import Origin
from regcred.http.transport import Transport
from regcred.providers import AdminCredential, BuildContext, settings_of
from regcred.providers import harbor as harbor_module
from regcred.providers.harbor import PLUGIN, SPEC, HarborProvider, duration_days, robot_name
from regcred.revocation import RevokeResult, orphans, revoke_minted
from regcred.routing import Routing
from tests import leak_guard
from tests.registry_servers import LoggedRequest, RecordingServer, Reply

pytestmark = pytest.mark.stack
ADMIN = "harbor-admin"
ADMIN_PASSWORD = "Adm1n-" + uuid.uuid4().hex
DEV = "dev-user"
DEV_PASSWORD = "Dev3l-" + uuid.uuid4().hex
PREFIX = "bot-acme$"  # not Harbor's default: regcred must use the name Harbor returns
SERVICE = "harbor-registry"
leak_guard.watch(ADMIN_PASSWORD, DEV_PASSWORD)
Auth = tuple[str, str] | None
ADMIN_AUTH = (ADMIN, ADMIN_PASSWORD)


@dataclass
class Fake:
    url: str
    origin: Origin
    state_dir: Path

    def provider(self, project: str = "acme", *, password: str = ADMIN_PASSWORD, **kw: Any) -> HarborProvider:
        transport = Transport(local_origins={self.origin}, sleep=lambda s: None)
        return HarborProvider(
            api=self.origin, project=project, username=kw.pop("username", ADMIN), password=password,
            transport=transport, **kw,
        )  # fmt: skip

    def fault(self, **spec: Any) -> None:
        assert requests.post(f"{self.url}/_fake/faults", json=spec, timeout=5).status_code == 201

    def api(self, method: str, path: str, *, auth: Auth = ADMIN_AUTH, **kw: Any) -> requests.Response:
        return requests.request(method, f"{self.url}/api/v2.0{path}", auth=auth, timeout=5, **kw)

    def realm(self, auth: Auth, *scopes: str) -> requests.Response:
        params: list[tuple[str, str]] = [("service", SERVICE)] + [("scope", s) for s in scopes]
        return requests.get(f"{self.url}/service/token", params=params, auth=auth, timeout=5)

    def access(self, auth: Auth, repo: str = "acme/api") -> list[str]:
        reply = self.realm(auth, f"repository:{repo}:pull,push")
        assert reply.status_code == 200
        claims = json.loads(b64url_decode(reply.json()["token"].split(".")[1]))
        return sorted(a for entry in claims["access"] if entry["name"] == repo for a in entry["actions"])

    def robots(self, auth: Auth = ADMIN_AUTH, **params: Any) -> requests.Response:
        return self.api("GET", "/robots", params={"q": "Level=project,ProjectID=1", **params}, auth=auth)

    def requests_log(self) -> list[dict[str, Any]]:
        lines = (self.state_dir / "requests.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]


@contextmanager
def _serve(tmp_path: Path, prefix: str) -> Iterator[Fake]:
    key, cert = tmp_path / "signing.key", tmp_path / "signing.crt"
    ensure_signing_material(key, cert)
    state = tmp_path / "harbor"
    config = Config(
        state_dir=state, admin_user=ADMIN, admin_secret=ADMIN_PASSWORD, key_path=key, cert_path=cert,
        projects=["acme", "other"], public_projects=["library"], members={DEV: (DEV_PASSWORD, "developer")},
        robot_prefix=prefix, service=SERVICE,
    )  # fmt: skip
    server = make_server(config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    leak_guard.watch_minted(state / "minted-secrets.jsonl")
    port = int(server.server_address[1])
    try:
        yield Fake(f"http://127.0.0.1:{port}", Origin("http", "127.0.0.1", port), state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    with _serve(tmp_path, PREFIX) as running:
        yield running


def minted(fake: Fake) -> list[str]:
    path = fake.state_dir / "minted-secrets.jsonl"
    return [json.loads(line)["token"] for line in path.read_text().splitlines()] if path.exists() else []


def no_secret_in(text: str, fake: Fake) -> None:
    for value in (ADMIN_PASSWORD, DEV_PASSWORD, *minted(fake)):
        assert value not in text


# -- the provider against the fake -------------------------------------------------------------------


def test_robot_lifecycle(fake: Fake) -> None:
    provider = fake.provider()
    label = labels.label_for("batch/lifecycle", str(uuid.uuid4()), max_length=SPEC.label_max)
    issued = provider.issue(label, datetime.now(UTC) + timedelta(days=30))
    assert issued.username.startswith(PREFIX + "acme+regcred-")  # the name Harbor returned
    assert [t.token_id for t in provider.list_tokens() if t.label == label] == [issued.token_id]
    record = provider.describe_token(issued.token_id)
    assert record is not None and record.label == label and record.active
    assert record.expires_at == issued.expires_at
    credential = (issued.username, issued.password)
    assert fake.access(credential) == ["pull"]  # pull on its project only, never push
    assert fake.access(credential, "other/api") == []
    assert revoke_minted(provider, issued.token_id, "batch/lifecycle") is RevokeResult.REVOKED
    provider.revoke(issued.token_id)  # already gone: not an error
    assert provider.describe_token(issued.token_id) is None
    assert all(t.token_id != issued.token_id for t in provider.list_tokens())
    assert fake.access(credential) == []  # the realm treats a deleted robot as anonymous
    assert fake.realm(credential).status_code == 401  # and refuses it outright without a scope


def test_the_default_prefix_is_what_harbor_returns_too(tmp_path: Path) -> None:
    with _serve(tmp_path, "robot$") as fake:
        issued = fake.provider().issue(labels.label_for("batch/default", "r1"), None)
        assert issued.username.startswith("robot$acme+regcred-")
        assert fake.access((issued.username, issued.password)) == ["pull"]
        assert issued.expires_at is None


def test_the_listing_reads_every_page(fake: Fake) -> None:
    provider = fake.provider(page_size=2)
    made = {provider.issue(labels.label_for("batch/pages", f"r{i}"), None).token_id for i in range(7)}
    assert {t.token_id for t in provider.list_tokens()} == made
    pages = [e for e in fake.requests_log() if e["method"] == "GET" and e["path"] == "/api/v2.0/robots"]
    assert len(pages) == 4 and all(e["status"] == 200 for e in pages)


def test_the_request_names_and_describes_the_robot(fake: Fake) -> None:
    provider = fake.provider()
    label = labels.label_for("team/a b", "rotation-7", max_length=SPEC.label_max)
    start = datetime.now(UTC)
    issued = provider.issue(label, start + timedelta(hours=36))
    robot = fake.api("GET", f"/robots/{issued.token_id}").json()
    assert robot["name"] == issued.username and robot["description"] == label  # the label, spaces and all
    assert robot["level"] == "project" and robot["duration"] == 2  # 36 h, rounded up to whole days
    assert robot["permissions"] == [
        {"kind": "project", "namespace": "acme", "access": [{"resource": "repository", "action": "pull"}]}
    ]
    assert issued.expires_at is not None and issued.expires_at >= start + timedelta(days=2) - timedelta(
        seconds=5
    )
    owner = labels.owner_of("team/a b")
    assert issued.username.startswith(f"{PREFIX}acme+regcred-{owner}-")
    again = provider.issue(label, None)  # the same rotation again: its own robot, no 409
    assert again.username != issued.username


def test_robot_names_and_durations() -> None:
    label = labels.label_for("x/y", "onboard-1")
    name = robot_name(label, "abcd0123")
    assert name == robot_name(label, "abcd0123") and len(name) <= 60
    assert name.startswith(f"regcred-{labels.owner_of('x/y')}-") and name.endswith("-abcd0123")
    assert robot_name(label) != robot_name(label)
    assert harbor_module.re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", robot_name("not a label")) is not None
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert duration_days(None, now) == -1
    assert duration_days(now + timedelta(hours=1), now) == 1
    assert duration_days(now + timedelta(days=1), now) == 1
    assert duration_days(now + timedelta(days=1, seconds=1), now) == 2
    assert duration_days(now - timedelta(days=3), now) == 1


def test_a_robot_of_another_project_never_counts(fake: Fake) -> None:
    label = labels.label_for("batch/mine", "r1")
    body = {
        "name": "copied", "description": label, "level": "project", "duration": -1,
        "permissions": [
            {
                "kind": "project", "namespace": "other",
                "access": [{"resource": "repository", "action": "pull"}],
            }
        ],
    }  # fmt: skip
    created = fake.api("POST", "/robots", json=body)
    assert created.status_code == 201
    theirs = str(created.json()["id"])
    provider = fake.provider()
    record = provider.describe_token(theirs)
    assert record is not None and record.label == ""
    assert revoke_minted(provider, theirs, "batch/mine") is RevokeResult.NOT_MINTED_FOR_SECRET
    assert theirs not in {t.token_id for t in provider.list_tokens()}
    assert fake.api("GET", f"/robots/{theirs}").status_code == 200  # still there


def test_disabled_and_expired_robots_are_not_live(fake: Fake) -> None:
    provider = fake.provider()
    issued = provider.issue(labels.label_for("batch/off", "r1"), None)
    robot = fake.api("GET", f"/robots/{issued.token_id}").json()
    assert fake.api("PUT", f"/robots/{issued.token_id}", json={**robot, "disable": True}).status_code == 200
    record = provider.describe_token(issued.token_id)
    assert record is not None and not record.active
    assert all(t.token_id != issued.token_id for t in provider.list_tokens())
    assert fake.access((issued.username, issued.password)) == []
    later = fake.provider(clock=lambda: datetime.now(UTC) + timedelta(days=3))
    short = provider.issue(labels.label_for("batch/off", "r2"), datetime.now(UTC) + timedelta(hours=2))
    record = later.describe_token(short.token_id)
    assert record is not None and not record.active  # one day, rounded up, is over three days later


def test_token_ids_are_checked_strictly(fake: Fake) -> None:
    provider = fake.provider()
    for good in ("1", "42", "9223372036854775807"):
        assert provider.valid_token_id(good)
    for bad in (
        "",
        "0",
        "01",
        "-1",
        "1.0",
        "1e3",
        "abc",
        "1/2",
        "../robots",
        " 1",
        "1 ",
        "٣",
        "9223372036854775808",
    ):
        assert not provider.valid_token_id(bad), bad
        assert revoke_minted(provider, bad, "batch/x") is RevokeResult.INVALID_ID
    not_a_string: Any = 7
    assert not provider.valid_token_id(not_a_string)
    with pytest.raises(ProviderError, match="positive integer"):
        provider.describe_token("../projects")
    with pytest.raises(ProviderError, match="positive integer"):
        provider.revoke("1;2")


def test_a_mint_whose_answer_is_lost_is_found_by_its_label(fake: Fake) -> None:
    provider = fake.provider()
    label = labels.label_for("batch/lost", "rotation-9")
    fake.fault(method="POST", path="^/api/v2.0/robots$", drop=True, after=True)
    with pytest.raises(MintOutcomeUnknown) as caught:
        provider.issue(label, None)
    no_secret_in(str(caught.value), fake)
    posts = [e for e in fake.requests_log() if e["method"] == "POST" and e["path"] == "/api/v2.0/robots"]
    assert len(posts) == 1  # sent once
    found = orphans(provider.list_tokens(), "batch/lost", [], rotation="rotation-9")
    assert [t.label for t in found] == [label]
    assert revoke_minted(provider, found[0].token_id, "batch/lost") is RevokeResult.REVOKED
    fake.fault(method="POST", path="^/api/v2.0/robots$", status=502, after=True)
    with pytest.raises(MintOutcomeUnknown, match="502"):
        provider.issue(labels.label_for("batch/lost", "rotation-10"), None)


def test_a_taken_name_is_a_clear_error_and_not_retried(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harbor_module.secrets, "token_hex", lambda n: "00c0ffee")
    provider = fake.provider()
    label = labels.label_for("batch/dup", "r1")
    provider.issue(label, None)
    with pytest.raises(ProviderError, match="HTTP 409") as caught:
        provider.issue(label, None)
    text = str(caught.value)
    assert "CONFLICT" in text and "already exists" in text and "not repeated" in text
    no_secret_in(text, fake)
    posts = [e for e in fake.requests_log() if e["method"] == "POST" and e["path"] == "/api/v2.0/robots"]
    assert [e["status"] for e in posts] == [201, 409]


def test_real_refusals_say_what_to_fix(fake: Fake) -> None:
    with pytest.raises(ProviderAuthError, match=r"HTTP 401.*regcred:admin-secret") as caught:
        fake.provider(password="Wr0ng-" + uuid.uuid4().hex).list_tokens()
    no_secret_in(str(caught.value), fake)
    with pytest.raises(ProviderError, match=r"HTTP 403.*Project Admin") as caught:
        fake.provider(username=DEV, password=DEV_PASSWORD).issue(labels.label_for("b/x", "r1"), None)
    no_secret_in(str(caught.value), fake)
    with pytest.raises(ProviderError, match=r"HTTP 403.*does not exist or the admin user is not a member"):
        fake.provider("nosuch").list_tokens()
    assert fake.provider(username=DEV, password=DEV_PASSWORD).list_tokens() == []  # a developer may list


INJECTED = [
    ("GET", "^/api/v2.0/projects/", 401, {}, ProviderAuthError, "HTTP 401: UNAUTHORIZED"),
    ("GET", "^/api/v2.0/robots$", 403, {}, ProviderError, "HTTP 403: FORBIDDEN.*Project Admin"),
    ("GET", "^/api/v2.0/projects/", 404, {}, ProviderError, "HTTP 404: NOT_FOUND.*regcred:project"),
    ("GET", "^/api/v2.0/robots$", 429, {"Retry-After": "7"}, ProviderError, "HTTP 429.*retry after 7 s"),
    (
        "GET",
        "^/api/v2.0/robots$",
        500,
        {},
        ProviderError,
        "HTTP 500: UNKNOWN; internal server error.*retry later",
    ),
    ("GET", "^/api/v2.0/robots$", 503, {}, ProviderError, "HTTP 503.*retry later"),
    ("POST", "^/api/v2.0/robots$", 400, {}, ProviderError, "HTTP 400: BAD_REQUEST"),
    ("POST", "^/api/v2.0/robots$", 403, {}, ProviderError, "HTTP 403.*Project Admin"),
    ("POST", "^/api/v2.0/robots$", 409, {}, ProviderError, "HTTP 409: CONFLICT.*not repeated"),
    ("POST", "^/api/v2.0/robots$", 429, {"Retry-After": "3"}, ProviderError, "HTTP 429.*retry after 3 s"),
    ("POST", "^/api/v2.0/robots$", 500, {}, ProviderError, "HTTP 500.*retry later"),
    ("GET", "^/api/v2.0/robots/[0-9]+$", 403, {}, ProviderError, "HTTP 403"),
    ("DELETE", "^/api/v2.0/robots/[0-9]+$", 401, {}, ProviderAuthError, "HTTP 401.*regcred:admin-secret"),
    ("DELETE", "^/api/v2.0/robots/[0-9]+$", 500, {}, ProviderError, "HTTP 500"),
]


Case = tuple[str, str, int, dict[str, str], type[Exception], str]


@pytest.mark.parametrize("case", INJECTED, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in INJECTED])
def test_every_documented_error_becomes_a_clear_message(fake: Fake, case: Case) -> None:
    method, path, status, headers, kind, pattern = case
    provider = fake.provider()
    existing = provider.issue(labels.label_for("batch/err", "r0"), None)
    fake.fault(method=method, path=path, status=status, headers=headers, times=10)
    with pytest.raises(kind, match=pattern) as caught:
        if method == "POST":
            provider.issue(labels.label_for("batch/err", "r1"), None)
        elif method == "DELETE":
            provider.revoke(existing.token_id)
        elif path.endswith("[0-9]+$"):
            provider.describe_token(existing.token_id)
        else:
            fake.provider().list_tokens()  # a fresh provider: the project lookup is not cached
    assert type(caught.value) is kind
    assert f"HTTP {status}" in str(caught.value)
    no_secret_in(str(caught.value), fake)


def test_the_plugin_builds_from_a_secrets_configuration(fake: Fake) -> None:
    tags = {"regcred:managed": "true", "regcred:provider": "harbor", "regcred:project": "acme"}
    cfg = SecretConfig.from_tags(tags, "batch/plugin")
    settings = settings_of(SPEC, cfg, secret_name="batch/plugin")
    assert settings == {"project": "acme"}
    ctx = BuildContext(
        spec=SPEC, cfg=cfg, settings=settings,
        routing=Routing("harbor", fake.origin, fake.origin, frozenset({fake.origin})),
        admin=AdminCredential({"username": ADMIN, "password": ADMIN_PASSWORD}),
        transport=Transport(local_origins={fake.origin}),
    )  # fmt: skip
    provider = PLUGIN.factory(ctx)
    assert isinstance(provider, HarborProvider) and provider.list_tokens() == []
    for bad in ("Acme", "a b", "-acme", "acme..x", "a" * 256, "acme/x"):
        with pytest.raises(ConfigurationError, match="regcred:project"):
            settings_of(SPEC, SecretConfig.from_tags({**tags, "regcred:project": bad}, "s"), secret_name="s")
    unset = {k: v for k, v in tags.items() if k != "regcred:project"}
    with pytest.raises(ConfigurationError, match="regcred:project"):
        settings_of(SPEC, SecretConfig.from_tags(unset, "s"))
    with pytest.raises(ConfigurationError, match="':'"):
        fake.provider(username="a:b")


def test_the_spec_declares_everything() -> None:
    described = (SPEC.title, SPEC.credential, SPEC.setup, SPEC.admin_permissions, SPEC.username_form)
    assert all(described) and SPEC.realm_note
    assert SPEC.cannot and SPEC.lifetime.note and SPEC.lifetime.never_expires
    assert [f.name for f in SPEC.admin_fields] == ["username", "password"] and SPEC.admin_fields[1].secret
    assert SPEC.default_registry is None and SPEC.default_api is None and SPEC.needs_api
    assert SPEC.setting("project").required
    assert PROFILE.provider == SPEC.name and PROFILE.onboard_args == "--project acme"


# -- hostile API servers ------------------------------------------------------------------------------


def _robot(i: int) -> dict[str, Any]:
    return {
        "id": i, "name": f"robot$acme+r{i}", "description": labels.label_for("s/h", f"r{i}"),
        "level": "project", "disable": False, "expires_at": -1,
        "permissions": [{"kind": "project", "namespace": "acme", "access": []}],
    }  # fmt: skip


def _json(status: int, body: Any, *headers: tuple[str, str]) -> Reply:
    return Reply(status, (("Content-Type", "application/json"), *headers), json.dumps(body).encode())


def _hostile(route: Callable[[LoggedRequest], Reply]) -> RecordingServer:
    def handle(request: LoggedRequest) -> Reply:
        if request.path.startswith("/api/v2.0/projects/"):
            return _json(200, {"project_id": 3, "name": "acme"})
        return route(request)

    return RecordingServer("127.0.0.1", handle)


def _provider(server: RecordingServer, page_size: int = 2) -> HarborProvider:
    origin = Origin("http", "127.0.0.1", server.port)
    return HarborProvider(
        api=origin, project="acme", username=ADMIN, password=ADMIN_PASSWORD,
        transport=Transport(local_origins={origin}, sleep=lambda s: None), page_size=page_size,
    )  # fmt: skip


def test_without_a_link_header_the_total_count_drives_the_pages() -> None:
    robots = [_robot(i) for i in range(1, 6)]

    def route(request: LoggedRequest) -> Reply:
        page = int(request.query["page"][0])
        return _json(200, robots[(page - 1) * 2 : page * 2], ("X-Total-Count", "5"))

    with _hostile(route) as server:
        assert [t.token_id for t in _provider(server).list_tokens()] == ["1", "2", "3", "4", "5"]
        queries = [r.query for r in server.requests if r.path == "/api/v2.0/robots"]
        assert [q["page"] for q in queries] == [["1"], ["2"], ["3"]]
        assert all(q["q"] == ["Level=project,ProjectID=3"] for q in queries)
        assert all(r.header("X-Is-Resource-Name") == "true" for r in server.requests if "projects" in r.path)


def test_a_pagination_link_to_another_host_is_not_followed() -> None:
    def route(request: LoggedRequest) -> Reply:
        return _json(200, [_robot(1)], ("Link", '<http://198.51.100.7/api/v2.0/robots?page=2>; rel="next"'))

    with _hostile(route) as server, pytest.raises(ProviderError, match="must stay on"):
        _provider(server).list_tokens()


def test_a_create_answer_without_a_usable_secret_is_an_unknown_outcome() -> None:
    def route(request: LoggedRequest) -> Reply:
        return _json(201, {"id": 5, "name": "robot$acme+x", "secret": "", "expires_at": -1})

    with (
        _hostile(route) as server,
        pytest.raises(MintOutcomeUnknown, match="usable robot name, secret and id"),
    ):
        _provider(server).issue(labels.label_for("s/h", "r1"), None)


def test_a_robot_listed_for_another_project_is_left_out() -> None:
    stranger = {**_robot(2), "permissions": [{"kind": "project", "namespace": "evil", "access": []}]}

    def route(request: LoggedRequest) -> Reply:
        return _json(200, [_robot(1), stranger, {**_robot(3), "level": "system"}, {"id": "x"}])

    with _hostile(route) as server:
        assert [t.token_id for t in _provider(server, page_size=100).list_tokens()] == ["1"]


# -- the fake's documented behaviours -----------------------------------------------------------------


def test_fake_pagination_headers(fake: Fake) -> None:
    provider = fake.provider()
    for i in range(12):
        provider.issue(labels.label_for("fake/pages", f"r{i}"), None)
    first = fake.robots()
    assert first.status_code == 200 and len(first.json()) == 10  # page_size defaults to 10
    assert first.headers["X-Total-Count"] == "12" and first.headers["X-Request-Id"]
    link = "</api/v2.0/robots?page={}&page_size=10&q=Level=project,ProjectID=1>; rel={}"
    assert first.headers["Link"] == link.format(2, '"next"')
    second = fake.robots(page=2, page_size=10)
    assert len(second.json()) == 2 and second.headers["Link"] == link.format(1, '"prev"')
    assert fake.robots(page=2, page_size=5).headers["Link"].count(" , ") == 1
    assert all("secret" not in robot for robot in first.json() + second.json())
    names = [r["name"] for r in first.json()]
    assert names == sorted(names)  # sorted by name unless asked otherwise
    assert fake.robots(page_size=101).status_code == 422
    # Harbor unescapes q once more, so a '+' in it would be a space: look for the part after it.
    tail = names[0].split("+", 1)[1]
    fuzzy = fake.robots(q=f"Level=project,ProjectID=1,name=~{tail}")
    assert [r["name"] for r in fuzzy.json()] == [names[0]]


@pytest.mark.parametrize(
    ("q", "status", "message"),
    [
        ("Level=project", 400, "must with project ID"),
        ("Level=project,ProjectID=x", 400, "ProjectID must be a positive integer"),
        ("Level=bogus", 400, "level input"),
        ("Level=project,ProjectID", 400, "key/value cannot be empty"),
        ("Level=project,ProjectID=1,name=[a", 400, "invalid query string value"),
        # Without Level: system robots, for system administrators only (the message names the caller).
        ("", 403, ADMIN),
        ("Level=project,ProjectID=99", 403, "forbidden"),
    ],
)
def test_fake_query_refusals(fake: Fake, q: str, status: int, message: str) -> None:
    reply = fake.api("GET", "/robots", params={"q": q} if q else None)
    assert reply.status_code == status
    error = reply.json()["errors"][0]
    assert message in error["message"] and error["code"] == ("BAD_REQUEST" if status == 400 else "FORBIDDEN")


def test_fake_create_rules(fake: Fake) -> None:
    access = [{"resource": "repository", "action": "pull"}]
    pull = [{"kind": "project", "namespace": "acme", "access": access}]
    body = {"name": "ci", "description": "d", "level": "project", "duration": 3, "permissions": pull}
    created = fake.api("POST", "/robots", json=body)
    shown = created.json()
    assert created.status_code == 201 and created.headers["Location"] == f"/api/v2.0/robots/{shown['id']}"
    assert set(shown) == {"id", "name", "secret", "creation_time", "expires_at"}
    assert shown["name"] == PREFIX + "acme+ci"
    assert shown["secret"] in minted(fake) and len(shown["secret"]) == 32
    assert shown["expires_at"] - int(datetime.now(UTC).timestamp()) in range(3 * 86400 - 10, 3 * 86400 + 1)
    conflict = fake.api("POST", "/robots", json=body)
    assert conflict.status_code == 409 and conflict.json()["errors"][0]["code"] == "CONFLICT"
    changes: list[tuple[dict[str, Any], int]] = [
        ({"name": "Bad Name"}, 400), ({"name": "a+b"}, 400), ({"duration": 0}, 400), ({"level": "x"}, 400),
        ({"permissions": []}, 400), ({"permissions": pull * 2}, 400), ({"level": "system"}, 403),
        ({"permissions": [{**pull[0], "namespace": "nosuch"}]}, 403), ({"description": "x" * 1025}, 500),
    ]  # fmt: skip
    for change, status in changes:
        reply = fake.api("POST", "/robots", json={**body, "name": "ci2", **change})
        assert reply.status_code == status, change
    assert fake.api("POST", "/robots", json=body, auth=None).status_code == 401
    assert fake.api("POST", "/robots", json=body, auth=(ADMIN, "Wr0ngPassw0rd")).status_code == 401
    denied = fake.api("POST", "/robots", json={**body, "name": "ci3"}, auth=(DEV, DEV_PASSWORD))
    assert denied.status_code == 403
    assert denied.json() == {"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]}
    assert fake.robots(auth=(shown["name"], shown["secret"])).status_code == 403  # a pull robot lists nothing


def test_fake_robot_records_and_secrets(fake: Fake) -> None:
    issued = fake.provider().issue(labels.label_for("fake/rec", "r1"), None)
    path = f"/robots/{issued.token_id}"
    robot = fake.api("GET", path).json()
    assert set(robot) >= {
        "id", "name", "description", "level", "duration", "editable", "disable", "expires_at", "permissions",
        "creation_time", "update_time",
    } and "secret" not in robot  # fmt: skip
    missing = {"errors": [{"code": "NOT_FOUND", "message": "robot 999 not found"}]}
    assert fake.api("GET", "/robots/999").json() == missing
    assert fake.api("GET", "/robots/abc").status_code == 422
    assert fake.api("GET", path, auth=None).status_code == 401
    assert fake.api("PUT", path, json={**robot, "name": "robot$acme+renamed"}).status_code == 400
    refreshed = fake.api("PATCH", path, json={"secret": ""})
    new = refreshed.json()["secret"]
    assert refreshed.status_code == 200 and new != issued.password
    assert fake.access((issued.username, issued.password)) == []  # the old secret died at once
    assert fake.access((issued.username, new)) == ["pull"]
    assert fake.api("PATCH", path, json={"secret": "weak"}).status_code == 400
    assert fake.api("PATCH", path, json={"secret": "Str0ngEnough"}).json() == {}
    assert fake.access((issued.username, "Str0ngEnough")) == ["pull"]
    assert fake.api("DELETE", path, auth=(DEV, DEV_PASSWORD)).status_code == 403
    deleted = fake.api("DELETE", path)
    assert deleted.status_code == 200 and deleted.content == b""
    assert fake.api("DELETE", path).status_code == 404
    state = (fake.state_dir / "state.json").read_text()
    assert new not in state and "Str0ngEnough" not in state


def test_fake_projects_users_and_realm(fake: Fake) -> None:
    project = fake.api("GET", "/projects/acme", headers={"X-Is-Resource-Name": "true"}).json()
    assert project["project_id"] == 1 and project["current_user_role_id"] == 1
    assert project["metadata"] == {"public": "false"}
    assert fake.api("GET", "/projects/2").json()["name"] == "other"  # an id unless marked as a name
    assert fake.api("GET", "/projects/nosuch").status_code == 403
    assert fake.api("GET", "/projects/acme", auth=None).status_code == 401
    assert fake.api("GET", "/projects/library", auth=None).status_code == 200  # public
    assert fake.api("GET", "/users/current").json()["username"] == ADMIN
    assert fake.api("GET", "/users/current", auth=None).status_code == 401
    assert fake.access(ADMIN_AUTH) == ["pull", "push"]
    assert fake.access((DEV, DEV_PASSWORD)) == ["pull", "push"]
    assert fake.access(None) == [] and fake.access(None, "library/base") == ["pull"]
    assert fake.realm(None).status_code == 401
    assert fake.realm(ADMIN_AUTH).status_code == 200  # docker login
    wrong = requests.get(f"{fake.url}/service/token", params={"service": "x"}, timeout=5)
    assert wrong.status_code == 400
    assert requests.post(f"{fake.url}/service/token", timeout=5).status_code == 405
    assert fake.api("GET", "/ping", auth=None).text == "Pong"
    assert fake.api("GET", "/users/current", auth=(ADMIN, "Wr0ngPassw0rd")).status_code == 401
    log = fake.requests_log()
    assert not [e for e in log if ADMIN_PASSWORD in json.dumps(e) or "Wr0ngPassw0rd" in json.dumps(e)]
    assert any(e["identity"] == f"user:{ADMIN}" for e in log)
    assert log[-1]["auth_failed"] is True and log[-1]["identity"] == "anonymous"


def test_fake_faults_answer_in_harbors_shape(fake: Fake) -> None:
    fake.fault(method="GET", path="^/api/v2.0/users/current$", status=429, headers={"Retry-After": "5"})
    reply = fake.api("GET", "/users/current")
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "5"
    assert reply.json() == {"errors": [{"code": "TOO_MANY_REQUEST", "message": "too many requests"}]}
    fake.fault(method="GET", path="^/api/v2.0/users/current$", status=503)
    internal = {"code": "UNKNOWN", "message": "internal server error"}
    assert fake.api("GET", "/users/current").json()["errors"][0] == internal
    assert fake.api("GET", "/users/current").status_code == 200  # each fault was used once
