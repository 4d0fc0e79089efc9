"""The Provider protocol: what a vendor must offer for regcred to rotate its tokens."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class Strategy(enum.Enum):
    """How a vendor's credentials are replaced without downtime."""

    # Mint a new credential, promote it, revoke the old one after a grace period.
    OVERLAP = "overlap"
    # Two identities; regenerate the idle one (for vendors whose regenerate kills the old secret).
    ALTERNATING = "alternating"


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

    name: str
    strategy: Strategy
    registry: str
    realm_hosts: frozenset[str]

    def issue(self, label: str, expires_at: datetime | None) -> IssuedCredential:
        """Mint a pull credential carrying ``label`` (the rotation's ClientRequestToken in it)."""
        ...

    def find_by_label(self, label: str) -> list[VendorToken]:
        """Every live credential whose label is ``label``."""
        ...

    def revoke(self, token_id: str) -> None:
        """Revoke a credential; one that is already gone is not an error."""
        ...
