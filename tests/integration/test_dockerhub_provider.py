"""The Docker Hub provider against the Docker Hub API fake (a real HTTP server on loopback), and against
hostile or failing API servers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from regcred import labels
from regcred.errors import MintOutcomeUnknown, ProviderAuthError, ProviderError
from regcred.hosts import Origin
from regcred.http.transport import Transport
from regcred.providers.dockerhub import DockerHubProvider
from regcred.registry import Credential
from regcred.revocation import RevokeResult, revoke_minted
from tests import leak_guard
from tests.aws_setup import hub
from tests.registry_servers import LoggedRequest, RecordingServer, Reply, closed_port
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack
JSON = (("Content-Type", "application/json"),)
ADMIN_PASSWORD = "admin-password-" + uuid.uuid4().hex
BEARER = "hub-bearer-" + uuid.uuid4().hex
MINTED = "dckr_pat_minted-" + uuid.uuid4().hex
leak_guard.watch(ADMIN_PASSWORD, BEARER, MINTED)


def test_personal_access_token_lifecycle(stack_env: dict[str, str]) -> None:
    provider = hub(stack_env)
    label = labels.label_for("batch/lifecycle", str(uuid.uuid4()))
    issued = provider.issue(label, None)
    assert issued.username == stack_env["REGCRED_DOCKERHUB_ADMIN_USER"]
    assert issued.password.startswith("dckr_pat_")
    assert [t.token_id for t in provider.list_tokens() if t.label == label] == [issued.token_id]
    record = provider.describe_token(issued.token_id)
    assert record is not None and record.label == label
    repository, _, tag = stack_env["REGCRED_SEED_IMAGE"].partition(":")
    registry = stack_env["REGCRED_REGISTRY"]
    assert manifest_status(registry, issued.username, issued.password, repository, tag) == 200
    provider.revoke(issued.token_id)
    provider.revoke(issued.token_id)  # already gone: not an error
    assert provider.describe_token(issued.token_id) is None
    assert all(t.token_id != issued.token_id for t in provider.list_tokens())
    assert manifest_status(registry, issued.username, issued.password, repository, tag) == 401


def test_the_listing_reads_every_page(stack_env: dict[str, str]) -> None:
    provider = hub(stack_env, page_size=3)
    minted = [provider.issue(labels.label_for("batch/pages", f"r{i}"), None).token_id for i in range(8)]
    try:
        listed = {t.token_id for t in provider.list_tokens()}
        assert set(minted) <= listed
    finally:
        for token_id in minted:
            provider.revoke(token_id)


def test_organization_access_token_pulls_as_the_org(stack_env: dict[str, str]) -> None:
    org = stack_env["REGCRED_DOCKERHUB_ORG"]
    provider = hub(stack_env, org=org)
    label = labels.label_for("batch/oat", str(uuid.uuid4()))
    issued = provider.issue(label, None)
    assert issued.username == org and issued.password.startswith("dckr_oat_")
    record = provider.describe_token(issued.token_id)
    assert record is not None and record.label == label
    repository, _, tag = stack_env["REGCRED_SEED_ORG_IMAGE"].partition(":")
    registry = stack_env["REGCRED_REGISTRY"]
    assert manifest_status(registry, org, issued.password, repository, tag) == 200
    assert revoke_minted(provider, issued.token_id, "batch/oat") is RevokeResult.REVOKED
    assert manifest_status(registry, org, issued.password, repository, tag) == 401


def test_revocation_follows_the_vendors_label_not_the_caller(stack_env: dict[str, str]) -> None:
    provider = hub(stack_env)
    theirs = provider.issue(labels.label_for("team-b/pull", "onboard-1"), None)
    try:
        assert revoke_minted(provider, theirs.token_id, "team-a/pull") is RevokeResult.NOT_MINTED_FOR_SECRET
        assert provider.describe_token(theirs.token_id) is not None
        assert revoke_minted(provider, "../orgs/x", "team-b/pull") is RevokeResult.INVALID_ID
        assert revoke_minted(provider, theirs.token_id, "team-b/pull") is RevokeResult.REVOKED
        assert revoke_minted(provider, theirs.token_id, "team-b/pull") is RevokeResult.ALREADY_GONE
    finally:
        provider.revoke(theirs.token_id)


def test_a_rejected_admin_identity_says_what_to_fix_without_the_secret(stack_env: dict[str, str]) -> None:
    wrong = "dckr_pat_wrong-" + uuid.uuid4().hex
    leak_guard.watch(wrong)
    provider = DockerHubProvider(
        Credential(stack_env["REGCRED_DOCKERHUB_ADMIN_USER"], wrong),
        api=Origin("http", "127.0.0.1", int(stack_env["REGCRED_DOCKERHUB_API"].rsplit(":", 1)[1])),
        transport=Transport(
            local_origins=[
                Origin("http", "127.0.0.1", int(stack_env["REGCRED_DOCKERHUB_API"].rsplit(":", 1)[1]))
            ]
        ),
    )
    with pytest.raises(ProviderAuthError, match="regcred:admin-secret") as caught:
        provider.issue("never", None)
    assert wrong not in str(caught.value)


# -- hostile and failing API servers -----------------------------------------------------------------


def api_server(route: Callable[[LoggedRequest], Reply]) -> RecordingServer:
    def handle(request: LoggedRequest) -> Reply:
        if request.path == "/v2/auth/token":
            return Reply(200, JSON, json.dumps({"access_token": BEARER}).encode())
        return route(request)

    return RecordingServer("127.0.0.1", handle)


def provider_for(server: RecordingServer, waits: list[float] | None = None) -> DockerHubProvider:
    origin = Origin("http", "127.0.0.1", server.port)
    transport = Transport(
        local_origins=[origin], sleep=(waits.append if waits is not None else lambda s: None)
    )
    return DockerHubProvider(Credential("acme", ADMIN_PASSWORD), api=origin, transport=transport)


def test_an_unreachable_api_fails_after_bounded_attempts() -> None:
    waits: list[float] = []
    origin = Origin("http", "127.0.0.1", closed_port())
    provider = DockerHubProvider(
        Credential("u", ADMIN_PASSWORD),
        api=origin,
        transport=Transport(local_origins=[origin], sleep=waits.append),
    )
    with pytest.raises(ProviderError, match="unreachable"):
        provider.list_tokens()
    assert len(waits) == 2


def test_a_pagination_link_to_another_host_is_not_followed_with_the_bearer() -> None:
    with RecordingServer("127.0.0.2") as elsewhere:

        def listing(request: LoggedRequest) -> Reply:
            page = {
                "count": 2,
                "next": f"{elsewhere.url}/v2/access-tokens?page=2",
                "previous": None,
                "results": [{"uuid": str(uuid.uuid4()), "token_label": "other", "is_active": True}],
            }
            return Reply(200, JSON, json.dumps(page).encode())

        with api_server(listing) as api, pytest.raises(ProviderError, match="stay on it"):
            provider_for(api).list_tokens()
        assert elsewhere.requests == []


@pytest.mark.parametrize("status", [502, 504])
def test_a_mint_answered_502_or_504_is_never_sent_again(status: int) -> None:
    with api_server(lambda r: Reply(status, JSON, b'{"message": "gateway"}')) as api:
        with pytest.raises(MintOutcomeUnknown):
            provider_for(api).issue(labels.label_for("batch/x", "r1"), None)
        assert api.paths("POST").count("/v2/access-tokens") == 1


def test_a_mint_without_an_answer_is_never_sent_again() -> None:
    import time

    def slow(request: LoggedRequest) -> Reply:
        time.sleep(12)  # longer than the transport's read timeout
        return Reply(201, JSON, b"{}")

    with api_server(slow) as api:
        with pytest.raises(MintOutcomeUnknown, match="not sent again"):
            provider_for(api).issue(labels.label_for("batch/x", "r1"), None)
        assert api.paths("POST").count("/v2/access-tokens") == 1


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        (400, "HTTP 400"),
        (401, "HTTP 401"),
        (403, "owner of the organization"),
        (404, "HTTP 404"),
        (409, "HTTP 409"),
        (429, "retry after 30 s"),
        (500, "HTTP 500"),
    ],
)
def test_vendor_errors_become_clear_messages_without_secrets(status: int, fragment: str) -> None:
    # The server echoes every credential it received in its error body, and adds a long tail.
    def hostile(request: LoggedRequest) -> Reply:
        body = {
            "message": f"denied for {request.header('Authorization')} {ADMIN_PASSWORD} " + "x" * 1000,
            "detail": "\u0000\u001b[31mred",
            "errinfo": {"token": MINTED},
        }
        headers = (*JSON, ("Retry-After", "30")) if status == 429 else JSON
        return Reply(status, headers, json.dumps(body).encode())

    with api_server(hostile) as api, pytest.raises(ProviderError) as caught:
        provider_for(api).issue(labels.label_for("batch/x", "r1"), None)
    message = str(caught.value)
    assert fragment in message
    assert BEARER not in message and ADMIN_PASSWORD not in message and MINTED not in message
    assert "\x1b" not in message and len(message) < 400


def test_a_hostile_describe_answer_for_another_token_is_refused() -> None:
    other = str(uuid.uuid4())

    def describe(request: LoggedRequest) -> Reply:
        return Reply(
            200, JSON, json.dumps({"uuid": other, "token_label": "regcred x", "is_active": True}).encode()
        )

    with api_server(describe) as api, pytest.raises(ProviderError, match="another token"):
        provider_for(api).describe_token(str(uuid.uuid4()))


def test_token_ids_are_one_url_path_segment() -> None:
    with api_server(lambda r: Reply(204)) as api:
        provider = provider_for(api)
        with pytest.raises(ProviderError, match="UUID"):
            provider.revoke("../../v2/orgs/acme")
        token_id = str(uuid.uuid4())
        provider.revoke(token_id)
        assert api.paths("DELETE") == [f"/v2/access-tokens/{token_id}"]
