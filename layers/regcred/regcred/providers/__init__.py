"""Vendor providers, as plug-ins registered by name. `spec_for` gives what a provider declares; `build` makes
one for a secret.

Built-in providers are listed in `BUILTIN`. A company adds its own without forking: a Python package that
exposes a `ProviderPlugin` in the entry-point group ``regcred.providers`` (``[project.entry-points.
"regcred.providers"] acme = "acme_regcred:PLUGIN"``) and is installed beside regcred (in the Lambda layer,
and where the CLI runs). A plug-in runs with regcred's privileges: install only code you trust. A plug-in
may not take a built-in's name; one that fails to load is reported by ``regcred providers`` and otherwise
left out. docs/ARCHITECTURE.md, "Providers", says what a provider declares and how to write one.

The admin credential a provider mints with lives in its own secret, named by the managed secret's
``regcred:admin-secret`` tag, and is bound to the secrets it serves: the admin secret must be marked
``regcred:admin=true`` and its ``regcred:admin-for`` tag must name the managed secret (exact names, or
prefixes ending in ``*``). A managed secret that points at an admin secret it may not use is refused before
anything is minted (`read_admin_credential`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import redact, safejson
from ..config import ADMIN_FOR, ADMIN_MARK, SecretConfig, admin_serves
from ..errors import ConfigurationError
from .base import (
    AdminCredential,
    AdminField,
    BuildContext,
    ImportedCredential,
    IssuedCredential,
    Lifetime,
    Provider,
    ProviderPlugin,
    ProviderSpec,
    Setting,
    Strategy,
    TokenInspector,
    VendorToken,
)

if TYPE_CHECKING:
    from ..http.deadline import Deadline
    from ..http.transport import Transport
    from ..routing import Routing
    from ..store import SecretStore

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdminCredential",
    "AdminField",
    "BuildContext",
    "ImportedCredential",
    "IssuedCredential",
    "Lifetime",
    "Provider",
    "ProviderPlugin",
    "ProviderSpec",
    "Setting",
    "Strategy",
    "TokenInspector",
    "VendorToken",
    "build",
    "known",
    "load_errors",
    "plugins",
    "read_admin_credential",
    "settings_of",
    "spec_for",
]

ENTRY_POINT_GROUP = "regcred.providers"
MAX_ADMIN_SECRET_BYTES = 16 * 1024
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# The admin secret of a provider that declares none: {"username", "password"}.
DEFAULT_ADMIN_FIELDS = (
    AdminField("username", "the vendor user"),
    AdminField("password", "its password or token", secret=True),
)


def _builtin() -> dict[str, ProviderPlugin]:
    from . import artifactory, dockerhub, ghcr, gitlab, harbor, static

    found = {}
    for module in (dockerhub, gitlab, harbor, artifactory, ghcr, static):
        plugin = module.PLUGIN
        found[plugin.spec.name] = plugin
    return found


_PLUGINS: dict[str, ProviderPlugin] | None = None
_LOAD_ERRORS: dict[str, str] = {}


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def plugins(*, reload: bool = False) -> dict[str, ProviderPlugin]:
    """Every provider by name: the built-ins, then the entry-point plug-ins that load and are valid."""
    global _PLUGINS
    if _PLUGINS is not None and not reload:
        return _PLUGINS
    found = _builtin()
    _LOAD_ERRORS.clear()
    for ep in _entry_points():
        name = str(ep.name)
        try:
            loaded = ep.load()
            plugin = loaded() if callable(loaded) and not isinstance(loaded, ProviderPlugin) else loaded
        except Exception as exc:  # a broken plug-in must not take the built-ins down with it
            _LOAD_ERRORS[name] = f"failed to load {ep.value}: {type(exc).__name__}"
            continue
        problem = _plugin_problem(name, plugin, found)
        if problem:
            _LOAD_ERRORS[name] = problem
            continue
        found[name] = plugin
    _PLUGINS = found
    return found


def _plugin_problem(name: str, plugin: Any, found: Mapping[str, ProviderPlugin]) -> str | None:
    if not isinstance(plugin, ProviderPlugin):
        return "is not a regcred.providers.ProviderPlugin"
    if plugin.spec.name != name:
        return f"declares the name {plugin.spec.name!r} under the entry point {name!r}"
    if _NAME_RE.fullmatch(name) is None:
        return "has a name that is not 1-32 lower-case letters, digits, '-' or '_'"
    if name in found:
        return "takes the name of a provider that exists already"
    if not callable(plugin.factory):
        return "has no factory"
    return None


def load_errors() -> dict[str, str]:
    """Entry-point plug-ins that were left out, and why."""
    plugins()
    return dict(_LOAD_ERRORS)


def known() -> tuple[str, ...]:
    """The names of every provider."""
    return tuple(plugins())


def spec_for(name: str) -> ProviderSpec:
    """The spec of a provider by name; ConfigurationError naming the known ones otherwise."""
    plugin = plugins().get(name)
    if plugin is None:
        shown = "".join(c if 0x20 < ord(c) < 0x7F else "?" for c in str(name)[:40])
        raise ConfigurationError(
            f"unknown provider {shown!r} in the regcred:provider tag; known: {', '.join(known())}"
        )
    return plugin.spec


def settings_of(spec: ProviderSpec, cfg: SecretConfig, *, secret_name: str = "") -> dict[str, str]:
    """The provider settings of a secret (its ``regcred:<setting>`` tags), checked, defaults applied."""
    out: dict[str, str] = {}
    for item in spec.settings:
        value = (cfg.tags.get(item.tag) or "").strip()
        if not value:
            if item.required:
                raise ConfigurationError(
                    f"secret {secret_name or '?'}: a {spec.name} secret needs the {item.tag} tag "
                    f"({item.help})"
                )
            if item.default is not None:
                out[item.name] = item.default
            continue
        try:
            out[item.name] = item.check(value, provider=spec.name)
        except ValueError as exc:
            raise ConfigurationError(f"secret {secret_name or '?'}: {exc}") from None
    return out


def read_admin_credential(
    store: SecretStore | Any,
    admin_secret_id: str,
    *,
    secret_name: str,
    require_binding: bool = True,
    spec: ProviderSpec | None = None,
) -> AdminCredential:
    """The vendor admin identity for ``secret_name``, from its own secret: a JSON object with the fields the
    provider declares (``{"username","password"}`` by default).

    Refused (ConfigurationError, nothing minted) unless the admin secret is marked ``regcred:admin=true``,
    is not itself a managed secret, and its ``regcred:admin-for`` tag names ``secret_name`` (onboarding checks
    the rest before it binds the admin secret: ``require_binding=False``). A missing field is named."""
    from ..store import CURRENT, SecretNotFound, SecretStore

    fields = spec.admin_fields if spec is not None and spec.admin_fields else DEFAULT_ADMIN_FIELDS
    vendor = f"{spec.name} " if spec is not None else ""
    shape = "{" + ", ".join(f'"{f.name}": ...' for f in fields) + "}"
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
        raise ConfigurationError(f"{vendor}admin secret {name} must hold JSON {shape} ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{vendor}admin secret {name} must hold a JSON object {shape}")
    values: dict[str, str] = {}
    for item in fields:
        value = raw.get(item.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if item.required:
                raise ConfigurationError(
                    f'{vendor}admin secret {name} has no "{item.name}" ({item.help}); it must hold {shape}'
                )
            continue
        if not isinstance(value, str):
            raise ConfigurationError(f'{vendor}admin secret {name}: "{item.name}" must be a string')
        if len(value) > 4096 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ConfigurationError(
                f'{vendor}admin secret {name}: "{item.name}" is too long or has control characters'
            )
        if item.secret:
            redact.remember(value)
        values[item.name] = value
    return AdminCredential(values)


def build(
    cfg: SecretConfig,
    routing: Routing,
    admin: AdminCredential | None,
    *,
    transport: Transport,
    deadline: Deadline | None = None,
    secret_name: str = "",
) -> Any:
    """The provider for a managed secret, on its resolved routing: a `Provider`, or a `TokenInspector` for
    a provider that cannot mint."""
    plugin = plugins().get(cfg.provider)
    if plugin is None:
        spec_for(cfg.provider)  # raises, naming the known ones
        raise AssertionError  # pragma: no cover
    spec = plugin.spec
    if spec.needs_admin and admin is None:
        raise ConfigurationError(f"the {spec.name} provider needs its admin secret (regcred:admin-secret)")
    ctx = BuildContext(
        spec=spec,
        cfg=cfg,
        settings=settings_of(spec, cfg, secret_name=secret_name),
        routing=routing,
        admin=admin,
        transport=transport,
        deadline=deadline,
    )
    return plugin.factory(ctx)
