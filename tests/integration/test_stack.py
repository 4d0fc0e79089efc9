"""The local stack end to end: the Docker Hub fake mints credentials, the real distribution registry
(2.8, token auth) accepts or refuses them through the fake's token realm."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.fakes.dockerhub import Config, make_server
from devstack.stack import PROCESSES, Stack, StackError, _start_ticks

pytestmark = [pytest.mark.stack, pytest.mark.enable_socket]

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack.up(tmp_path_factory.mktemp("stack"))
    try:
        yield s
    finally:
        s.down()


@pytest.fixture(scope="module")
def env(stack: Stack) -> dict[str, str]:
    return stack.env


# ----------------------------------------------------------------------------------------- helpers


def jwt_claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def hub_bearer(env: dict[str, str], identifier: str | None = None, secret: str | None = None) -> str:
    r = requests.post(
        f"{env['REGCRED_DOCKERHUB_API']}/v2/auth/token",
        json={
            "identifier": identifier or env["REGCRED_DOCKERHUB_ADMIN_USER"],
            "secret": secret or env["REGCRED_DOCKERHUB_ADMIN_TOKEN"],
        },
        timeout=5,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def hub(
    env: dict[str, str], method: str, path: str, bearer: str | None = None, **kw: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {bearer or hub_bearer(env)}"}
    url = path if path.startswith("http") else f"{env['REGCRED_DOCKERHUB_API']}{path}"
    return requests.request(method, url, headers=headers, timeout=5, **kw)


def mint_pat(
    env: dict[str, str], scopes: list[str], label: str = "regcred test", **extra: Any
) -> dict[str, Any]:
    r = hub(env, "POST", "/v2/access-tokens", json={"token_label": label, "scopes": scopes, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def mint_oat(env: dict[str, str], paths: list[str], label: str = "regcred oat") -> dict[str, Any]:
    body = {
        "label": label,
        "description": "pull only",
        "resources": [{"type": "TYPE_REPO", "path": p, "scopes": ["scope-image-pull"]} for p in paths],
    }
    r = hub(env, "POST", f"/v2/orgs/{env['REGCRED_DOCKERHUB_ORG']}/access-tokens", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


@dataclass
class Probe:
    realm_status: int
    realm_body: dict[str, Any]
    status: int | None = None  # HEAD manifest with the token
    www_authenticate: str = ""
    digest: str = ""

    @property
    def access(self) -> list[dict[str, Any]]:
        return list(jwt_claims(self.realm_body["token"])["access"]) if "token" in self.realm_body else []


def probe(env: dict[str, str], image: str, creds: tuple[str, str] | None) -> Probe:
    """The /v2/ dance with plain requests: challenge, token from the realm it names, HEAD manifest."""
    repo, ref = image.rsplit(":", 1)
    url = f"http://{env['REGCRED_REGISTRY']}/v2/{repo}/manifests/{ref}"
    challenge = requests.head(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=5)
    assert challenge.status_code == 401
    scheme, _, params_text = challenge.headers["WWW-Authenticate"].partition(" ")
    assert scheme == "Bearer"
    params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
    assert params["realm"] == f"{env['REGCRED_DOCKERHUB_API']}/token"
    assert params["scope"] == f"repository:{repo}:pull"
    tok = requests.get(
        params["realm"],
        params={"service": params["service"], "scope": params["scope"]},
        auth=creds,
        timeout=5,
    )
    result = Probe(tok.status_code, tok.json())
    if tok.status_code != 200:
        return result
    head = requests.head(
        url, headers={"Accept": MANIFEST_ACCEPT, "Authorization": f"Bearer {tok.json()['token']}"}, timeout=5
    )
    result.status = head.status_code
    result.www_authenticate = head.headers.get("WWW-Authenticate", "")
    result.digest = head.headers.get("Docker-Content-Digest", "")
    return result


def assert_hub_error(r: requests.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = dict(r.json())
    assert isinstance(body["message"], str) and body["message"]
    assert "errinfo" in body
    return body


# ------------------------------------------------------------------------------------------- tests


def test_env_is_complete(stack: Stack, env: dict[str, str]) -> None:
    for key in (
        "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "REGCRED_REGISTRY", "REGCRED_DOCKERHUB_API", "REGCRED_DOCKERHUB_ADMIN_USER",
        "REGCRED_DOCKERHUB_ADMIN_TOKEN", "REGCRED_DOCKERHUB_ORG", "REGCRED_SEED_IMAGE", "REGCRED_STACK_DIR",
        "REGCRED_DOCKERHUB_LOG",
    ):  # fmt: skip
        assert env.get(key), key
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["REGCRED_SEED_IMAGE"] == f"{env['REGCRED_DOCKERHUB_ADMIN_USER']}/app:1.0"
    assert Stack.attach(stack.root).env == env
    # moto answers (any AWS call would do; this one needs no service setup)
    assert requests.get(f"{env['AWS_ENDPOINT_URL']}/moto-api/", timeout=5).status_code == 200


def test_pat_pulls_private_image_from_real_registry(env: dict[str, str]) -> None:
    pat = mint_pat(env, ["repo:read"])
    assert pat["token"].startswith("dckr_pat_") and pat["uuid"] and pat["is_active"] is True
    assert pat["scopes"] == ["repo:read"] and pat["token_label"] == "regcred test"
    user = env["REGCRED_DOCKERHUB_ADMIN_USER"]
    p = probe(env, env["REGCRED_SEED_IMAGE"], (user, pat["token"]))
    assert p.realm_status == 200
    assert set(p.realm_body) >= {"token", "access_token", "expires_in", "issued_at"}
    assert p.realm_body["expires_in"] == 300
    assert p.status == 200 and p.digest.startswith("sha256:")
    claims = jwt_claims(p.realm_body["token"])
    assert claims["aud"] == "registry.docker.io" and isinstance(claims["aud"], str)
    assert claims["sub"] == user
    # the org image too (the user owns the org), and GET /v2/access-tokens/{uuid} redacts the token
    assert probe(env, env["REGCRED_SEED_ORG_IMAGE"], (user, pat["token"])).status == 200
    got = hub(env, "GET", f"/v2/access-tokens/{pat['uuid']}")
    assert got.status_code == 200 and got.json()["token"] == "***" and got.json()["last_used"]
    # a Hub API bearer is no registry token (other audience)
    head = requests.head(
        f"http://{env['REGCRED_REGISTRY']}/v2/{env['REGCRED_SEED_IMAGE'].replace(':', '/manifests/')}",
        headers={"Authorization": f"Bearer {hub_bearer(env)}"},
        timeout=5,
    )
    assert head.status_code == 401 and 'error="invalid_token"' in head.headers["WWW-Authenticate"]


def test_deleted_or_disabled_pat_fails_at_realm_and_registry(env: dict[str, str]) -> None:
    user = env["REGCRED_DOCKERHUB_ADMIN_USER"]
    pat = mint_pat(env, ["repo:read"], label="to be revoked")
    creds = (user, pat["token"])
    assert probe(env, env["REGCRED_SEED_IMAGE"], creds).status == 200

    r = hub(env, "PATCH", f"/v2/access-tokens/{pat['uuid']}", json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False and r.json()["token"] == "***"
    p = probe(env, env["REGCRED_SEED_IMAGE"], creds)
    assert p.realm_status == 401 and p.realm_body == {"details": "incorrect username or password"}
    assert hub(env, "PATCH", f"/v2/access-tokens/{pat['uuid']}", json={"is_active": True}).status_code == 200
    assert probe(env, env["REGCRED_SEED_IMAGE"], creds).status == 200

    assert hub(env, "DELETE", f"/v2/access-tokens/{pat['uuid']}").status_code == 204
    p = probe(env, env["REGCRED_SEED_IMAGE"], creds)
    assert p.realm_status == 401 and p.realm_body == {"details": "incorrect username or password"}
    # without a token the registry refuses too
    repo, ref = env["REGCRED_SEED_IMAGE"].split(":")
    assert (
        requests.head(f"http://{env['REGCRED_REGISTRY']}/v2/{repo}/manifests/{ref}", timeout=5).status_code
        == 401
    )
    # the revoked PAT cannot get a Hub bearer either; the uuid is gone
    r = requests.post(
        f"{env['REGCRED_DOCKERHUB_API']}/v2/auth/token",
        json={"identifier": user, "secret": pat["token"]},
        timeout=5,
    )
    assert_hub_error(r, 401)
    assert_hub_error(hub(env, "DELETE", f"/v2/access-tokens/{pat['uuid']}"), 404)
    assert_hub_error(hub(env, "GET", f"/v2/access-tokens/{pat['uuid']}"), 404)


def test_expired_pat_is_refused(env: dict[str, str]) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    pat = mint_pat(env, ["repo:read"], label="short", expires_at=expires.isoformat().replace("+00:00", "Z"))
    creds = (env["REGCRED_DOCKERHUB_ADMIN_USER"], pat["token"])
    assert probe(env, env["REGCRED_SEED_IMAGE"], creds).status == 200
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 0.2)
    assert probe(env, env["REGCRED_SEED_IMAGE"], creds).realm_status == 401


def test_public_read_pat_gets_a_narrowed_token(env: dict[str, str]) -> None:
    pat = mint_pat(env, ["repo:public_read"], label="public only")
    creds = (env["REGCRED_DOCKERHUB_ADMIN_USER"], pat["token"])
    p = probe(env, env["REGCRED_SEED_IMAGE"], creds)
    assert p.realm_status == 200  # the realm says yes...
    assert p.access == []  # ...but grants nothing
    assert p.status == 401 and 'error="insufficient_scope"' in p.www_authenticate  # the registry says no
    public = probe(env, env["REGCRED_SEED_PUBLIC_IMAGE"], creds)
    assert public.status == 200
    # anonymous: public only
    assert probe(env, env["REGCRED_SEED_PUBLIC_IMAGE"], None).status == 200
    anon = probe(env, env["REGCRED_SEED_IMAGE"], None)
    assert anon.realm_status == 200 and anon.access == [] and anon.status == 401


def test_oat_pulls_with_org_as_username(env: dict[str, str]) -> None:
    org, user = env["REGCRED_DOCKERHUB_ORG"], env["REGCRED_DOCKERHUB_ADMIN_USER"]
    oat = mint_oat(env, [env["REGCRED_SEED_ORG_IMAGE"].split(":")[0]])
    assert oat["token"].startswith("dckr_oat_") and oat["id"] and oat["created_by"] == user
    assert oat["resources"][0]["scopes"] == ["scope-image-pull"]

    ok = probe(env, env["REGCRED_SEED_ORG_IMAGE"], (org, oat["token"]))
    assert ok.status == 200 and jwt_claims(ok.realm_body["token"])["sub"] == org
    assert probe(env, env["REGCRED_SEED_ORG_IMAGE"], (user, oat["token"])).realm_status == 401
    outside = probe(env, env["REGCRED_SEED_IMAGE"], (org, oat["token"]))  # not among its resources
    assert outside.realm_status == 200 and outside.access == [] and outside.status == 401

    # an OAT bearer exists but may not manage tokens
    oat_bearer = hub_bearer(env, org, oat["token"])
    assert_hub_error(hub(env, "GET", "/v2/access-tokens", bearer=oat_bearer), 403)
    assert_hub_error(hub(env, "GET", f"/v2/orgs/{org}/access-tokens", bearer=oat_bearer), 403)

    path = f"/v2/orgs/{org}/access-tokens/{oat['id']}"
    got = hub(env, "GET", path).json()
    assert "token" not in got and got["resources"] == oat["resources"] and got["label"] == "regcred oat"
    r = hub(env, "PATCH", path, json={"is_active": False, "label": "disabled"})
    assert r.status_code == 200 and r.json()["is_active"] is False and r.json()["label"] == "disabled"
    assert probe(env, env["REGCRED_SEED_ORG_IMAGE"], (org, oat["token"])).realm_status == 401
    hub(env, "PATCH", path, json={"is_active": True})
    assert probe(env, env["REGCRED_SEED_ORG_IMAGE"], (org, oat["token"])).status == 200
    assert hub(env, "DELETE", path).status_code == 204
    assert probe(env, env["REGCRED_SEED_ORG_IMAGE"], (org, oat["token"])).realm_status == 401
    assert_hub_error(hub(env, "DELETE", path), 404)

    star = mint_oat(env, ["*"], label="whole org")
    assert probe(env, env["REGCRED_SEED_ORG_IMAGE"], (org, star["token"])).status == 200


def test_pat_list_pagination(env: dict[str, str]) -> None:
    bearer = hub_bearer(env)
    before = hub(env, "GET", "/v2/access-tokens", bearer=bearer).json()
    minted = [mint_pat(env, ["repo:read"], label=f"page {i}") for i in range(5)]
    hub(env, "PATCH", f"/v2/access-tokens/{minted[0]['uuid']}", bearer=bearer, json={"is_active": False})

    first = hub(env, "GET", "/v2/access-tokens?page=1&page_size=2", bearer=bearer)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"count", "active_count", "next", "previous", "results"}
    assert body["count"] == before["count"] + 5
    assert body["active_count"] == before["active_count"] + 4
    assert body["previous"] is None and len(body["results"]) == 2
    assert body["next"].startswith(f"{env['REGCRED_DOCKERHUB_API']}/v2/access-tokens?")
    seen, page, pages = [], body, 1
    while True:
        assert all(item["token"] == "***" for item in page["results"])
        seen += [item["uuid"] for item in page["results"]]
        if page["next"] is None:
            break
        r = hub(env, "GET", page["next"], bearer=bearer)
        assert r.status_code == 200
        page, pages = r.json(), pages + 1
        assert page["previous"] and "page=" in page["previous"]
    assert len(seen) == len(set(seen)) == body["count"] and pages == -(-body["count"] // 2)
    assert {m["uuid"] for m in minted} <= set(seen)
    assert seen[0] == minted[-1]["uuid"]  # newest first
    # defaults: page 1, page_size 10
    assert len(hub(env, "GET", "/v2/access-tokens", bearer=bearer).json()["results"]) == min(
        10, body["count"]
    )

    org = env["REGCRED_DOCKERHUB_ORG"]
    for i in range(3):
        mint_oat(env, [f"{org}/tool"], label=f"oat page {i}")
    oats = hub(env, "GET", f"/v2/orgs/{org}/access-tokens?page_size=2", bearer=bearer).json()
    assert set(oats) == {"total", "next", "previous", "results"} and oats["total"] >= 3
    assert len(oats["results"]) == 2 and oats["next"].startswith(env["REGCRED_DOCKERHUB_API"])
    assert all("token" not in o for o in oats["results"])


def test_api_errors(env: dict[str, str]) -> None:
    api = env["REGCRED_DOCKERHUB_API"]
    assert_hub_error(requests.get(f"{api}/v2/access-tokens", timeout=5), 401)
    assert_hub_error(
        requests.get(f"{api}/v2/access-tokens", headers={"Authorization": "Bearer x.y.z"}, timeout=5), 401
    )
    bad_login = requests.post(
        f"{api}/v2/auth/token",
        json={"identifier": env["REGCRED_DOCKERHUB_ADMIN_USER"], "secret": "wrong"},
        timeout=5,
    )
    assert_hub_error(bad_login, 401)
    bearer = hub_bearer(env)
    with requests.Session() as http:  # a refused request leaves a kept-alive connection usable
        assert http.post(f"{api}/v2/access-tokens", json={"token_label": "x"}, timeout=5).status_code == 401
        auth = {"Authorization": f"Bearer {bearer}"}
        assert http.get(f"{api}/v2/access-tokens", headers=auth, timeout=5).status_code == 200
    for body in (
        {"token_label": "", "scopes": ["repo:read"]},
        {"token_label": "x" * 101, "scopes": ["repo:read"]},
        {"token_label": "ok", "scopes": ["repo:everything"]},
        {"token_label": "ok", "scopes": []},
        {"scopes": ["repo:read"]},
        {"token_label": "ok", "scopes": ["repo:read"], "expires_at": "2001-01-01T00:00:00Z"},
        {"token_label": "ok", "scopes": ["repo:read"], "expires_at": "tomorrow"},
    ):
        assert_hub_error(hub(env, "POST", "/v2/access-tokens", bearer=bearer, json=body), 400)
    longest = {"token_label": "x" * 100, "scopes": ["repo:read"]}
    assert hub(env, "POST", "/v2/access-tokens", bearer=bearer, json=longest).status_code == 201
    for query in ("page=0", "page_size=0", "page=abc", "page_size=1000"):
        assert_hub_error(hub(env, "GET", f"/v2/access-tokens?{query}", bearer=bearer), 400)
    assert_hub_error(
        hub(env, "PATCH", "/v2/access-tokens/nope", bearer=bearer, json={"is_active": False}), 404
    )
    org = env["REGCRED_DOCKERHUB_ORG"]
    assert_hub_error(hub(env, "GET", "/v2/orgs/someone-else/access-tokens", bearer=bearer), 404)
    for resources in (
        [],
        [{"type": "TYPE_REPO", "path": "otherorg/repo", "scopes": ["scope-image-pull"]}],
        [{"type": "TYPE_REPO", "path": f"{org}/tool", "scopes": ["scope-everything"]}],
        [{"type": "TYPE_BOGUS", "path": f"{org}/tool", "scopes": ["scope-image-pull"]}],
    ):
        r = hub(
            env,
            "POST",
            f"/v2/orgs/{org}/access-tokens",
            bearer=bearer,
            json={"label": "x", "resources": resources},
        )
        assert_hub_error(r, 400)
    # the realm: a service it does not serve, bad Basic credentials
    realm = f"{api}/token"
    assert requests.get(realm, params={"service": "elsewhere"}, timeout=5).status_code == 400
    r = requests.get(realm, params={"service": "registry.docker.io"}, auth=("nobody", "nothing"), timeout=5)
    assert r.status_code == 401 and r.json() == {"details": "incorrect username or password"}


def test_pat_bearer_may_mint_tokens(env: dict[str, str]) -> None:
    pat = mint_pat(env, ["repo:admin"], label="admin pat")
    bearer = hub_bearer(env, env["REGCRED_DOCKERHUB_ADMIN_USER"], pat["token"])
    assert jwt_claims(bearer)["exp"] - jwt_claims(bearer)["iat"] == 600
    r = hub(
        env,
        "POST",
        "/v2/access-tokens",
        bearer=bearer,
        json={"token_label": "child", "scopes": ["repo:read"]},
    )
    assert r.status_code == 201
    # once the PAT behind a bearer is deleted, the bearer stops working
    assert hub(env, "DELETE", f"/v2/access-tokens/{pat['uuid']}").status_code == 204
    assert_hub_error(hub(env, "GET", "/v2/access-tokens", bearer=bearer), 401)


def test_request_log_records_no_secret(env: dict[str, str]) -> None:
    user = env["REGCRED_DOCKERHUB_ADMIN_USER"]
    pat = mint_pat(env, ["repo:read"], label="logged")
    bearer = hub_bearer(env, user, pat["token"])
    probe(env, env["REGCRED_SEED_IMAGE"], (user, pat["token"]))
    probe(env, env["REGCRED_SEED_IMAGE"], (user, "dckr_pat_not-a-real-one"))
    oat = mint_oat(env, ["*"], label="logged oat")
    probe(env, env["REGCRED_SEED_ORG_IMAGE"], (env["REGCRED_DOCKERHUB_ORG"], oat["token"]))

    text = Path(env["REGCRED_DOCKERHUB_LOG"]).read_text()
    for secret in (
        env["REGCRED_DOCKERHUB_ADMIN_TOKEN"],
        pat["token"],
        oat["token"],
        bearer,
        "dckr_pat_not-a-real-one",
    ):
        assert secret not in text
    assert "dckr_pat_" not in text and "dckr_oat_" not in text and "eyJ" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    for e in entries:
        assert {"method", "path", "query_keys", "authorization", "identity", "status"} <= set(e)
    realm = [e for e in entries if e["path"] == "/token" and e["identity"] == f"pat:{user}:{pat['uuid']}"]
    assert realm and realm[-1]["authorization"] is True and realm[-1]["query_keys"] == ["scope", "service"]
    assert any(e["path"] == "/token" and e.get("auth_failed") and e["status"] == 401 for e in entries)
    assert any(e["identity"] == f"oat:{env['REGCRED_DOCKERHUB_ORG']}:{oat['id']}" for e in entries)
    assert any(e["path"] == "/v2/access-tokens" and e["identity"] == f"admin:{user}" for e in entries)


def test_fake_state_survives_restart_and_pat_bearer_policy(tmp_path: Path, stack: Stack) -> None:
    """In-process fake on a copy of the stack's key: tokens persist across a restart; with
    pat_bearer_may_manage=False a PAT's bearer gets 403."""

    def serve(manage: bool) -> tuple[Any, str]:
        cfg = Config(
            state_dir=tmp_path / "hub",
            admin_user="acme",
            admin_secret="admin-secret-for-test",
            org="acmecorp",
            key_path=stack.root / "signing.key",
            cert_path=stack.root / "signing.crt",
            pat_bearer_may_manage=manage,
        )
        server = make_server(cfg)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, "http://{}:{}".format(*server.server_address[:2])

    server, api = serve(True)
    try:
        fake_env = {
            "REGCRED_DOCKERHUB_API": api,
            "REGCRED_DOCKERHUB_ADMIN_USER": "acme",
            "REGCRED_DOCKERHUB_ADMIN_TOKEN": "admin-secret-for-test",
        }
        pat = mint_pat(fake_env, ["repo:write"], label="persisted")
    finally:
        server.shutdown()
        server.server_close()
    assert pat["token"] not in (tmp_path / "hub" / "state.json").read_text()

    server, api = serve(False)
    try:
        fake_env["REGCRED_DOCKERHUB_API"] = api
        bearer = hub_bearer(fake_env, "acme", pat["token"])  # the PAT survived the restart
        listing = hub(fake_env, "GET", "/v2/access-tokens").json()
        assert [r["uuid"] for r in listing["results"]] == [pat["uuid"]]
        assert_hub_error(hub(fake_env, "GET", "/v2/access-tokens", bearer=bearer), 403)
    finally:
        server.shutdown()
        server.server_close()


def test_down_stops_everything_and_up_refuses_a_running_dir(tmp_path: Path) -> None:
    s = Stack.up(tmp_path / "s")
    pids = s.pids()
    assert set(pids) == set(PROCESSES) and {"moto", "registry", "dockerhub", "static-registry"} <= set(pids)
    assert {"gitlab", "harbor", "artifactory", "ghcr"} <= set(pids)
    ticks = {name: _start_ticks(pid) for name, pid in pids.items()}
    assert all(ticks.values())
    with pytest.raises(StackError, match="already running"):
        Stack.up(tmp_path / "s")
    os.kill(pids["moto"], signal.SIGKILL)  # an already-dead pid must be tolerated
    stopped = Stack.attach(tmp_path / "s").down()
    assert set(stopped) <= set(pids)
    s.down()  # twice is fine (reaps the in-process children)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_start_ticks(p) == ticks[n] for n, p in pids.items()):
        time.sleep(0.05)
    assert not [n for n, p in pids.items() if _start_ticks(p) == ticks[n]], "a process survived down()"
    assert not list((tmp_path / "s").glob("*.pid")) and not (tmp_path / "s" / "env").exists()
