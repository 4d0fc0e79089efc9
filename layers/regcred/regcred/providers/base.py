"""The Provider protocol: what a vendor must offer for regcred to rotate its credentials.

A provider mints, lists, describes and revokes credentials at one vendor with the vendor's admin
credential, over regcred's one transport. It never decides where anything is sent: its `ProviderSpec`
declares built-in hosts, and `regcred.routing` resolves the hosts of one secret from those and the
deployment's allow-lists. It never revokes on its own judgement either: `regcred.revocation` checks the
vendor's own record of a token (its label) before calling `Provider.revoke`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..hosts import Origin


class Strategy(enum.Enum):
    """How a vendor's credentials are replaced without downtime."""

    # Mint a new credential, promote it, revoke the old one after a grace period.
    OVERLAP = "overlap"
    # Two identities; regenerate the idle one (for vendors whose regenerate kills the old secret).
    ALTERNATING = "alternating"


@dataclass(frozen=True)
class ProviderSpec:
    """What a provider declares about itself (hosts, strategy, label limit)."""

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
