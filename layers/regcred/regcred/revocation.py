"""Revoke only what regcred minted for this secret.

A token id read from a secret value is a claim, not a fact: a copied value, a hand-edited one or a hostile
one may name another secret's token. Before any revocation the vendor's own record of the token must show
a regcred label that belongs to this secret (`regcred.labels.belongs_to`); the id must also have the
vendor's format (the provider encodes it as one URL path segment). Orphans (credentials labelled for the
secret that no version holds) are found in the vendor's listing, by the same label rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from . import labels
from .observability import logger
from .providers.base import Provider, VendorToken

__all__ = ["RevokeResult", "orphans", "revoke_minted"]


class RevokeResult(StrEnum):
    """What became of a revocation request."""

    REVOKED = "revoked"
    ALREADY_GONE = "already_gone"
    NOT_MINTED_FOR_SECRET = "not_minted_for_secret"  # noqa: S105 - an outcome, not a secret
    INVALID_ID = "invalid_id"
    WOULD_REVOKE = "would_revoke"  # a dry run: every check passed, nothing was sent

    @property
    def done(self) -> bool:
        """The credential is dead (revoked now or before)."""
        return self in (RevokeResult.REVOKED, RevokeResult.ALREADY_GONE)


def revoke_minted(
    provider: Provider, token_id: str, secret_name: str, *, dry_run: bool = False
) -> RevokeResult:
    """Revoke ``token_id`` if, and only if, the vendor's record shows regcred minted it for this secret.
    ``dry_run`` makes every check (a read at the vendor) and revokes nothing."""
    if not isinstance(token_id, str) or not provider.valid_token_id(token_id):
        logger.warning(
            "not revoked: token id has not the vendor's format", extra={"provider": provider.spec.name}
        )
        return RevokeResult.INVALID_ID
    record = provider.describe_token(token_id)
    if record is None:
        return RevokeResult.ALREADY_GONE
    if not labels.belongs_to(record.label, secret_name):
        logger.warning(
            "not revoked: the vendor's record of this token is not labelled for this secret",
            extra={"token_id": token_id, "provider": provider.spec.name},
        )
        return RevokeResult.NOT_MINTED_FOR_SECRET
    if dry_run:
        return RevokeResult.WOULD_REVOKE
    provider.revoke(token_id)
    logger.info("credential revoked", extra={"token_id": token_id, "provider": provider.spec.name})
    return RevokeResult.REVOKED


def orphans(
    listing: Iterable[VendorToken],
    secret_name: str,
    held: Iterable[str | None],
    *,
    rotation: str | None = None,
    except_rotation: str | None = None,
) -> list[VendorToken]:
    """Live credentials labelled for the secret that no version holds.

    ``rotation`` keeps only those minted by that rotation; ``except_rotation`` leaves that rotation's alone
    (a concurrent try of it may be about to store one)."""
    keep = {t for t in held if t}
    out: list[VendorToken] = []
    for token in listing:
        if not token.active or token.token_id in keep or not labels.belongs_to(token.label, secret_name):
            continue
        minted_by = labels.rotation_of(token.label)
        if rotation is not None and minted_by != rotation:
            continue
        if except_rotation is not None and minted_by == except_rotation:
            continue
        out.append(token)
    return out
