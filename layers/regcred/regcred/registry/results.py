"""What a pull check proved, per image and for a set of images. No secret is ever part of a result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ImageCheck", "PullCheck", "PullStatus"]


class PullStatus(StrEnum):
    """What a manifest HEAD with the credential proved."""

    OK = "ok"
    # The registry served the manifest without asking for any credential: nothing about the credential
    # was proven (an open registry, or a public image the credential was not needed for).
    OPEN = "open"
    CREDENTIALS_REJECTED = "credentials_rejected"
    NO_ACCESS = "no_access"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"


# A check that ended in one of these says something against the credential or the image.
FAILING = frozenset({PullStatus.CREDENTIALS_REJECTED, PullStatus.NO_ACCESS, PullStatus.NOT_FOUND})
# A check that ended in one of these says nothing either way: try again later.
UNCHECKED = frozenset({PullStatus.UNREACHABLE, PullStatus.RATE_LIMITED})


@dataclass(frozen=True)
class ImageCheck:
    """The outcome for one image; ``detail`` is short human text and never holds a secret."""

    image: str
    status: PullStatus
    detail: str
    http_status: int | None = None
    ratelimit_remaining: str | None = None
    ratelimit_limit: str | None = None


@dataclass(frozen=True)
class PullCheck:
    """The outcome of a pull check for a set of images on one registry."""

    registry: str
    images: tuple[ImageCheck, ...]

    @property
    def ok(self) -> bool:
        """True when every image pulls and the credential was exercised for at least one of them.

        Images served without credentials (`PullStatus.OPEN`) pull, but prove nothing; a check where every
        image is open is not ok. False when there was nothing to check."""
        statuses = {i.status for i in self.images}
        return (
            bool(self.images) and statuses <= {PullStatus.OK, PullStatus.OPEN} and PullStatus.OK in statuses
        )

    @property
    def unproven(self) -> bool:
        """True when every image pulled but none needed the credential: nothing proves it."""
        return bool(self.images) and all(i.status is PullStatus.OPEN for i in self.images)

    @property
    def credentials_rejected(self) -> bool:
        """True when the registry or its token server refused the credential for any image."""
        return any(i.status is PullStatus.CREDENTIALS_REJECTED for i in self.images)

    @property
    def failed(self) -> bool:
        """True when any image says something against the credential or the image (rejected, no
        access, not found)."""
        return any(i.status in FAILING for i in self.images)

    @property
    def could_not_check(self) -> bool:
        """True when any image could not be checked (unreachable or rate limited): retry later."""
        return any(i.status in UNCHECKED for i in self.images)

    def summary(self) -> str:
        """One clause per image that is not ok, without any secret."""
        return "; ".join(
            f"{i.image}: {i.status.value} ({i.detail})" for i in self.images if i.status is not PullStatus.OK
        )
