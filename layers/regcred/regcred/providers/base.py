"""The Provider protocol and what a provider declares about itself (`ProviderSpec`).

A provider mints, lists, describes and revokes credentials at one vendor with the vendor's admin
credential, over regcred's one transport. It never decides where anything is sent: its `ProviderSpec`
declares built-in hosts, and `regcred.routing` resolves the hosts of one secret from those and the
deployment's allow-lists. It never revokes on its own judgement either: `regcred.revocation` checks the
vendor's own record of a token (its label) before calling `Provider.revoke`.

A provider is registered as a `ProviderPlugin` (its spec and a factory), built in or through the Python
entry-point group ``regcred.providers`` (docs/ARCHITECTURE.md, "Providers").
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..hosts import Origin

if TYPE_CHECKING:
    from ..config import SecretConfig
    from ..http.deadline import Deadline
    from ..http.transport import Transport
    from ..routing import Routing

__all__ = [
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
]


class Strategy(enum.Enum):
    """How a vendor's credentials are replaced without downtime."""

    # Mint a new credential, promote it, revoke the old one after a grace period.
    OVERLAP = "overlap"
    # Two identities; regenerate the idle one (for vendors whose regenerate kills the old secret).
    ALTERNATING = "alternating"
    # regcred cannot mint: an operator supplies each new credential (`regcred import`), which goes through
    # the same pending -> test -> promote path, and the old one is retired after the grace period.
    IMPORT = "import"


@dataclass(frozen=True)
class AdminField:
    """One field of the admin secret's JSON object."""

    name: str
    help: str
    secret: bool = False  # its value is a credential: remembered for redaction, never shown
    required: bool = True


@dataclass(frozen=True)
class Setting:
    """A per-secret provider setting: the tag ``regcred:<name>`` (``regcred onboard --<name>``)."""

    name: str
    help: str
    required: bool = False
    pattern: str | None = None  # the whole value must match (re.fullmatch)
    choices: tuple[str, ...] = ()
    default: str | None = None

    @property
    def tag(self) -> str:
        return f"regcred:{self.name}"

    def check(self, value: str, *, provider: str) -> str:
        """The value, or ValueError saying what the setting accepts."""
        if self.choices and value not in self.choices:
            raise ValueError(
                f"the {self.tag} tag of a {provider} secret must be one of {', '.join(self.choices)}"
            )
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise ValueError(f"the {self.tag} tag of a {provider} secret is not valid: {self.help}")
        return value


@dataclass(frozen=True)
class Lifetime:
    """The lifetimes a vendor allows for the credentials regcred mints (seconds)."""

    min_s: int = 3600
    max_s: int | None = None  # None: no vendor cap
    never_expires: bool = False  # the vendor can mint credentials that never expire
    note: str = ""  # granularity, defaults, thresholds, in a sentence


@dataclass(frozen=True)
class ProviderSpec:
    """What a provider declares about itself: hosts, strategy, limits, admin secret, settings."""

    name: str
    strategy: Strategy
    default_registry: Origin | None
    default_api: Origin | None
    # Built-in hosts per role, defaults included. A secret's tags may pick among these and the
    # deployment's allow-lists (regcred.routing).
    registries: frozenset[Origin] = frozenset()
    apis: frozenset[Origin] = frozenset()
    realms: frozenset[Origin] = frozenset()
    needs_api: bool = True
    label_max: int = 100
    # What `regcred providers` and the README's provider table show.
    title: str = ""
    credential: str = ""  # what regcred mints (or imports)
    setup: str = ""  # what to create at the vendor
    admin_permissions: str = ""  # the least privilege the admin identity needs
    username_form: str = ""  # the registry username of the credentials it produces
    realm_note: str = ""  # where the registry and token realm are, and how a self-managed install's are set
    lifetime: Lifetime = Lifetime()
    cannot: tuple[str, ...] = ()  # what regcred cannot do for this vendor
    admin_fields: tuple[AdminField, ...] = ()  # empty: no admin secret at all
    settings: tuple[Setting, ...] = ()

    @property
    def can_mint(self) -> bool:
        return self.strategy is not Strategy.IMPORT

    @property
    def needs_admin(self) -> bool:
        return bool(self.admin_fields)

    def setting(self, name: str) -> Setting:
        for item in self.settings:
            if item.name == name:
                return item
        raise KeyError(name)


@dataclass(frozen=True)
class AdminCredential:
    """The validated JSON object of an admin secret: the fields its provider declares."""

    fields: Mapping[str, str] = field(repr=False)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    @property
    def username(self) -> str:
        return self.fields.get("username", "")

    @property
    def password(self) -> str:
        return self.fields.get("password", "")


@dataclass(frozen=True)
class BuildContext:
    """Everything a provider factory gets for one managed secret."""

    spec: ProviderSpec
    cfg: SecretConfig
    settings: Mapping[str, str]  # validated, defaults applied, by setting name
    routing: Routing
    admin: AdminCredential | None  # None when the spec has no admin_fields
    transport: Transport
    deadline: Deadline | None = None


@dataclass(frozen=True)
class IssuedCredential:
    """A credential just minted at the vendor. The password is shown once."""

    username: str
    password: str = field(repr=False)
    token_id: str
    expires_at: datetime | None


@dataclass(frozen=True)
class VendorToken:
    """A credential as the vendor lists it: never its secret."""

    token_id: str
    label: str
    active: bool
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ImportedCredential:
    """What a vendor says about a credential an operator supplies (`TokenInspector.inspect`)."""

    expires_at: datetime | None = None
    username: str | None = None  # the vendor's name for the token's user, when it reports one
    notes: tuple[str, ...] = ()  # facts worth telling the operator (never the token)


class Provider(Protocol):
    """A vendor that mints pull credentials for one registry."""

    spec: ProviderSpec

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        """Mint a pull credential carrying ``label``. The request is sent once: when its outcome is unknown
        (no answer, 502/504) this raises `MintOutcomeUnknown` and the caller looks the label up."""
        ...

    def list_tokens(self) -> list[VendorToken]:
        """Every live credential the admin identity can see at the vendor (every page)."""
        ...

    def describe_token(self, token_id: str) -> VendorToken | None:
        """The vendor's record of one credential; None when it does not exist (any more)."""
        ...

    def valid_token_id(self, token_id: str) -> bool:
        """Whether ``token_id`` has the vendor's id format (checked before it goes into any URL)."""
        ...

    def revoke(self, token_id: str) -> None:
        """Revoke a credential; one that is already gone is not an error. Only `regcred.revocation` calls
        this, after checking the vendor's record of the token."""
        ...


class TokenInspector(Protocol):
    """What an IMPORT provider can do at its vendor with a credential an operator supplies."""

    spec: ProviderSpec

    def inspect(self, username: str, password: str) -> ImportedCredential:
        """What the vendor says about the credential (its expiry, its user); ProviderError when the vendor
        rejects it or it lacks what pulls need."""
        ...

    def can_revoke(self) -> bool:
        """Whether retirement revokes the old credential at the vendor (by value)."""
        ...

    def revoke_value(self, password: str) -> None:
        """Revoke a credential by its value. Only retirement calls this, for a credential that a version of
        the secret held and no staged-current version holds."""
        ...


Factory = Callable[[BuildContext], "Provider | TokenInspector"]


@dataclass(frozen=True)
class ProviderPlugin:
    """A provider as registered: its spec and the factory that builds it for one secret. A third-party
    package exposes one in the entry-point group ``regcred.providers``."""

    spec: ProviderSpec
    factory: Factory
