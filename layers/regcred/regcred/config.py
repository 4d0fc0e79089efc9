"""Per-secret configuration, read from the secret's tags.

Configuration that is not per credential lives in tags so that changing it never creates a secret
version (docs/ARCHITECTURE.md, "The secret"). Tag values allow only letters, digits, spaces and ``_.:/=+-@``,
so lists are separated by spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .errors import ConfigurationError
from .timefmt import parse_time

PREFIX = "regcred:"
MANAGED = "regcred:managed"
PROVIDER = "regcred:provider"
ADMIN_SECRET = "regcred:admin-secret"  # noqa: S105 - a tag key
ADMIN_MARK = "regcred:admin"
# On an admin secret: which managed secrets may use it (exact names, or prefixes ending in "*").
ADMIN_FOR = "regcred:admin-for"
API = "regcred:api"
REGISTRY = "regcred:registry"
REALM_HOSTS = "regcred:realm-hosts"
IMAGES = "regcred:images"
GRACE = "regcred:grace"
TTL = "regcred:ttl"
ORG = "regcred:org"
# The sweep rotates ahead of expiry once the remaining lifetime falls under this fraction of the whole.
ROTATE_FRACTION = "regcred:rotate-fraction"
# ECR pull-through cache: the ecr-pullthroughcache/... secret that mirrors AWSCURRENT as {"username",
# "accessToken"}; that secret must carry regcred:mirror-of=<this secret's name> (a two-sided binding).
ECR_MIRROR = "regcred:ecr-mirror"
MIRROR_OF = "regcred:mirror-of"
ECR_MIRROR_PREFIX = "ecr-pullthroughcache/"
# Bookkeeping written by regcred itself: the only tags the functions' IAM lets them write.
PROMOTED_AT = "regcred:promoted-at"
PROMOTED_VERSION = "regcred:promoted-version"
RETIRED_TOKEN = "regcred:retired-token-id"  # noqa: S105 - a tag key
# The rotate function's last failed step: "<version> <step> <error>: <reason>" (regcred rotate --wait
# reads it).
LAST_FAILURE = "regcred:last-rotation-failure"
# Written by the sweep: when AWSCURRENT last pulled its images with a fresh login, and what the last sweep
# saw and will do next (`regcred.sweep.SweepRecord`, read by `regcred status`).
VALID_AT = "regcred:valid-at"
SWEEP = "regcred:sweep"
BOOKKEEPING_TAGS = (PROMOTED_AT, PROMOTED_VERSION, RETIRED_TOKEN, LAST_FAILURE, VALID_AT, SWEEP)

DEFAULT_GRACE_S = 24 * 3600
DEFAULT_TTL_S = 90 * 24 * 3600
DAY = 86400
# A minted credential lives at least an hour (a rotation must have time to prove and promote it) and at
# most ten years; a replaced one stays valid for at most 90 days.
TTL_RANGE = (3600, 3650 * DAY)
GRACE_RANGE = (0, 90 * DAY)
DEFAULT_ROTATE_FRACTION = 0.25
ROTATE_FRACTION_RANGE = (0.05, 0.9)

_TAG_VALUE_BAD = re.compile(r"[^\w\s+=.:/@-]")


def tag_value(text: str) -> str:
    """A value within Batch's and Secrets Manager's tag rules: ``[\\w\\s+=.:/@-]``, at most 256 characters."""
    return _TAG_VALUE_BAD.sub("_", text)[:256]


# ASCII digits only: Python's \d would take "٣٠" for 30.
_DURATION_RE = re.compile(r"[ ]*([0-9]{1,10})[ ]*([smhd]?)[ ]*", re.ASCII)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _human(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_duration(text: str, what: str, *, minimum: int = 0, maximum: int = 3650 * DAY) -> int:
    """Seconds in a duration such as ``90``, ``45m``, ``24h`` or ``30d``, within [minimum, maximum].

    ``what`` names the setting as the user wrote it (a tag, a flag, a variable), for the message."""
    match = _DURATION_RE.fullmatch(text) if isinstance(text, str) and len(text) <= 40 else None
    if not match:
        shown = repr(text[:40]) if isinstance(text, str) else type(text).__name__
        raise ConfigurationError(f"{what} must be a duration such as 24h, 30m or 7d (got {shown})")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not minimum <= seconds <= maximum:
        raise ConfigurationError(
            f"{what} must be between {_human(minimum)} and {_human(maximum)} (got {text.strip()!r})"
        )
    return seconds


def tags_to_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Secrets Manager's ``[{"Key","Value"}]`` tag list as a dict."""
    return {t["Key"]: t.get("Value", "") for t in tags or ()}


@dataclass(frozen=True)
class SecretConfig:
    """What the tags of one managed secret say."""

    provider: str
    admin_secret: str | None
    api: str | None
    registry: str | None
    realm_hosts: tuple[str, ...]
    images: tuple[str, ...]
    grace_s: int
    ttl_s: int
    org: str | None
    promoted_at: datetime | None
    retired_token_id: str | None
    rotate_fraction: float = DEFAULT_ROTATE_FRACTION
    ecr_mirror: str | None = None
    # Every tag of the secret: provider settings are read from them (`regcred.providers.settings_of`).
    tags: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], secret_name: str) -> SecretConfig:
        """Read and check the tags; errors say which tag to set."""
        if tags.get(MANAGED, "").lower() != "true":
            raise ConfigurationError(
                f"secret {secret_name} is not managed by regcred: tag it {MANAGED}=true "
                "(regcred onboard does this)"
            )
        provider = tags.get(PROVIDER, "").strip()
        if not provider:
            raise ConfigurationError(f"secret {secret_name} has no {PROVIDER} tag (e.g. dockerhub)")
        promoted = tags.get(PROMOTED_AT, "").strip()
        grace_s = (
            parse_duration(tags[GRACE], f"the {GRACE} tag", minimum=GRACE_RANGE[0], maximum=GRACE_RANGE[1])
            if tags.get(GRACE)
            else DEFAULT_GRACE_S
        )
        ttl_s = (
            parse_duration(tags[TTL], f"the {TTL} tag", minimum=TTL_RANGE[0], maximum=TTL_RANGE[1])
            if tags.get(TTL)
            else DEFAULT_TTL_S
        )
        if grace_s >= ttl_s:
            raise ConfigurationError(
                f"secret {secret_name}: {GRACE} ({_human(grace_s)}) must be shorter than {TTL} "
                f"({_human(ttl_s)}), or the replaced credential expires before its grace period ends"
            )
        return cls(
            rotate_fraction=_fraction(tags.get(ROTATE_FRACTION, ""), secret_name),
            ecr_mirror=_mirror(tags.get(ECR_MIRROR, ""), secret_name),
            provider=provider,
            admin_secret=tags.get(ADMIN_SECRET, "").strip() or None,
            api=tags.get(API, "").strip() or None,
            registry=tags.get(REGISTRY, "").strip() or None,
            realm_hosts=tuple(tags.get(REALM_HOSTS, "").split()),
            images=tuple(tags.get(IMAGES, "").split()),
            grace_s=grace_s,
            ttl_s=ttl_s,
            org=tags.get(ORG, "").strip() or None,
            promoted_at=_tag_time(promoted, PROMOTED_AT) if promoted else None,
            retired_token_id=tags.get(RETIRED_TOKEN, "").strip() or None,
            tags=dict(tags),
        )


def _fraction(text: str, secret_name: str) -> float:
    """The regcred:rotate-fraction tag: a decimal within ROTATE_FRACTION_RANGE (default 0.25)."""
    text = text.strip()
    if not text:
        return DEFAULT_ROTATE_FRACTION
    low, high = ROTATE_FRACTION_RANGE
    if not re.fullmatch(r"0?\.[0-9]{1,4}", text, re.ASCII) or not low <= float(text) <= high:
        raise ConfigurationError(
            f"secret {secret_name}: the {ROTATE_FRACTION} tag must be a fraction of the token's lifetime "
            f"between {low} and {high}, such as 0.25 (got {text[:20]!r})"
        )
    return float(text)


def _mirror(text: str, secret_name: str) -> str | None:
    """The regcred:ecr-mirror tag: the name of an ecr-pullthroughcache/... secret, or None."""
    text = text.strip()
    if not text:
        return None
    if (
        not text.startswith(ECR_MIRROR_PREFIX)
        or text == ECR_MIRROR_PREFIX
        or len(text) > 512
        or not re.fullmatch(r"[A-Za-z0-9/_+=.@-]+", text, re.ASCII)
        or text.startswith("arn:")
    ):
        raise ConfigurationError(
            f"secret {secret_name}: the {ECR_MIRROR} tag must name a secret whose name starts with "
            f"{ECR_MIRROR_PREFIX} (what ECR pull-through cache rules accept), got {text[:60]!r}"
        )
    return text


def _tag_time(text: str, tag: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise ConfigurationError(
            f"the {tag} tag is not an ISO 8601 time (e.g. 2027-01-01T00:00:00Z)"
        ) from None


def admin_serves(patterns: str, secret_name: str) -> bool:
    """Whether an admin secret's ``regcred:admin-for`` tag lets ``secret_name`` use it: each space-separated
    entry is an exact secret name, or a prefix ending in ``*`` (``*`` alone: every secret)."""
    for entry in patterns.split():
        if entry.endswith("*"):
            if secret_name.startswith(entry[:-1]):
                return True
        elif entry == secret_name:
            return True
    return False
