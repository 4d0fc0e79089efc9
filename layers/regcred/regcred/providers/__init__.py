"""Vendor providers, by name. `spec_for` gives what a provider declares; `build` makes one for a secret.

The admin credential a provider mints with lives in its own secret, named by the managed secret's
``regcred:admin-secret`` tag, and is bound to the secrets it serves: the admin secret must be marked
``regcred:admin=true`` and its ``regcred:admin-for`` tag must name the managed secret (exact names, or
prefixes ending in ``*``). A managed secret that points at an admin secret it may not use is refused before
anything is minted (`read_admin_credential`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import safejson
from ..config import ADMIN_FOR, ADMIN_MARK, SecretConfig, admin_serves
from ..errors import ConfigurationError
from . import dockerhub
from .base import IssuedCredential, Provider, ProviderSpec, Strategy, VendorToken

if TYPE_CHECKING:
    from ..http.deadline import Deadline
    from ..http.transport import Transport
    from ..registry.credential import Credential
    from ..routing import Routing
    from ..store import SecretStore

__all__ = [
    "KNOWN",
    "IssuedCredential",
    "Provider",
    "ProviderSpec",
    "Strategy",
    "VendorToken",
    "build",
    "read_admin_credential",
    "spec_for",
]

SPECS: dict[str, ProviderSpec] = {dockerhub.SPEC.name: dockerhub.SPEC}
KNOWN = tuple(SPECS)
MAX_ADMIN_SECRET_BYTES = 16 * 1024


def spec_for(name: str) -> ProviderSpec:
    """The spec of a provider by name; ConfigurationError naming the known ones otherwise."""
    spec = SPECS.get(name)
    if spec is None:
        shown = "".join(c if 0x20 < ord(c) < 0x7F else "?" for c in str(name)[:40])
        raise ConfigurationError(
            f"unknown provider {shown!r} in the regcred:provider tag; known: {', '.join(KNOWN)}"
        )
    return spec


def read_admin_credential(
    store: SecretStore | Any, admin_secret_id: str, *, secret_name: str, require_binding: bool = True
) -> Credential:
    """The vendor admin identity for ``secret_name``, from its own secret: JSON ``{"username","password"}``.

    Refused (ConfigurationError, nothing minted) unless the admin secret is marked ``regcred:admin=true``,
    is not itself a managed secret, and its ``regcred:admin-for`` tag names ``secret_name`` (onboarding checks
    the rest before it binds the admin secret: ``require_binding=False``)."""
    from ..registry.credential import Credential
    from ..store import CURRENT, SecretNotFound, SecretStore

    store = SecretStore.of(store)
    try:
        meta = store.describe(admin_secret_id)
    except SecretNotFound:
        raise ConfigurationError(
            f"admin secret {admin_secret_id} does not exist: create it or fix the regcred:admin-secret tag"
        ) from None
    tags = meta.tags
    name = meta.name
    if name == secret_name or meta.managed:
        raise ConfigurationError(
            f"secret {secret_name}: its regcred:admin-secret names a managed secret ({name}); an admin "
            "secret holds the vendor's admin credential and is never itself rotated by regcred"
        )
    bound = tags.get(ADMIN_MARK, "").lower() == "true" and admin_serves(tags.get(ADMIN_FOR, ""), secret_name)
    if require_binding and not bound:
        raise ConfigurationError(
            f"admin secret {name} may not be used for {secret_name}: tag it {ADMIN_MARK}=true and list the "
            f"secret (or a prefix ending in '*') in its {ADMIN_FOR} tag, e.g. "
            f"aws secretsmanager tag-resource --secret-id {name} --tags Key={ADMIN_MARK},Value=true "
            f"Key={ADMIN_FOR},Value={secret_name}; nothing was minted"
        )
    try:
        response = store.read_reply(meta.arn, stage=CURRENT)
    except SecretNotFound:
        raise ConfigurationError(f"admin secret {name} has no AWSCURRENT value") from None
    try:
        raw = safejson.loads(response.get("SecretString") or "", max_bytes=MAX_ADMIN_SECRET_BYTES)
    except ValueError as exc:
        raise ConfigurationError(
            f'admin secret {name} must hold JSON {{"username": ..., "password": ...}} ({exc})'
        ) from None
    if not isinstance(raw, dict):
        raise ConfigurationError(
            f'admin secret {name} must hold a JSON object {{"username": ..., "password": ...}}'
        )
    username, password = raw.get("username"), raw.get("password")
    for field, item in (("username", username), ("password", password)):
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f'admin secret {name} has no "{field}" (a non-empty string)')
        if len(item) > 4096 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in item):
            raise ConfigurationError(f'admin secret {name}: "{field}" is too long or has control characters')
    assert isinstance(username, str) and isinstance(password, str)
    return Credential(username, password)


def build(
    cfg: SecretConfig,
    routing: Routing,
    admin: Credential,
    *,
    transport: Transport,
    deadline: Deadline | None = None,
) -> Provider:
    """The provider for a managed secret, on its resolved routing."""
    spec = spec_for(cfg.provider)
    if spec is dockerhub.SPEC:
        assert routing.api is not None
        return dockerhub.DockerHubProvider(
            admin, api=routing.api, org=cfg.org, transport=transport, deadline=deadline
        )
    raise ConfigurationError(
        f"provider {spec.name} cannot be built"
    )  # pragma: no cover - SPECS and build agree
