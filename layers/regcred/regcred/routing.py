"""Where a credential may go: decided by configuration only, never by a secret value or a server.

Three roles, each with its own hosts:

- the **registry** a pull credential is checked against and the **token realms** it may be sent to;
- the **vendor API** that receives the vendor's admin credential.

Each provider declares built-in hosts for its roles (Docker Hub: registry-1.docker.io, auth.docker.io,
hub.docker.com). The deployer may allow more, deployment-wide: ``REGCRED_ALLOWED_REGISTRY_HOSTS`` (registries
and token realms) and ``REGCRED_ALLOWED_API_HOSTS`` (vendor APIs), template parameters passed to the
functions as environment variables, and ``--allow-registry-host`` / ``--allow-api-host`` or the same
variables for the CLI. A secret's tags (``regcred:registry``, ``regcred:api``, ``regcred:realm-hosts``) may
*pick* among those hosts, never add one. Entries are ``host``, ``host:port`` or ``https://host[:port]``
(https), or ``http://<loopback IP>:port`` for a local stack; plain http is possible nowhere else.

``REGCRED_LOCAL_ONLY=1`` (the local stack's ``.stack/env`` sets it) narrows every role to loopback hosts: the
providers' built-in hosts are then refused, so following the README on the local stack can never send
anything to a real vendor or registry.

A secret value's ``registry`` field is a record of where its credential works, not an instruction: one that
differs from the configured registry is refused (`check_value_registry`) before anything is minted or sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ConfigurationError
from .hosts import DEFAULT_PORTS, Origin, is_loopback_literal, is_loopback_name, split_host_port

__all__ = [
    "ALLOWED_API_HOSTS_ENV",
    "ALLOWED_REGISTRY_HOSTS_ENV",
    "Deployment",
    "Routing",
    "check_value_registry",
    "parse_origin",
    "resolve",
]

ALLOWED_API_HOSTS_ENV = "REGCRED_ALLOWED_API_HOSTS"
ALLOWED_REGISTRY_HOSTS_ENV = "REGCRED_ALLOWED_REGISTRY_HOSTS"
LOCAL_ONLY_ENV = "REGCRED_LOCAL_ONLY"
_SEPARATORS = re.compile(r"[\s,]+")
_MAX_ENTRIES = 64


def parse_origin(text: str, *, what: str) -> Origin:
    """``host[:port]``, ``https://host[:port]`` or ``http://<loopback IP>[:port]`` as an origin.

    A trailing ``/`` is allowed; any other path, a query, user info or another scheme is refused."""
    raw = text.strip() if isinstance(text, str) else ""
    scheme = "https"
    rest = raw
    if "://" in raw:
        scheme, _, rest = raw.partition("://")
        scheme = scheme.lower()
        rest = rest[:-1] if rest.endswith("/") else rest
    hp = split_host_port(rest) if rest and "/" not in rest and "@" not in rest else None
    if hp is None or scheme not in DEFAULT_PORTS:
        raise ConfigurationError(
            f"{what}: {_shown(raw)!r} is not a host: use host, host:port or https://host[:port] "
            "(http://<loopback IP>:port only for a local stack)"
        )
    host, port = hp
    if scheme == "http" and not is_loopback_literal(host):
        raise ConfigurationError(
            f"{what}: plain http to {host!r} would send credentials in clear text; use https "
            "(http only to a loopback IP address, for a local stack)"
        )
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def _shown(raw: str) -> str:
    """A configured value for a message: printable, short, and never what precedes an '@' (user info)."""
    text = "".join(c if 0x20 < ord(c) < 0x7F else "?" for c in raw[:100])
    if "@" in text:
        scheme, sep, rest = text.partition("://")
        text = (scheme + sep if sep else "") + "<redacted>@" + (rest if sep else text).rpartition("@")[2]
    return text


def _parse_list(text: str | None, *, what: str) -> frozenset[Origin]:
    entries = [e for e in _SEPARATORS.split(text or "") if e]
    if len(entries) > _MAX_ENTRIES:
        raise ConfigurationError(f"{what}: more than {_MAX_ENTRIES} hosts")
    return frozenset(parse_origin(e, what=what) for e in entries)


@dataclass(frozen=True)
class Deployment:
    """The deployment's allow-lists, beyond the providers' built-in hosts."""

    registry_hosts: frozenset[Origin] = frozenset()
    api_hosts: frozenset[Origin] = frozenset()
    local_only: bool = False  # REGCRED_LOCAL_ONLY: loopback destinations only (the local stack)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        extra_registry_hosts: Iterable[str] = (),
        extra_api_hosts: Iterable[str] = (),
    ) -> Deployment:
        """Read ``REGCRED_ALLOWED_REGISTRY_HOSTS`` and ``REGCRED_ALLOWED_API_HOSTS`` (plus CLI flags)."""
        env = os.environ if env is None else env
        registry = _parse_list(env.get(ALLOWED_REGISTRY_HOSTS_ENV), what=ALLOWED_REGISTRY_HOSTS_ENV)
        api = _parse_list(env.get(ALLOWED_API_HOSTS_ENV), what=ALLOWED_API_HOSTS_ENV)
        registry |= {parse_origin(h, what="--allow-registry-host") for h in extra_registry_hosts}
        api |= {parse_origin(h, what="--allow-api-host") for h in extra_api_hosts}
        local_only = env.get(LOCAL_ONLY_ENV, "").strip().lower() in ("1", "true", "yes")
        return cls(registry_hosts=frozenset(registry), api_hosts=frozenset(api), local_only=local_only)

    def admits(self, origin: Origin) -> bool:
        """Whether this deployment may send anything to ``origin`` at all."""
        return not self.local_only or is_loopback_name(origin.host)

    @property
    def local_origins(self) -> frozenset[Origin]:
        """The allowed destinations that are loopback (a local stack): the transport lets only these reach
        loopback addresses, and only the http ones among them use plain http."""
        return frozenset(o for o in self.registry_hosts | self.api_hosts if is_loopback_name(o.host))


@dataclass(frozen=True)
class Routing:
    """Where one managed secret's credentials may go."""

    provider: str
    registry: Origin
    api: Origin | None
    realms: frozenset[Origin]

    @property
    def registry_name(self) -> str:
        """The registry as image references name it (host[:port])."""
        return self.registry.netloc

    def names_registry(self, text: str) -> bool:
        """Whether ``text`` (``host[:port]``, as a secret value or an image names a registry) is this
        secret's registry. Docker Hub's names (docker.io, index.docker.io) count as Docker Hub."""
        from .registry.reference import normalise_registry

        normalised = normalise_registry(text)
        if normalised is None:
            return False
        hp = split_host_port(normalised)
        if hp is None:
            return False
        host, port = hp
        return (host, port if port is not None else DEFAULT_PORTS[self.registry.scheme]) == (
            self.registry.host,
            self.registry.port,
        )


def _pick(text: str, allowed: frozenset[Origin], *, what: str, where: str) -> Origin:
    """The allowed origin a tag value names. Without a scheme, the allow-list's scheme for that host and port
    is taken (a local stack's http entry, else https)."""
    from .registry.reference import normalise_registry

    raw = text.strip()
    if "://" in raw:
        wanted = parse_origin(raw, what=what)
        if wanted in allowed:
            return wanted
    else:
        bare = raw[:-1] if raw.endswith("/") else raw
        # Docker Hub's names (docker.io, index.docker.io) mean its registry, registry-1.docker.io.
        normalised = normalise_registry(bare) if split_host_port(bare) else None
        hp = split_host_port(normalised) if normalised else None
        if hp is None:
            raise ConfigurationError(
                f"{what}: {_shown(raw)!r} is not a host (host, host:port or https://host[:port])"
            )
        host, port = hp
        for origin in sorted(allowed, key=lambda o: o.scheme != "https"):
            if (
                origin.host == host
                and (port if port is not None else DEFAULT_PORTS[origin.scheme]) == origin.port
            ):
                return origin
    raise ConfigurationError(
        f"{what}: {_shown(raw)!r} is not among the hosts this deployment allows for it ({where}); a tag may "
        "pick one of those hosts, never add one. The deployer adds hosts with the template parameter or the "
        "environment variable named there"
    )


def _choose(
    tag_value: str | None,
    default: Origin | None,
    allowed: frozenset[Origin],
    *,
    provider: str,
    role: str,
    tag: str,
    env: str,
    example: str,
) -> Origin:
    """One role's host (registry, API): what the tag picks among ``allowed``, else the provider's default."""
    if tag_value:
        where = f"the {provider} provider's own {role} or {env}"
        return _pick(tag_value, allowed, what=f"the {tag} tag", where=where)
    if default is None:
        raise ConfigurationError(
            f"the {provider} provider has no default {role}: tag the secret {tag}={example} with a host "
            f"from {env}"
        )
    return default


def resolve(spec: object, cfg: object, deployment: Deployment) -> Routing:
    """The routing of a managed secret: its provider's built-ins and the deployment's allow-lists, as the
    secret's tags pick among them. ``spec`` is a `regcred.providers.base.ProviderSpec`, ``cfg`` a
    `regcred.config.SecretConfig`."""
    from .config import SecretConfig
    from .providers.base import ProviderSpec

    assert isinstance(spec, ProviderSpec) and isinstance(cfg, SecretConfig)
    registry = _choose(
        cfg.registry,
        spec.default_registry,
        spec.registries | deployment.registry_hosts,
        provider=spec.name,
        role="registry",
        tag="regcred:registry",
        env=ALLOWED_REGISTRY_HOSTS_ENV,
        example="HOST",
    )
    api = (
        _choose(
            cfg.api,
            spec.default_api,
            spec.apis | deployment.api_hosts,
            provider=spec.name,
            role="API",
            tag="regcred:api",
            env=ALLOWED_API_HOSTS_ENV,
            example="https://HOST",
        )
        if spec.needs_api
        else None
    )
    realms = set(spec.realms)
    if api is not None:
        # The API host already receives the admin credential, which can mint pull credentials: sending it
        # a pull credential gives it nothing more. Self-managed GitLab's realm lives there.
        realms.add(api)
    realm_choices = spec.realms | deployment.registry_hosts | deployment.api_hosts
    for entry in cfg.realm_hosts:
        realms.add(
            _pick(
                entry,
                realm_choices,
                what="the regcred:realm-hosts tag",
                where=f"{ALLOWED_REGISTRY_HOSTS_ENV}",
            )
        )
    for origin, role, flag in ((registry, "registry", "--registry"), (api, "vendor API", "--api")):
        if origin is not None and not deployment.admits(origin):
            raise ConfigurationError(
                f"{LOCAL_ONLY_ENV} is set (the local stack's environment is sourced): the {role} "
                f"{origin.netloc} "
                f"is not on this machine, so nothing is sent there. Name the stack's own with {flag} (its "
                f"REGCRED_<PROVIDER>_* variables), or unset {LOCAL_ONLY_ENV} to use real hosts"
            )
    realms = {r for r in realms if deployment.admits(r)}
    return Routing(provider=spec.name, registry=registry, api=api, realms=frozenset(realms))


def route_of(cfg: object, deployment: Deployment) -> Routing:
    """The routing of a managed secret from its configuration alone (its provider's spec, by name)."""
    from .config import SecretConfig
    from .providers import spec_for

    assert isinstance(cfg, SecretConfig)
    return resolve(spec_for(cfg.provider), cfg, deployment)


def route_unmanaged(registry: str, deployment: Deployment) -> Routing | None:
    """Where the credential of a secret regcred does not manage may be sent to check it (diagnose): only a
    provider's own registry or one the deployment allows, never a host that only a job definition names.
    None when ``registry`` is neither."""
    from .providers import plugins

    for spec in (p.spec for p in plugins().values()):
        if deployment.local_only:
            break
        if spec.default_registry is not None and spec.default_registry.netloc == registry:
            return Routing(spec.name, spec.default_registry, None, spec.realms)
    for origin in deployment.registry_hosts:
        if origin.netloc == registry:
            return Routing("unmanaged", origin, None, deployment.registry_hosts)
    return None


def check_value_registry(value_registry: str, routing: Routing, *, secret: str) -> None:
    """Refuse a secret value whose ``registry`` field is not the configured registry: a value never decides
    where a credential goes, so a mismatch means the value or the tags are wrong."""
    if value_registry and not routing.names_registry(value_registry):
        shown = "".join(c if 0x20 < ord(c) < 0x7F else "?" for c in value_registry[:100])
        raise ConfigurationError(
            f"secret {secret}: its value names registry {shown!r}, but regcred is configured for "
            f"{routing.registry_name!r} (the regcred:registry tag or the {routing.provider} default); "
            'nothing was minted or sent. Fix the value\'s "registry" field, or the tag'
        )
