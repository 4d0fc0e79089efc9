"""The Artifactory provider against the Artifactory fake (a real HTTP server on loopback, in this process),
and the fake's documented behaviours that the provider relies on."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.fakes.artifactory import PROFILE, SECRET_ENV, Config, make_server
from devstack.fakes.registry_tokens import b64url_decode, ensure_signing_material
from regcred import labels, providers
from regcred.config import SecretConfig
from regcred.errors import ConfigurationError, MintOutcomeUnknown, ProviderAuthError, ProviderError
from regcred.hosts import Origin
from regcred.http.transport import Transport
from regcred.providers import artifactory
from regcred.providers.artifactory import SPEC, ArtifactoryProvider
from regcred.providers.base import AdminCredential
from regcred.revocation import RevokeResult, revoke_minted
from regcred.routing import Deployment, resolve
from tests import leak_guard

pytestmark = pytest.mark.stack

ADMIN = "jfrog-admin"
PULLER = "ci-puller"
REPO_KEY = "docker-local"
TOKENS = r"^/access/api/v1/tokens$"  # a fault's path: the tokens collection
ADMIN_TOKEN = "admin-access-token-" + uuid.uuid4().hex
leak_guard.watch(ADMIN_TOKEN)


@dataclass
class Fake:
    origin: Origin
    state_dir: Path
    server: Any

    @property
    def url(self) -> str:
        return self.origin.url()

    @property
    def access(self) -> Any:
        return self.server.RequestHandlerClass.access

    def minted(self) -> list[str]:
        path = self.state_dir / "minted-secrets.jsonl"
        return [json.loads(line)["token"] for line in path.read_text().splitlines()] if path.exists() else []

    def requests_logged(self) -> list[dict[str, Any]]:
        path = self.state_dir / "requests.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def fault(self, **spec: Any) -> None:
        assert requests.post(f"{self.url}/_fake/faults", json=spec, timeout=5).status_code == 201

    def clear_faults(self) -> None:
        assert requests.delete(f"{self.url}/_fake/faults", timeout=5).status_code == 204

    def api(self, method: str, path: str, token: str = ADMIN_TOKEN, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(
            method, f"{self.url}/access/api/v1{path}", headers=headers, timeout=5, **kwargs
        )

    def realm(self, user: str | None, secret: str | None, *scopes: str, repo_key: str = REPO_KEY) -> Any:
        return requests.get(
            f"{self.url}/artifactory/api/docker/{repo_key}/v2/token",
            params={"service": PROFILE.service, "scope": list(scopes)},
            auth=(user, secret) if user is not None and secret is not None else None,
            timeout=5,
        )


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("artifactory-signing")
    key, cert = where / "signing.key", where / "signing.crt"
    ensure_signing_material(key, cert)
    return key, cert


def start(tmp_path: Path, signing: tuple[Path, Path], **overrides: Any) -> Iterator[Fake]:
    key, cert = signing
    state = tmp_path / "fake"
    fields: dict[str, Any] = {
        "admin_user": ADMIN,
        "admin_token": ADMIN_TOKEN,
        "repo_keys": [REPO_KEY],
        "pull_users": [PULLER],
        "service": PROFILE.service,
        "issuer": PROFILE.issuer,
    }
    config = Config(state_dir=state, key_path=key, cert_path=cert, **{**fields, **overrides})
    server = make_server(config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    leak_guard.watch_minted(state / "minted-secrets.jsonl")
    try:
        yield Fake(Origin("http", "127.0.0.1", server.server_address[1]), state, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def fake(tmp_path: Path, signing: tuple[Path, Path]) -> Iterator[Fake]:
    yield from start(tmp_path, signing)


def provider(
    fake: Fake, *, admin_user: str = ADMIN, token: str = ADMIN_TOKEN, user: str | None = PULLER
) -> ArtifactoryProvider:
    transport = Transport(local_origins=[fake.origin], sleep=lambda s: None)
    return ArtifactoryProvider(
        api=fake.origin, admin_user=admin_user, admin_token=token, user=user, transport=transport
    )


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def access_of(reply: requests.Response) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    claims = json.loads(b64url_decode(reply.json()["token"].split(".")[1]))
    assert claims["aud"] == PROFILE.service and claims["iss"] == PROFILE.issuer
    return list(claims["access"])


def create(fake: Fake, token: str = ADMIN_TOKEN, **fields: Any) -> Any:
    """A token made through the fake's API (not by the provider): for the pull user, a day, by default."""
    return fake.api("POST", "/tokens", token, json={"username": PULLER, "expires_in": 86400, **fields}).json()


def no_secret_in(text: str, fake: Fake) -> None:
    assert ADMIN_TOKEN not in text
    for token in fake.minted():
        assert token not in text


# -- the provider's lifecycle ----------------------------------------------------------------------


def test_mint_list_describe_pull_revoke(fake: Fake) -> None:
    p = provider(fake)
    label = labels.label_for("batch/lifecycle", str(uuid.uuid4()), max_length=SPEC.label_max)
    issued = p.issue(label, in_days(30))
    assert issued.username == PULLER and p.valid_token_id(issued.token_id)
    assert issued.expires_at is not None and abs((issued.expires_at - in_days(30)).total_seconds()) < 60
    listed = [t for t in p.list_tokens() if t.label == label]
    assert [t.token_id for t in listed] == [issued.token_id] and listed[0].active
    record = p.describe_token(issued.token_id)
    assert record is not None and record.label == label and record.expires_at is not None

    image = f"repository:{REPO_KEY}/api:pull"
    assert access_of(fake.realm(PULLER, issued.password, image)) == [
        {"type": "repository", "name": f"{REPO_KEY}/api", "actions": ["pull"]}
    ]
    # The pull user may not push, and its token is not the admin's.
    assert access_of(fake.realm(PULLER, issued.password, f"repository:{REPO_KEY}/api:pull,push")) == [
        {"type": "repository", "name": f"{REPO_KEY}/api", "actions": ["pull"]}
    ]
    assert fake.realm(ADMIN, issued.password, image).status_code == 401

    assert revoke_minted(p, issued.token_id, "batch/lifecycle") is RevokeResult.REVOKED
    refused = fake.realm(PULLER, issued.password, image)
    assert refused.status_code == 401 and refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
    p.revoke(issued.token_id)  # already gone (204): not an error
    assert p.describe_token(issued.token_id) is None
    assert revoke_minted(p, issued.token_id, "batch/lifecycle") is RevokeResult.ALREADY_GONE
    assert all(t.token_id != issued.token_id for t in p.list_tokens())


def test_the_request_carries_every_field_regcred_decided(fake: Fake) -> None:
    p = provider(fake)
    issued = p.issue("regcred 0123456789 r1 batch/fields", in_days(0.5))
    rec = fake.access.state.tokens[issued.token_id]
    assert rec["username"] == PULLER and rec["scope"] == "applied-permissions/user"
    assert rec["force_revocable"] is True and rec["refreshable"] is False and rec["revocable"] is True
    assert abs(rec["expiry"] - rec["issued_at"] - 12 * 3600) <= 2  # an explicit expires_in, never 0
    assert rec.get("reference_digest") is None and rec["persisted"]
    p.revoke(issued.token_id)


def test_a_label_round_trips_through_the_description(fake: Fake) -> None:
    p = provider(fake)
    name = "team/" + "very long secret name with spaces " * 40
    label = labels.label_for(name, "onboard-" + str(uuid.uuid4()), max_length=SPEC.label_max)
    assert len(label) > 1000
    issued = p.issue(label, in_days(7))
    record = p.describe_token(issued.token_id)
    assert record is not None and record.label == label and labels.belongs_to(record.label, name)
    assert [t.label for t in p.list_tokens() if t.token_id == issued.token_id] == [label]
    with pytest.raises(ProviderError, match="1 to 1024"):
        p.issue("x" * 1025, in_days(7))
    p.revoke(issued.token_id)


def test_token_ids_are_strict_uuids_checked_before_sending(fake: Fake) -> None:
    p = provider(fake)
    good = str(uuid.uuid4())
    assert p.valid_token_id(good) and p.valid_token_id(good.upper())
    bad = ["me", "", "../tokens", good + "x", good[:-1], good.replace("-", ""), f"{good}/me", " " + good]
    assert not any(p.valid_token_id(b) for b in bad)
    before = len(fake.requests_logged())
    for call in (p.describe_token, p.revoke):
        with pytest.raises(ProviderError, match="not a UUID"):
            call("me")
    assert revoke_minted(p, "me", "x") is RevokeResult.INVALID_ID
    assert len(fake.requests_logged()) == before


def test_lifetimes_it_cannot_revoke_are_refused_before_anything_is_sent(fake: Fake) -> None:
    p = provider(fake)
    before = len(fake.requests_logged())
    with pytest.raises(ProviderError, match="at least 6 h"):
        p.issue("regcred 0123456789 r1 short", datetime.now(UTC) + timedelta(hours=2))
    with pytest.raises(ProviderError, match="expiry"):
        p.issue("regcred 0123456789 r1 forever", None)
    assert len(fake.requests_logged()) == before
    # Exactly 6 h, computed a moment before: accepted.
    issued = p.issue("regcred 0123456789 r1 six", datetime.now(UTC) + timedelta(hours=6))
    p.revoke(issued.token_id)


def test_the_revocation_follows_the_vendors_label(fake: Fake) -> None:
    p = provider(fake)
    theirs = p.issue(labels.label_for("team-b/pull", "onboard-1"), in_days(1))
    assert revoke_minted(p, theirs.token_id, "team-a/pull") is RevokeResult.NOT_MINTED_FOR_SECRET
    assert p.describe_token(theirs.token_id) is not None
    assert revoke_minted(p, theirs.token_id, "team-b/pull") is RevokeResult.REVOKED


def test_the_listing_asks_only_for_regcred_descriptions(fake: Fake) -> None:
    assert create(fake, description="ci token")["token_id"]
    p = provider(fake)
    ours = p.issue("regcred 0123456789 r1 listing", in_days(1))
    assert [t.token_id for t in p.list_tokens()] == [ours.token_id]
    logged = [r for r in fake.requests_logged() if r["method"] == "GET"]
    assert logged[-1]["path"] == "/access/api/v1/tokens" and logged[-1]["query_keys"] == ["description"]


# -- admin and non-admin tokens ----------------------------------------------------------------------


def pull_users_own_token(fake: Fake) -> str:
    reply = fake.api("POST", "/tokens", data={"username": PULLER, "expires_in": "86400"})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def test_a_users_own_token_mints_for_itself_and_sees_only_its_tokens(fake: Fake) -> None:
    own = pull_users_own_token(fake)
    admins = provider(fake, user=ADMIN).issue("regcred 0123456789 r1 admins", in_days(1))
    mine = provider(fake, admin_user=PULLER, token=own, user=None)
    issued = mine.issue("regcred 0123456789 r2 mine", in_days(1))
    assert issued.username == PULLER
    assert [t.token_id for t in mine.list_tokens()] == [issued.token_id]
    assert access_of(fake.realm(PULLER, issued.password, f"repository:{REPO_KEY}/api:pull"))
    with pytest.raises(ProviderError, match="HTTP 403") as caught:
        mine.describe_token(admins.token_id)
    no_secret_in(str(caught.value), fake)
    for_admin = provider(fake, admin_user=PULLER, token=own, user=ADMIN)
    with pytest.raises(ProviderError, match=r"HTTP 403.*needs an admin's token") as caught:
        for_admin.issue("regcred 0123456789 r3 other", in_days(1))
    no_secret_in(str(caught.value), fake)


def test_an_expiry_over_the_max_is_a_403_that_says_so(tmp_path: Path, signing: tuple[Path, Path]) -> None:
    for fake in start(tmp_path, signing, max_expiry=7 * 86400):
        own = pull_users_own_token(fake)
        mine = provider(fake, admin_user=PULLER, token=own, user=None)
        with pytest.raises(ProviderError, match=r"HTTP 403.*max-expiry") as caught:
            mine.issue("regcred 0123456789 r1 long", in_days(30))
        no_secret_in(str(caught.value), fake)
        mine.revoke(mine.issue("regcred 0123456789 r1 week", in_days(6)).token_id)
        provider(fake).revoke(provider(fake).issue("regcred 0123456789 r1 admin", in_days(30)).token_id)


def test_a_token_artifactory_cannot_revoke_is_an_error_that_explains_why(fake: Fake) -> None:
    token_id = create(fake, description="d", expires_in=4 * 3600)["token_id"]
    with pytest.raises(
        ProviderError, match=r"HTTP 400.*Token not revocable.*revocable-expiry-threshold"
    ) as caught:
        provider(fake).revoke(token_id)
    no_secret_in(str(caught.value), fake)
    forced = create(fake, expires_in=4 * 3600, force_revocable=True)["token_id"]
    provider(fake).revoke(forced)
    assert fake.api("GET", f"/tokens/{forced}").status_code == 404


def test_a_rejected_admin_token_names_the_admin_secret(fake: Fake) -> None:
    wrong = "wrong-token-" + uuid.uuid4().hex
    leak_guard.watch(wrong)
    with pytest.raises(ProviderAuthError, match="admin secret") as caught:
        provider(fake, token=wrong).list_tokens()
    assert wrong not in str(caught.value)
    no_secret_in(str(caught.value), fake)


# -- vendor errors -----------------------------------------------------------------------------------

ERRORS = [
    (401, ProviderAuthError, "admin secret"),
    (403, ProviderError, "lacks a permission"),
    (404, ProviderError, "not found"),
    (409, ProviderError, "conflict"),
    (429, ProviderError, "retry after 7 s"),
    (500, ProviderError, "vendor-side error"),
    (503, ProviderError, "vendor-side error"),
]


@pytest.mark.parametrize(("status", "kind", "hint"), ERRORS)
def test_injected_errors_become_clear_messages(fake: Fake, status: int, kind: type, hint: str) -> None:
    p = provider(fake)
    issued = p.issue("regcred 0123456789 r1 errors", in_days(1))
    headers = {"Retry-After": "7"} if status == 429 else {}
    calls = {
        "list": (lambda: p.list_tokens(), "GET", TOKENS),
        "describe": (lambda: p.describe_token(issued.token_id), "GET", r"^/access/api/v1/tokens/"),
        "revoke": (lambda: p.revoke(issued.token_id), "DELETE", r"^/access/api/v1/tokens/"),
        "mint": (lambda: p.issue("regcred 0123456789 r2 errors", in_days(1)), "POST", TOKENS),
    }
    for name, (call, method, path) in calls.items():
        if name in ("describe", "revoke") and status == 404:
            fake.fault(method=method, path=path, status=404, times=10)
            assert call() is None  # the vendor does not know it (any more): not an error
            fake.clear_faults()
            continue
        fake.fault(method=method, path=path, status=status, headers=headers, times=10)
        with pytest.raises(kind) as caught:
            call()
        fake.clear_faults()
        text = str(caught.value)
        assert f"HTTP {status}" in text and "Artifactory" in text, (name, text)
        assert f"injected {status}" in text  # the vendor's message, read from its error shape
        assert ("max-expiry" if (name, status) == ("mint", 403) else hint) in text, (name, text)
        no_secret_in(text, fake)
    p.revoke(issued.token_id)


@pytest.mark.parametrize(
    "fault", [{"status": 502}, {"status": 504}, {"drop": True}], ids=["502", "504", "no-answer"]
)
def test_a_mint_of_unknown_outcome_is_found_by_its_label_and_revoked(
    fake: Fake, fault: dict[str, Any]
) -> None:
    fake.fault(method="POST", path=TOKENS, after=True, **fault)
    p = provider(fake)
    label = labels.label_for("batch/unknown", str(uuid.uuid4()))
    with pytest.raises(MintOutcomeUnknown) as caught:
        p.issue(label, in_days(1))
    no_secret_in(str(caught.value), fake)
    found = [t for t in p.list_tokens() if t.label == label]
    assert len(found) == 1 and found[0].active
    minted, scope = fake.minted()[-1], f"repository:{REPO_KEY}/api:pull"
    assert access_of(fake.realm(PULLER, minted, scope))
    assert revoke_minted(p, found[0].token_id, "batch/unknown") is RevokeResult.REVOKED
    assert fake.realm(PULLER, minted, scope).status_code == 401


def test_a_dropped_read_is_retried(fake: Fake) -> None:
    fake.fault(method="GET", path=TOKENS, drop=True)
    assert provider(fake).list_tokens() == []


def test_a_mint_answer_without_a_usable_token_is_an_unknown_outcome(fake: Fake) -> None:
    fake.fault(method="POST", path=TOKENS, status=200, body={"token_id": "x"}, after=True)
    with pytest.raises(MintOutcomeUnknown, match="usable access_token"):
        provider(fake).issue("regcred 0123456789 r1 odd", in_days(1))


# -- the plug-in ---------------------------------------------------------------------------------------


def test_the_plugin_builds_from_tags_and_trusts_the_api_as_realm(fake: Fake) -> None:
    tags = {
        "regcred:managed": "true",
        "regcred:provider": "artifactory",
        "regcred:api": fake.url,
        "regcred:registry": "127.0.0.1:5999",
        "regcred:user": PULLER,
    }
    cfg = SecretConfig.from_tags(tags, "batch/plugin")
    deployment = Deployment(
        registry_hosts=frozenset({Origin("http", "127.0.0.1", 5999)}), api_hosts=frozenset({fake.origin})
    )
    routing = resolve(SPEC, cfg, deployment)
    assert fake.origin in routing.realms
    admin = AdminCredential({"username": ADMIN, "password": ADMIN_TOKEN})
    transport = Transport(local_origins=deployment.local_origins)
    built = providers.build(cfg, routing, admin, transport=transport, secret_name="batch/plugin")
    assert isinstance(built, ArtifactoryProvider) and built.user == PULLER
    assert ADMIN_TOKEN not in repr(built)
    issued = built.issue("regcred 0123456789 r1 plugin", in_days(1))
    assert issued.username == PULLER
    built.revoke(issued.token_id)
    without = SecretConfig.from_tags({k: v for k, v in tags.items() if k != "regcred:user"}, "b")
    assert providers.build(without, routing, admin, transport=transport).user == ADMIN
    bad = SecretConfig.from_tags({**tags, "regcred:user": "bad:user"}, "b")
    with pytest.raises(ConfigurationError, match="regcred:user"):
        providers.build(bad, routing, admin, transport=transport)


def test_the_spec_declares_what_the_provider_table_shows() -> None:
    for name in ("title", "credential", "setup", "admin_permissions", "username_form", "realm_note"):
        assert getattr(SPEC, name), name
    assert SPEC.default_registry is None and SPEC.default_api is None and SPEC.needs_api
    assert SPEC.label_max == 1024 and SPEC.lifetime.min_s == 6 * 3600 and not SPEC.lifetime.never_expires
    assert [f.name for f in SPEC.admin_fields] == ["username", "password"] and SPEC.admin_fields[1].secret
    assert [s.name for s in SPEC.settings] == ["user"] and SPEC.cannot
    assert artifactory.PLUGIN.spec is SPEC and providers.spec_for("artifactory") is SPEC
    assert PROFILE.onboard_args == "--user ci-puller" and PROFILE.seed_images[0].startswith(REPO_KEY + "/")
    assert PROFILE.realm_path == f"/artifactory/api/docker/{REPO_KEY}/v2/token"


# -- the fake's documented behaviours ----------------------------------------------------------------

REPLY = {"token_id", "access_token", "expires_in", "scope", "token_type"}
LISTED = {"token_id", "subject", "expiry", "issued_at", "issuer", "description", "refreshable"}


def test_create_takes_json_and_form_and_answers_the_documented_fields(fake: Fake) -> None:
    fields = {
        "username": PULLER,
        "expires_in": "86400",
        "refreshable": "true",
        "include_reference_token": "true",
    }
    form = fake.api("POST", "/tokens", data=fields)
    body = form.json()
    assert form.status_code == 200
    assert set(body) == REPLY | {"refresh_token", "reference_token"}
    assert body["expires_in"] == 86400 and body["token_type"] == "access_token"
    assert body["scope"] == "applied-permissions/user" and len(body["reference_token"]) == 64
    # A reference token authenticates like its access token.
    assert fake.api("GET", "/tokens/me", token=body["reference_token"]).json()["token_id"] == body["token_id"]
    as_json = create(fake, description="d")
    assert set(as_json) == REPLY
    listed = fake.api("GET", "/tokens", params={"token_id": as_json["token_id"]}).json()["tokens"]
    assert len(listed) == 1
    assert set(listed[0]) == LISTED
    assert listed[0]["subject"].endswith(f"/users/{PULLER}") and listed[0]["issuer"].startswith("jfac@")
    me = fake.api("GET", "/tokens/me").json()
    assert "expiry" not in me and me["subject"].endswith(f"/users/{ADMIN}")


INVALID = [("description", "x" * 1025), ("expires_in", "soon"), ("expires_in", -1), ("refreshable", "maybe")]
INVALID += [("force_revocable", 1), ("scope", "system:metrics:r"), ("username", "u" * 256)]
INVALID += [("username", "nobody"), ("grant_type", "password"), ("grant_type", "refresh_token")]


@pytest.mark.parametrize("fields", [dict([item]) for item in INVALID])
def test_invalid_create_fields_are_400s_in_the_access_error_shape(fake: Fake, fields: dict[str, Any]) -> None:
    reply = fake.api("POST", "/tokens", json={"username": PULLER, "expires_in": 86400, **fields})
    assert reply.status_code == 400
    error = reply.json()["errors"][0]
    assert error["code"] == "BAD_REQUEST" and error["message"]


def test_non_admins_see_and_create_only_their_own(fake: Fake) -> None:
    own = pull_users_own_token(fake)
    theirs = fake.api("GET", "/tokens", token=own).json()["tokens"]
    assert all(t["subject"].endswith(f"/users/{PULLER}") for t in theirs) and theirs
    assert len(fake.api("GET", "/tokens").json()["tokens"]) == len(theirs) + 1  # the admin sees its own too
    for fields, status in (
        ({"username": ADMIN}, 403),
        ({"expires_in": 0}, 403),
        ({"scope": "applied-permissions/admin"}, 403),
        ({"scope": "applied-permissions/groups:readers"}, 403),
    ):
        reply = fake.api("POST", "/tokens", token=own, json={"expires_in": 86400, **fields})
        assert reply.status_code == status and reply.json()["errors"][0]["code"] == "FORBIDDEN"
    admin_me = fake.api("GET", "/tokens/me").json()["token_id"]
    assert fake.api("DELETE", f"/tokens/{admin_me}", token=own).status_code == 403
    assert fake.api("POST", "/tokens", json={"expires_in": 0}).status_code == 200  # an admin may


def test_listing_filters_and_the_empty_listing(fake: Fake) -> None:
    assert fake.api("GET", "/tokens", params={"description": "nothing*"}).json() == {"tokens": []}
    for text in ("regcred a", "regcred b", "other"):
        create(fake, description=text)
    found = fake.api("GET", "/tokens", params={"description": "regcred*"}).json()["tokens"]
    assert sorted(t["description"] for t in found) == ["regcred a", "regcred b"]
    exact = fake.api("GET", "/tokens", params={"description": "regcred"}).json()["tokens"]
    assert exact == []
    by_user = fake.api("GET", "/tokens", params={"username": ADMIN}).json()["tokens"]
    assert len(by_user) == 1
    ordered = fake.api("GET", "/tokens", params={"order_by": "created", "descending_order": "true"}).json()
    assert ordered["tokens"][0]["description"] == "other"
    assert fake.api("GET", "/tokens", params={"order_by": "size"}).status_code == 400


def test_revoke_answers_200_then_204_and_the_thresholds_apply(fake: Fake) -> None:
    made = create(fake)
    assert fake.api("DELETE", f"/tokens/{made['token_id']}").status_code == 200
    assert fake.api("DELETE", f"/tokens/{made['token_id']}").status_code == 204
    assert fake.api("GET", f"/tokens/{made['token_id']}").status_code == 404
    assert fake.api("GET", "/tokens/me", token=made["access_token"]).status_code == 401
    # Under the persistency threshold: not stored, yet it authenticates until it expires.
    brief = create(fake, expires_in=3600)
    assert fake.api("GET", f"/tokens/{brief['token_id']}").status_code == 404
    assert fake.api("DELETE", f"/tokens/{brief['token_id']}").status_code == 204
    assert access_of(fake.realm(PULLER, brief["access_token"], f"repository:{REPO_KEY}/api:pull"))
    # Under the revocable threshold: stored, listed, but not revocable.
    mid = create(fake, expires_in=4 * 3600)
    refused = fake.api("DELETE", f"/tokens/{mid['token_id']}")
    assert refused.status_code == 400 and refused.json()["message"] == "Token not revocable"
    assert "revocableExpiryThresholdMillis: 21600000" in refused.json()["detail"]


def test_a_refresh_replaces_the_token(fake: Fake) -> None:
    made = create(fake, username=ADMIN, refreshable=True)
    again = fake.api(
        "POST", "/tokens", data={"grant_type": "refresh_token", "refresh_token": made["refresh_token"]}
    )
    assert again.status_code == 200 and again.json()["token_id"] != made["token_id"]
    assert fake.api("GET", f"/tokens/{made['token_id']}").status_code == 404


def test_authentication_errors_use_the_access_shape(fake: Fake) -> None:
    for token in ("", "not-a-token-at-all"):
        reply = fake.api("GET", "/tokens", token=token)
        assert reply.status_code == 401 and reply.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert requests.get(f"{fake.url}/artifactory/api/system/ping", timeout=5).text == "OK"


def test_the_realm_grants_by_user_and_repository(tmp_path: Path, signing: tuple[Path, Path]) -> None:
    for fake in start(tmp_path, signing, repo_keys=[REPO_KEY, "docker-remote"]):
        realm_grants_by_user_and_repository(fake)


def realm_grants_by_user_and_repository(fake: Fake) -> None:
    pull = f"repository:{REPO_KEY}/api:pull,push"
    assert access_of(fake.realm(ADMIN, ADMIN_TOKEN, pull)) == [
        {"type": "repository", "name": f"{REPO_KEY}/api", "actions": ["pull", "push"]}
    ]
    assert access_of(fake.realm(None, None, pull)) == []  # anonymous: nothing
    own = pull_users_own_token(fake)
    # Another repository's image is not granted at this repository's realm; a bare image name is this one's.
    assert access_of(fake.realm(PULLER, own, "repository:docker-remote/api:pull", "repository:api:pull")) == [
        {"type": "repository", "name": "api", "actions": ["pull"]}
    ]
    assert access_of(fake.realm(PULLER, own, "repository:docker-remote/api:pull", repo_key="docker-remote"))
    assert fake.realm(PULLER, own, pull, repo_key="maven-local").status_code == 404
    bad = fake.realm(PULLER, "wrong-" + uuid.uuid4().hex, pull)
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Basic")
    assert bad.json()["errors"][0]["code"] == "UNAUTHORIZED"
    wrong_service = requests.get(
        f"{fake.url}{PROFILE.realm_path}", params={"service": "x"}, auth=(PULLER, own), timeout=5
    )
    assert wrong_service.status_code == 400


def test_an_injected_status_gets_the_vendors_error_shape_and_headers(fake: Fake) -> None:
    fake.fault(method="GET", path=TOKENS, status=429, headers={"Retry-After": "3"})
    reply = fake.api("GET", "/tokens")
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "3"
    assert reply.json() == {"errors": [{"code": "TOO_MANY_REQUESTS", "message": "injected 429"}]}
    assert fake.api("GET", "/tokens").status_code == 200  # times=1


def test_the_request_log_holds_no_secret(fake: Fake) -> None:
    p = provider(fake)
    issued = p.issue("regcred 0123456789 r1 log", in_days(1))
    fake.realm(PULLER, issued.password, f"repository:{REPO_KEY}/api:pull")
    p.revoke(issued.token_id)
    text = (fake.state_dir / "requests.jsonl").read_text() + (fake.state_dir / "state.json").read_text()
    no_secret_in(text, fake)
    assert base64.b64encode(f"{PULLER}:{issued.password}".encode()).decode() not in text
    identities = {r["identity"] for r in fake.requests_logged()}
    assert any(i and i.startswith(f"user:{PULLER}:") for i in identities)


def test_the_fake_cli_wants_loopback_and_its_env_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.fakes.artifactory.__main__ import main

    monkeypatch.delenv(SECRET_ENV, raising=False)
    for argv in (["--host", "0.0.0.0"], []):
        with pytest.raises(SystemExit) as stopped:
            main([*argv, "--port", "0", "--state-dir", str(tmp_path)])
        assert stopped.value.code == 2
