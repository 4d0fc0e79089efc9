"""The ghcr provider (a `TokenInspector`: regcred imports GHCR tokens, it cannot mint them) against the GitHub
fake (a real HTTP server on loopback, started here in-process): inspect, revoke by value, the ghcr.io
realm's answers for fresh and revoked tokens, every documented error as a clear message without the token,
and the fake's own documented behaviours."""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.fakes.github import PROFILE, Config, make_server
from devstack.fakes.registry_tokens import b64url_decode, ensure_signing_material
from regcred import providers
from regcred.config import SecretConfig
from regcred.errors import ProviderAuthError, ProviderError
from regcred.hosts import Origin
from regcred.http.transport import Transport
from regcred.providers.base import Strategy
from regcred.providers.ghcr import SPEC, GhcrInspector, parse_expiration
from regcred.routing import Deployment, resolve
from tests import leak_guard

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("loopback_only")]

ADMIN = PROFILE.admin_user
ADMIN_PAT = "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
UNKNOWN_PAT = "ghp_unknown" + secrets.token_hex(16)
leak_guard.watch(ADMIN_PAT, UNKNOWN_PAT)
PRIVATE = "octo-admin/app"
PUBLIC = "octo-admin/public-app"


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("ghcr-signing")
    key, cert = where / "signing.key", where / "signing.crt"
    ensure_signing_material(key, cert)
    return key, cert


@dataclass
class FakeGitHub:
    """A running fake and what the tests ask of it directly."""

    origin: Origin
    state_dir: Path
    waits: list[float]

    @property
    def url(self) -> str:
        return self.origin.url("").rstrip("/")

    def inspector(self, **settings: str) -> GhcrInspector:
        transport = Transport(local_origins=[self.origin], sleep=self.waits.append)
        return GhcrInspector(api=self.origin, transport=transport, settings=settings)

    def mint(self, scopes: list[str], expires_at: datetime | None = None) -> str:
        body = {"scopes": scopes, "expires_at": expires_at.isoformat() if expires_at else None}
        answer = requests.post(
            f"{self.url}/_fake/tokens", json=body, headers={"Authorization": f"Bearer {ADMIN_PAT}"}, timeout=5
        )
        assert answer.status_code == 201, answer.text
        token: str = answer.json()["token"]
        leak_guard.watch(token)
        return token

    def fault(self, **spec: Any) -> None:
        answer = requests.post(f"{self.url}/_fake/faults", json=spec, timeout=5)
        assert answer.status_code == 201

    def realm(self, username: str | None, token: str | None, scope: str) -> tuple[int, Any]:
        """(status, the granted access claim, or the error body)."""
        answer = requests.get(
            f"{self.url}/token",
            params={"service": "ghcr.io", "scope": scope},
            auth=(username, token) if username is not None and token is not None else None,
            timeout=5,
        )
        body = answer.json()
        if answer.status_code != 200:
            return answer.status_code, body
        claims = json.loads(b64url_decode(body["token"].split(".")[1]))
        return 200, claims["access"]

    def requests_log(self) -> list[dict[str, Any]]:
        lines = (self.state_dir / "requests.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def tokens(self) -> list[dict[str, Any]]:
        answer = requests.get(
            f"{self.url}/_fake/tokens", headers={"Authorization": f"token {ADMIN_PAT}"}, timeout=5
        )
        assert answer.status_code == 200
        found: list[dict[str, Any]] = answer.json()["tokens"]
        return found


def start(tmp_path: Path, signing: tuple[Path, Path], **overrides: Any) -> Iterator[FakeGitHub]:
    state = tmp_path / "github"
    config = Config(
        state_dir=state,
        admin_user=ADMIN,
        admin_secret=ADMIN_PAT,
        key_path=signing[0],
        cert_path=signing[1],
        public_repos=[PUBLIC],
        **overrides,
    )
    server = make_server(config)
    leak_guard.watch_minted(state / "minted-secrets.jsonl")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield FakeGitHub(Origin("http", "127.0.0.1", server.server_address[1]), state, [])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def github(tmp_path: Path, signing: tuple[Path, Path]) -> Iterator[FakeGitHub]:
    yield from start(tmp_path, signing)


def clean(message: str, *tokens: str) -> bool:
    """No token in the message, and none was even put there (the scrubber had nothing to replace)."""
    return all(t not in message for t in (*tokens, ADMIN_PAT)) and "redacted" not in message


# -- the spec and the plug-in --------------------------------------------------------------------------


def test_the_spec_declares_an_import_provider_without_an_admin_secret() -> None:
    assert SPEC.strategy is Strategy.IMPORT and not SPEC.can_mint and not SPEC.needs_admin
    assert SPEC.default_registry == Origin("https", "ghcr.io", 443)
    assert SPEC.default_api == Origin("https", "api.github.com", 443) and SPEC.needs_api
    assert Origin("https", "ghcr.io", 443) in SPEC.realms
    setting = SPEC.setting("revoke-on-retire")
    assert setting.choices == ("true", "false") and setting.default == "false"
    for text in (SPEC.title, SPEC.credential, SPEC.setup, SPEC.username_form, SPEC.realm_note):
        assert text
    assert SPEC.admin_permissions.startswith("none")
    assert any("fine-grained" in c for c in SPEC.cannot) and any("mint" in c for c in SPEC.cannot)


@pytest.mark.parametrize(("tag", "revokes"), [(None, False), ("false", False), ("true", True)])
def test_the_plugin_builds_on_the_secrets_routing_and_settings(
    github: FakeGitHub, tag: str | None, revokes: bool
) -> None:
    tags = {"regcred:managed": "true", "regcred:provider": "ghcr", "regcred:api": github.url}
    if tag is not None:
        tags["regcred:revoke-on-retire"] = tag
    cfg = SecretConfig.from_tags(tags, "batch/ghcr")
    deployment = Deployment(api_hosts=frozenset({github.origin}))
    inspector = providers.build(
        cfg, resolve(SPEC, cfg, deployment), None, transport=Transport(local_origins=[github.origin])
    )
    assert isinstance(inspector, GhcrInspector) and inspector.can_revoke() is revokes
    token = github.mint(["read:packages"])
    assert inspector.inspect(ADMIN, token).username == ADMIN


# -- inspect -------------------------------------------------------------------------------------------


def test_inspect_reads_the_login_and_the_expiry_and_the_realm_grants_pull(github: FakeGitHub) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    token = github.mint(["read:packages"], expires)
    facts = github.inspector().inspect(ADMIN, token)
    assert facts.username == ADMIN and facts.expires_at == expires
    assert all(clean(n, token) for n in facts.notes)
    # The fresh token pulls the owner's private package at the realm, and may not push it.
    status, access = github.realm(ADMIN, token, f"repository:{PRIVATE}:pull,push")
    assert status == 200 and access == [{"type": "repository", "name": PRIVATE, "actions": ["pull"]}]
    sent = [e for e in github.requests_log() if e["path"] == "/user"]
    assert sent[-1]["auth_scheme"] == "bearer" and sent[-1]["status"] == 200


def test_a_login_given_in_another_case_is_the_same_user(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"])
    assert github.inspector().inspect(ADMIN.upper(), token).username == ADMIN


def test_a_token_without_expiry_is_reported_as_such(github: FakeGitHub) -> None:
    facts = github.inspector().inspect(ADMIN, github.mint(["read:packages"]))
    assert facts.expires_at is None
    assert any("no expiry" in n for n in facts.notes)


def test_write_packages_pulls_and_is_noted_as_more_than_a_pull_needs(github: FakeGitHub) -> None:
    token = github.mint(["write:packages"])
    facts = github.inspector().inspect(ADMIN, token)
    assert any("beyond read:packages (write:packages)" in n for n in facts.notes)
    status, access = github.realm(ADMIN, token, f"repository:{PRIVATE}:pull,push")
    assert status == 200 and access[0]["actions"] == ["pull", "push"]


@pytest.mark.parametrize(
    ("scopes", "listed"), [(["repo"], "repo"), ([], "none"), (["delete:packages"], "delete:packages")]
)
def test_a_token_that_cannot_pull_is_refused_naming_the_scope_to_add(
    github: FakeGitHub, scopes: list[str], listed: str
) -> None:
    token = github.mint(scopes)
    with pytest.raises(ProviderError) as caught:
        github.inspector().inspect(ADMIN, token)
    message = str(caught.value)
    assert "lacks the read:packages scope" in message and f"(its scopes: {listed})" in message
    assert "add read:packages" in message and clean(message, token)
    assert github.realm(ADMIN, token, f"repository:{PRIVATE}:pull") == (200, [])


def test_a_rejected_token_is_not_an_admin_failure(github: FakeGitHub) -> None:
    with pytest.raises(ProviderError) as caught:
        github.inspector().inspect(ADMIN, UNKNOWN_PAT)
    assert not isinstance(caught.value, ProviderAuthError)
    message = str(caught.value)
    assert message.startswith("GitHub rejected the token") and "HTTP 401 (Bad credentials)" in message
    assert "admin" not in message and clean(message, UNKNOWN_PAT)


def test_an_expired_token_is_rejected_by_github_and_the_realm(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"], datetime.now(UTC) + timedelta(seconds=1))
    assert github.realm(ADMIN, token, f"repository:{PRIVATE}:pull")[0] == 200
    time.sleep(1.2)
    with pytest.raises(ProviderError, match="expired or revoked") as caught:
        github.inspector().inspect(ADMIN, token)
    assert clean(str(caught.value), token)
    status, body = github.realm(ADMIN, token, f"repository:{PRIVATE}:pull")
    assert status == 401 and body["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_token_of_another_user_names_the_login_to_give(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"])
    with pytest.raises(ProviderError, match=f"give --username {ADMIN}") as caught:
        github.inspector().inspect("someone-else", token)
    assert clean(str(caught.value), token)


def test_a_username_that_is_no_github_login_is_refused_without_echoing_it(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"])
    with pytest.raises(ProviderError, match="GitHub login") as caught:
        github.inspector().inspect(token, token)  # the token pasted as the username
    assert clean(str(caught.value), token)
    assert not [e for e in github.requests_log() if e["path"] == "/user"]


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("github_pat_", "fine-grained personal access token"),
        ("ghs_", "GitHub App installation access token"),
        ("ghu_", "GitHub App user access token"),
        ("gho_", "OAuth app token"),
    ],
)
def test_tokens_that_are_not_classic_pats_are_refused_before_anything_is_sent(
    github: FakeGitHub, prefix: str, kind: str
) -> None:
    token = prefix + secrets.token_hex(20)
    leak_guard.watch(token)
    with pytest.raises(ProviderError, match=f"is an? {kind}") as caught:
        github.inspector().inspect(ADMIN, token)
    assert "personal access tokens (classic" in str(caught.value) and clean(str(caught.value), token)
    assert not (github.state_dir / "requests.jsonl").exists() or not github.requests_log()


def test_a_token_without_oauth_scopes_is_not_a_classic_pat(github: FakeGitHub) -> None:
    # What GET /user answers for a token that is not a classic PAT: no X-OAuth-Scopes header at all.
    github.fault(method="GET", path="^/user$", status=200, body={"login": ADMIN, "id": 1})
    token = github.mint(["read:packages"])
    with pytest.raises(ProviderError, match=r"not a personal access token \(classic\)"):
        github.inspector().inspect(ADMIN, token)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2027-01-01 00:00:00 UTC", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-03-31 09:00:00 +0900", datetime(2027, 3, 31, tzinfo=UTC)),
        ("2027-03-31 00:00:00 -07:00", datetime(2027, 3, 31, 7, tzinfo=UTC)),
        ("2027-02-30 00:00:00 UTC", None),
        ("soon", None),
        ("2027-01-01 00:00:00 +2500", None),
    ],
)
def test_the_expiration_header_is_read_in_utc(header: str, expected: datetime | None) -> None:
    assert parse_expiration(header) == expected


def test_an_unreadable_expiry_is_noted_not_guessed(github: FakeGitHub) -> None:
    headers = {"X-OAuth-Scopes": "read:packages", "GitHub-Authentication-Token-Expiration": "soon"}
    github.fault(method="GET", path="^/user$", status=200, headers=headers, body={"login": ADMIN})
    facts = github.inspector().inspect(ADMIN, github.mint(["read:packages"]))
    assert facts.expires_at is None and any("cannot read" in n for n in facts.notes)


# -- rate limits and vendor errors ---------------------------------------------------------------------


def test_an_exhausted_primary_rate_limit_says_when_it_resets(
    tmp_path: Path, signing: tuple[Path, Path]
) -> None:
    for github in start(tmp_path, signing, rate_limit=2):
        token = github.mint(["read:packages"])  # the fake-only endpoint counts against no limit
        inspector = github.inspector()
        first = inspector.inspect(ADMIN, token)
        assert any("nearly used up (1 left this hour)" in n for n in first.notes)
        with pytest.raises(ProviderError) as caught:
            inspector.inspect(ADMIN, token)
            inspector.inspect(ADMIN, token)
        message = str(caught.value)
        assert "HTTP 403" in message and "core rate limit of 2 requests an hour is used up" in message
        assert "retry after 20" in message and clean(message, token)  # the reset time, this century


@pytest.mark.parametrize(
    ("status", "headers", "body", "fragment"),
    [
        (403, {"Retry-After": "60"}, None, "rate limit was exceeded: retry after 60 s"),
        (429, {"Retry-After": "90"}, None, "rate limit was exceeded: retry after 90 s"),
        (429, {}, None, "secondary rate limit was exceeded: wait at least a minute"),
        (403, {}, {"message": "You have exceeded a secondary rate limit."}, "secondary rate limit"),
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1893456000", "x-ratelimit-limit": "5000"},
            None,
            "rate limit of 5000 requests an hour is used up: retry after 2030-01-01T00:00:00Z",
        ),
        (403, {}, None, "GitHub refused the token"),
        (404, {}, None, "not GitHub's REST API; check the regcred:api tag"),
        (500, {}, None, "a GitHub-side error; retry later"),
        (503, {}, None, "HTTP 503"),
    ],
)
def test_github_errors_become_clear_messages_without_the_token(
    github: FakeGitHub, status: int, headers: dict[str, str], body: Any, fragment: str
) -> None:
    token = github.mint(["read:packages"])
    # Echo the token back in the error body: it must still never reach the message.
    said = body or {"message": f"refused {token} " + "x" * 500}
    github.fault(method="GET", path="^/user$", status=status, headers=headers, body=said, times=5)
    with pytest.raises(ProviderError) as caught:
        github.inspector().inspect(ADMIN, token)
    message = str(caught.value)
    assert fragment in message and f"HTTP {status}" in message
    assert token not in message and len(message) < 600
    assert github.waits == [] or status == 503  # a long Retry-After is not waited for


def test_a_short_retry_after_is_waited_for_by_the_transport(github: FakeGitHub) -> None:
    github.fault(method="GET", path="^/user$", status=429, headers={"Retry-After": "2"}, times=1)
    facts = github.inspector().inspect(ADMIN, github.mint(["read:packages"]))
    assert facts.username == ADMIN and github.waits == [2.0]


# -- revoke by value -----------------------------------------------------------------------------------


def test_revoke_value_kills_the_token_at_github_and_the_realm(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"])
    inspector = github.inspector(**{"revoke-on-retire": "true"})
    assert inspector.can_revoke()
    assert github.realm(ADMIN, token, f"repository:{PRIVATE}:pull")[0] == 200
    inspector.revoke_value(token)
    status, body = github.realm(ADMIN, token, f"repository:{PRIVATE}:pull")
    assert status == 401 and body == {
        "errors": [
            {
                "code": "UNAUTHORIZED",
                "message": "unauthenticated: User cannot be authenticated with the token provided.",
            }
        ]
    }
    with pytest.raises(ProviderError, match="rejected the token"):
        inspector.inspect(ADMIN, token)
    inspector.revoke_value(token)  # again: harmless, still 202
    posts = [e for e in github.requests_log() if e["path"] == "/credentials/revoke"]
    assert [(e["authorization"], e["status"]) for e in posts] == [(False, 202), (False, 202)]
    assert [t["revoked"] for t in github.tokens() if t["note"] != "admin"] == [True]


def test_revocation_is_off_unless_the_secret_asks_for_it(github: FakeGitHub) -> None:
    assert not github.inspector().can_revoke()
    assert not github.inspector(**{"revoke-on-retire": "false"}).can_revoke()


def test_a_revocation_whose_answer_was_lost_is_sent_again(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"])
    github.fault(method="POST", path="^/credentials/revoke$", drop=True, after=True)
    github.inspector().revoke_value(token)
    posts = [e for e in github.requests_log() if e["path"] == "/credentials/revoke"]
    assert len(posts) == 2 and posts[-1]["status"] == 202
    assert github.realm(ADMIN, token, f"repository:{PRIVATE}:pull")[0] == 401


def test_an_authenticated_revocation_is_refused_by_the_fake_as_documented(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"])
    answer = requests.post(
        f"{github.url}/credentials/revoke",
        json={"credentials": [token]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 403 and answer.json()["status"] == "403"
    assert github.realm(ADMIN, token, f"repository:{PRIVATE}:pull")[0] == 200


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        (422, "60 requests an hour from one address"),
        (403, "refuses an authenticated revocation request, and regcred sends none"),
        (500, "a GitHub-side error"),
    ],
)
def test_revocation_errors_are_clear_without_the_token(
    github: FakeGitHub, status: int, fragment: str
) -> None:
    token = github.mint(["read:packages"])
    github.fault(
        method="POST", path="^/credentials/revoke$", status=status, times=5, body={"message": f"no {token}"}
    )
    with pytest.raises(ProviderError) as caught:
        github.inspector().revoke_value(token)
    message = str(caught.value)
    assert fragment in message and f"HTTP {status}" in message and "POST /credentials/revoke" in message
    assert token not in message


def test_the_revocation_endpoints_hourly_limit_gives_422(tmp_path: Path, signing: tuple[Path, Path]) -> None:
    for github in start(tmp_path, signing, revoke_limit=1):
        first, second = github.mint(["read:packages"]), github.mint(["read:packages"])
        inspector = github.inspector()
        inspector.revoke_value(first)
        with pytest.raises(ProviderError, match=r"HTTP 422 .*spammed.*: the request was not valid") as caught:
            inspector.revoke_value(second)
        assert clean(str(caught.value), first, second)
        assert github.realm(ADMIN, second, f"repository:{PRIVATE}:pull")[0] == 200


def test_a_value_that_is_no_token_is_never_sent_for_revocation(github: FakeGitHub) -> None:
    with pytest.raises(ProviderError, match="personal access token"):
        github.inspector().revoke_value("has spaces in it")
    assert not (github.state_dir / "requests.jsonl").exists() or not github.requests_log()


# -- the fake's documented behaviours ------------------------------------------------------------------


def test_get_user_headers_follow_the_docs(github: FakeGitHub) -> None:
    expires = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    token = github.mint(["read:packages", "repo", "repo:status"], expires)
    answer = requests.get(f"{github.url}/user", headers={"Authorization": f"token {token}"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["login"] == ADMIN
    assert answer.headers["X-OAuth-Scopes"] == "read:packages, repo"  # repo:status is normalized away
    assert answer.headers["X-Accepted-OAuth-Scopes"] == ""
    assert answer.headers["GitHub-Authentication-Token-Expiration"] == "2031-05-06 07:08:09 UTC"
    for name in ("limit", "remaining", "used", "reset", "resource"):
        assert answer.headers[f"x-ratelimit-{name}"]
    assert answer.headers["x-ratelimit-resource"] == "core"
    admin = requests.get(f"{github.url}/user", headers={"Authorization": f"Bearer {ADMIN_PAT}"}, timeout=5)
    assert admin.headers["X-OAuth-Scopes"] == "write:packages"
    assert "GitHub-Authentication-Token-Expiration" not in admin.headers


def test_get_user_errors_have_githubs_shape(github: FakeGitHub) -> None:
    bad = requests.get(f"{github.url}/user", headers={"Authorization": f"Bearer {UNKNOWN_PAT}"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    assert set(bad.json()) == {"message", "documentation_url", "status"} and bad.json()["status"] == "401"
    anonymous = requests.get(f"{github.url}/user", timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["message"] == "Requires authentication"
    assert anonymous.headers["x-ratelimit-limit"] == "60"
    basic = requests.get(f"{github.url}/user", auth=(ADMIN, ADMIN_PAT), timeout=5)
    assert basic.status_code == 401
    version = requests.get(
        f"{github.url}/user",
        headers={"Authorization": f"Bearer {ADMIN_PAT}", "X-GitHub-Api-Version": "1999-01-01"},
        timeout=5,
    )
    assert version.status_code == 400
    github.fault(method="GET", path="^/user$", status=502)
    gateway = requests.get(f"{github.url}/user", headers={"Authorization": f"Bearer {ADMIN_PAT}"}, timeout=5)
    assert gateway.status_code == 502 and gateway.json()["status"] == "502"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b"{}", 422),
        (b'{"credentials": []}', 422),
        (b'{"credentials": [1]}', 422),
        (json.dumps({"credentials": ["x"] * 1001}).encode(), 422),
        (b'{"credentials": ["ghp_nobody"]}', 202),
    ],
)
def test_the_revocation_endpoint_validates_its_body(github: FakeGitHub, body: bytes, status: int) -> None:
    answer = requests.post(
        f"{github.url}/credentials/revoke",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == status
    if status != 202:
        assert {"message", "documentation_url", "status"} <= set(answer.json())


def test_the_realm_grants_what_each_identity_may_do(github: FakeGitHub) -> None:
    scope = f"repository:{PRIVATE}:pull,push repository:{PUBLIC}:pull repository:someone/else:pull"
    status, access = github.realm(None, None, scope)
    assert status == 200 and access == [{"type": "repository", "name": PUBLIC, "actions": ["pull"]}]
    status, access = github.realm(ADMIN, ADMIN_PAT, scope)
    assert access == [
        {"type": "repository", "name": PRIVATE, "actions": ["pull", "push"]},
        {"type": "repository", "name": PUBLIC, "actions": ["pull"]},
    ]
    token = github.mint(["read:packages"])
    for user, value in (("someone-else", token), (ADMIN, UNKNOWN_PAT), ("", token)):
        status, body = github.realm(user, value, scope)
        assert status == 401 and body["errors"][0]["code"] == "UNAUTHORIZED"
    wrong = requests.get(f"{github.url}/token", params={"service": "docker.io"}, timeout=5)
    assert wrong.status_code == 400
    github.fault(method="GET", path="^/token$", status=403)
    denied = requests.get(f"{github.url}/token", params={"service": "ghcr.io"}, timeout=5)
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"


def test_the_fake_token_endpoint_needs_the_admin_token_and_valid_input(github: FakeGitHub) -> None:
    token = github.mint(["read:packages"])
    url = f"{github.url}/_fake/tokens"
    as_user = requests.post(url, json={"scopes": []}, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert as_user.status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN_PAT}"}
    for body in ({"scopes": ["no:such"]}, {"scopes": [], "expires_at": "2001-01-01T00:00:00Z"}):
        assert requests.post(url, json=body, headers=admin, timeout=5).status_code == 422
    listed = github.tokens()
    assert all("token" not in t and "digest" not in t for t in listed)
    state = (github.state_dir / "state.json").read_text()
    assert token not in state and ADMIN_PAT not in state
    log = (github.state_dir / "requests.jsonl").read_text()
    assert token not in log and ADMIN_PAT not in log
