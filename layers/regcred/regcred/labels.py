"""The label regcred gives every credential it mints at a vendor, and what a label says.

``regcred <owner> <rotation> <secret name...>``, cut to the vendor's limit (Docker Hub: 100 characters):

- ``owner``: the first 10 hex digits of SHA-256 of the managed secret's name, so that two secrets whose
  names share a long prefix never claim each other's credentials;
- ``rotation``: the ClientRequestToken of the rotation that minted it (``onboard-<uuid>`` for onboarding;
  an imported credential is not minted and carries no label), so that a retried or crashed step finds
  what it minted;
- the secret's name, as much as fits, for people reading the vendor's console.

Revocation trusts only this: a token id is revoked for a secret only when the vendor's own record of the
token carries a label that belongs to that secret (`belongs_to`), whatever a secret value claims.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["Label", "belongs_to", "label_for", "owner_of", "parse"]

PREFIX = "regcred"
_OWNER_RE = re.compile(r"[0-9a-f]{10}")
_ROTATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,71}")


def owner_of(secret_name: str) -> str:
    """The owner field of a label: 10 hex digits of SHA-256 of the secret's name."""
    return hashlib.sha256(secret_name.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def label_for(secret_name: str, rotation: str, *, max_length: int = 100) -> str:
    """The label of a credential minted for ``secret_name`` by ``rotation``."""
    if _ROTATION_RE.fullmatch(rotation) is None:
        raise ValueError("a rotation token is 1-72 letters, digits, '-' or '_'")
    head = f"{PREFIX} {owner_of(secret_name)} {rotation} "
    if len(head) > max_length:
        raise ValueError(f"the label would be longer than {max_length} characters")
    return (head + secret_name)[:max_length].rstrip()


@dataclass(frozen=True)
class Label:
    """What a regcred label says."""

    owner: str
    rotation: str
    name_head: str


def parse(label: object) -> Label | None:
    """The parts of a regcred label; None for any other text."""
    if not isinstance(label, str) or len(label) > 1024:
        return None
    parts = label.split(" ", 3)
    if len(parts) < 3 or parts[0] != PREFIX or not _OWNER_RE.fullmatch(parts[1]):
        return None
    if _ROTATION_RE.fullmatch(parts[2]) is None:
        return None
    return Label(parts[1], parts[2], parts[3] if len(parts) == 4 else "")


def belongs_to(label: object, secret_name: str) -> bool:
    """Whether a vendor-side label says the credential was minted for ``secret_name``."""
    parsed = parse(label)
    return (
        parsed is not None
        and parsed.owner == owner_of(secret_name)
        and secret_name.startswith(parsed.name_head)
    )


def rotation_of(label: object) -> str | None:
    """The rotation token a label names, if it is a regcred label."""
    parsed = parse(label)
    return parsed.rotation if parsed is not None else None
