"""Vendor providers. ``build`` turns a secret's tags into the provider that rotates it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..config import SecretConfig
from ..errors import ConfigurationError
from ..secret import SecretValue
from . import dockerhub
from .base import IssuedCredential, Provider, Strategy, VendorToken

if TYPE_CHECKING:
    import requests

    from ..registry import Credential

__all__ = [
    "IssuedCredential",
    "Provider",
    "Strategy",
    "VendorToken",
    "build",
    "read_admin_credential",
    "realm_hosts_for",
    "registry_for",
]

KNOWN = ("dockerhub",)


def _check_known(name: str) -> None:
    if name not in KNOWN:
        raise ConfigurationError(
            f"unknown provider {name!r} in the regcred:provider tag; known: {', '.join(KNOWN)}"
        )


def registry_for(cfg: SecretConfig, value: SecretValue | None = None) -> str:
    """The registry a secret's credential is for: the value's, the tag's, else the vendor's."""
    _check_known(cfg.provider)
    if value is not None and value.registry:
        return value.registry
    return cfg.registry or dockerhub.DEFAULT_REGISTRY


def realm_hosts_for(cfg: SecretConfig) -> frozenset[str]:
    """Token realm hosts the secret trusts besides the registry itself.

    The vendor's own realm, the hosts of the ``regcred:realm-hosts`` tag, and the vendor API host
    named by ``regcred:api`` (already trusted with the admin credential)."""
    _check_known(cfg.provider)
    hosts = set(dockerhub.DEFAULT_REALM_HOSTS) | set(cfg.realm_hosts)
    if cfg.api:
        hosts.add(dockerhub.api_host(cfg.api))
    return frozenset(hosts)


def read_admin_credential(sm: Any, secret_id: str) -> Credential:
    """The vendor admin identity from its own secret: JSON ``{"username","password"}``."""
    from ..registry import Credential  # requests loads with the first vendor call

    try:
        response = sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except sm.exceptions.ResourceNotFoundException:
        raise ConfigurationError(
            f"admin secret {secret_id} does not exist: create it or fix the regcred:admin-secret tag"
        ) from None
    try:
        raw = json.loads(response.get("SecretString") or "")
        username, password = raw["username"], raw["password"]
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f'admin secret {secret_id} must hold JSON {{"username": ..., "password": ...}}'
        ) from None
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise ConfigurationError(f"admin secret {secret_id} has an empty username or password")
    return Credential(username, password)


def build(
    cfg: SecretConfig,
    sm: Any,
    value: SecretValue | None = None,
    session: requests.Session | None = None,
) -> Provider:
    """The provider for a managed secret, with its admin credential read from Secrets Manager."""
    _check_known(cfg.provider)
    if not cfg.admin_secret:
        raise ConfigurationError(
            "no regcred:admin-secret tag: name the secret that holds the Docker Hub admin identity"
        )
    admin = read_admin_credential(sm, cfg.admin_secret)
    return dockerhub.DockerHubProvider(
        admin,
        api=cfg.api or dockerhub.DEFAULT_API,
        registry=registry_for(cfg, value),
        org=cfg.org,
        realm_hosts=realm_hosts_for(cfg),
        session=session,
    )
