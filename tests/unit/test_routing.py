"""Routing comes only from configuration: provider built-ins and deployment allow-lists, picked by tags."""

from __future__ import annotations

import pytest

from regcred import config
from regcred.config import SecretConfig
from regcred.errors import ConfigurationError
from regcred.hosts import Origin
from regcred.providers import dockerhub
from regcred.routing import Deployment, Routing, check_value_registry, parse_origin, resolve

HUB = dockerhub.SPEC


def cfg(**tags: str) -> SecretConfig:
    return SecretConfig.from_tags(
        {config.MANAGED: "true", config.PROVIDER: "dockerhub", **tags}, "batch/pull"
    )


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("harbor.example.com", Origin("https", "harbor.example.com", 443)),
        ("harbor.example.com:8443", Origin("https", "harbor.example.com", 8443)),
        ("https://Harbor.Example.com/", Origin("https", "harbor.example.com", 443)),
        ("http://127.0.0.1:5000", Origin("http", "127.0.0.1", 5000)),
        ("http://[::1]:5000", Origin("http", "::1", 5000)),
        ("[2001:db8::1]:443", Origin("https", "2001:db8::1", 443)),
    ],
)
def test_allow_list_entries(text: str, origin: Origin) -> None:
    assert parse_origin(text, what="X") == origin


@pytest.mark.parametrize(
    "text",
    [
        "http://harbor.example.com",  # plain http off loopback
        "http://localhost:5000",  # http only to a loopback IP literal
        "https://user:pw@harbor.example.com",
        "https://harbor.example.com/api",
        "ftp://harbor.example.com",
        "harbor.example.com:99999",
        "",
        "https://[fe80::1%eth0]:443",
        "harbor example.com",
    ],
)
def test_bad_allow_list_entries_are_refused_and_named(text: str) -> None:
    with pytest.raises(ConfigurationError, match="REGCRED_ALLOWED_REGISTRY_HOSTS"):
        parse_origin(text, what="REGCRED_ALLOWED_REGISTRY_HOSTS")


def test_deployment_from_env_and_flags() -> None:
    deployment = Deployment.from_env(
        {
            "REGCRED_ALLOWED_REGISTRY_HOSTS": "harbor.example.com, http://127.0.0.1:5000",
            "REGCRED_ALLOWED_API_HOSTS": "",
        },
        extra_api_hosts=["https://gitlab.example.com"],
    )
    assert deployment.registry_hosts == {
        Origin("https", "harbor.example.com", 443),
        Origin("http", "127.0.0.1", 5000),
    }
    assert deployment.api_hosts == {Origin("https", "gitlab.example.com", 443)}
    assert deployment.local_origins == {Origin("http", "127.0.0.1", 5000)}


def test_defaults_are_the_providers_own_hosts() -> None:
    route = resolve(HUB, cfg(), Deployment())
    assert route.registry == Origin("https", "registry-1.docker.io", 443)
    assert route.api == Origin("https", "hub.docker.com", 443)
    assert route.realms == {Origin("https", "auth.docker.io", 443), route.api}


def test_tags_pick_among_allowed_hosts() -> None:
    deployment = Deployment(
        registry_hosts=frozenset(
            {Origin("http", "127.0.0.1", 5000), Origin("https", "realm.example.com", 443)}
        ),
        api_hosts=frozenset({Origin("http", "127.0.0.1", 6000)}),
    )
    route = resolve(
        HUB,
        cfg(
            **{
                config.REGISTRY: "127.0.0.1:5000",
                config.API: "127.0.0.1:6000",
                config.REALM_HOSTS: "realm.example.com",
            }
        ),
        deployment,
    )
    assert route.registry == Origin("http", "127.0.0.1", 5000)  # the allow-list decides the scheme
    assert route.api == Origin("http", "127.0.0.1", 6000)
    assert Origin("https", "realm.example.com", 443) in route.realms


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (config.REGISTRY, "evil.example"),
        (config.REGISTRY, "https://registry-1.docker.io:8443"),
        (config.API, "https://evil.example"),
        (config.API, "registry-1.docker.io"),  # a registry host is not an API host
        (config.REALM_HOSTS, "evil.example"),
        (config.REALM_HOSTS, "auth.docker.io evil.example"),
    ],
)
def test_a_tag_never_adds_a_host(tag: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match="never add one"):
        resolve(HUB, cfg(**{tag: value}), Deployment())


@pytest.mark.parametrize(
    ("value_registry", "ok"),
    [
        ("", True),
        ("registry-1.docker.io", True),
        ("docker.io", True),
        ("index.docker.io:443", True),
        ("registry-1.docker.io:5000", False),
        ("evil.example", False),
        ("127.0.0.1:5000", False),
    ],
)
def test_a_value_registry_must_be_the_configured_one(value_registry: str, ok: bool) -> None:
    route = resolve(HUB, cfg(), Deployment())
    if ok:
        check_value_registry(value_registry, route, secret="batch/pull")
    else:
        with pytest.raises(ConfigurationError, match="nothing was minted or sent"):
            check_value_registry(value_registry, route, secret="batch/pull")


def test_names_registry_uses_the_default_port_of_the_scheme() -> None:
    route = Routing("x", Origin("https", "harbor.example.com", 443), None, frozenset())
    assert route.names_registry("harbor.example.com") and route.names_registry("harbor.example.com:443")
    assert not route.names_registry("harbor.example.com:80")
    assert not route.names_registry("not a host")


def test_docker_hub_names_in_a_tag_mean_its_registry() -> None:
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io:443"):
        assert (
            resolve(HUB, cfg(**{config.REGISTRY: name}), Deployment()).registry.host == "registry-1.docker.io"
        )


def test_messages_never_quote_user_info() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_origin("https://user:hunter2-password@ghcr.io", what="X")
    assert "hunter2-password" not in str(caught.value) and "ghcr.io" in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        resolve(HUB, cfg(**{config.REGISTRY: "user:hunter2-password@evil.example"}), Deployment())
    assert "hunter2-password" not in str(caught.value)


def test_local_only_refuses_every_host_off_this_machine() -> None:
    from regcred import providers
    from regcred.config import SecretConfig

    local = Deployment.from_env(
        {
            "REGCRED_LOCAL_ONLY": "1",
            "REGCRED_ALLOWED_REGISTRY_HOSTS": "http://127.0.0.1:5000",
            "REGCRED_ALLOWED_API_HOSTS": "http://127.0.0.1:5001",
        }
    )
    spec = providers.spec_for("dockerhub")
    base = {"regcred:managed": "true", "regcred:provider": "dockerhub", "regcred:admin-secret": "a"}
    # The provider's defaults (registry-1.docker.io, hub.docker.com) are refused, naming the flag to use.
    with pytest.raises(ConfigurationError, match=r"REGCRED_LOCAL_ONLY.*--registry"):
        resolve(spec, SecretConfig.from_tags(base, "s"), local)
    picked = {**base, "regcred:registry": "127.0.0.1:5000", "regcred:api": "http://127.0.0.1:5001"}
    route = resolve(spec, SecretConfig.from_tags(picked, "s"), local)
    assert route.registry_name == "127.0.0.1:5000"
    assert {o.host for o in route.realms} == {"127.0.0.1"}  # auth.docker.io is dropped
    # Without the flag, the same tags keep the provider's own realm.
    open_ = Deployment.from_env({k: v for k, v in local_env().items() if k != "REGCRED_LOCAL_ONLY"})
    assert "auth.docker.io" in {
        o.host for o in resolve(spec, SecretConfig.from_tags(picked, "s"), open_).realms
    }


def local_env() -> dict[str, str]:
    return {
        "REGCRED_ALLOWED_REGISTRY_HOSTS": "http://127.0.0.1:5000",
        "REGCRED_ALLOWED_API_HOSTS": "http://127.0.0.1:5001",
    }
