"""The Docker Hub provider against the Docker Hub API fake (a real HTTP server on loopback)."""

from __future__ import annotations

import json
import uuid

import pytest

from regcred.errors import ProviderAuthError, ProviderError
from regcred.providers.dockerhub import DockerHubProvider
from regcred.registry import Credential
from tests.registry_servers import LoggedRequest, RecordingServer, Reply, closed_port
from tests.v2 import manifest_status

pytestmark = pytest.mark.stack


def provider(env: dict[str, str], **kwargs: object) -> DockerHubProvider:
    admin = Credential(env["REGCRED_DOCKERHUB_ADMIN_USER"], env["REGCRED_DOCKERHUB_ADMIN_TOKEN"])
    return DockerHubProvider(
        admin, api=env["REGCRED_DOCKERHUB_API"], registry=env["REGCRED_REGISTRY"], **kwargs
    )  # type: ignore[arg-type]


def test_personal_access_token_lifecycle(stack_env: dict[str, str]) -> None:
    hub = provider(stack_env)
    label = f"regcred test {uuid.uuid4()}"
    issued = hub.issue(label, None)
    assert issued.username == stack_env["REGCRED_DOCKERHUB_ADMIN_USER"]
    assert issued.password.startswith("dckr_pat_")
    assert [t.token_id for t in hub.find_by_label(label)] == [issued.token_id]
    repository, _, tag = stack_env["REGCRED_SEED_IMAGE"].partition(":")
    assert (
        manifest_status(stack_env["REGCRED_REGISTRY"], issued.username, issued.password, repository, tag)
        == 200
    )
    hub.revoke(issued.token_id)
    hub.revoke(issued.token_id)  # already gone: not an error
    assert hub.find_by_label(label) == []
    assert (
        manifest_status(stack_env["REGCRED_REGISTRY"], issued.username, issued.password, repository, tag)
        == 401
    )


def test_find_by_label_reads_every_page(stack_env: dict[str, str]) -> None:
    hub = provider(stack_env, page_size=3)
    labels = [f"regcred page {uuid.uuid4()}" for _ in range(8)]
    ids = [hub.issue(label, None).token_id for label in labels]
    try:
        assert [t.token_id for t in hub.find_by_label(labels[-1])] == [ids[-1]]
        assert [t.token_id for t in hub.find_by_label(labels[0])] == [ids[0]]
    finally:
        for token_id in ids:
            hub.revoke(token_id)


def test_organization_access_token_pulls_as_the_org(stack_env: dict[str, str]) -> None:
    org = stack_env["REGCRED_DOCKERHUB_ORG"]
    hub = provider(stack_env, org=org)
    label = f"regcred oat {uuid.uuid4()}"
    issued = hub.issue(label, None)
    assert issued.username == org and issued.password.startswith("dckr_oat_")
    assert [t.token_id for t in hub.find_by_label(label)] == [issued.token_id]
    repository, _, tag = stack_env["REGCRED_SEED_ORG_IMAGE"].partition(":")
    assert manifest_status(stack_env["REGCRED_REGISTRY"], org, issued.password, repository, tag) == 200
    hub.revoke(issued.token_id)
    assert manifest_status(stack_env["REGCRED_REGISTRY"], org, issued.password, repository, tag) == 401


def test_a_rejected_admin_identity_says_what_to_fix_without_the_secret(stack_env: dict[str, str]) -> None:
    wrong = "dckr_pat_wrong-" + uuid.uuid4().hex
    hub = DockerHubProvider(
        Credential(stack_env["REGCRED_DOCKERHUB_ADMIN_USER"], wrong), api=stack_env["REGCRED_DOCKERHUB_API"]
    )
    with pytest.raises(ProviderAuthError, match="regcred:admin-secret") as caught:
        hub.issue("never", None)
    assert wrong not in str(caught.value)


def test_an_unreachable_api_fails_after_bounded_attempts() -> None:
    waits: list[float] = []
    hub = DockerHubProvider(Credential("u", "p"), api=f"http://127.0.0.1:{closed_port()}", sleep=waits.append)
    with pytest.raises(ProviderError, match="unreachable"):
        hub.find_by_label("x")
    assert len(waits) == 2


def test_a_pagination_link_to_another_host_is_not_followed_with_the_bearer() -> None:
    # Given an API whose listing points "next" at a second host
    with RecordingServer("127.0.0.2") as elsewhere:

        def api(request: LoggedRequest) -> Reply:
            if request.path == "/v2/auth/token":
                return Reply(200, (("Content-Type", "application/json"),), b'{"access_token": "bearer-xyz"}')
            page = {
                "count": 2,
                "next": f"{elsewhere.url}/v2/access-tokens?page=2",
                "previous": None,
                "results": [{"uuid": "a", "token_label": "other", "is_active": True}],
            }
            return Reply(200, (("Content-Type", "application/json"),), json.dumps(page).encode())

        with RecordingServer("127.0.0.1", api) as hub_api:
            hub = DockerHubProvider(Credential("u", "p"), api=hub_api.url)
            # When the provider pages through the tokens
            with pytest.raises(ProviderError, match="another host"):
                hub.find_by_label("mine")
        # Then the other host never heard from it
        assert elsewhere.requests == []
