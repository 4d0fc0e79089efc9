"""Per-secret configuration, read from the secret's tags.

Configuration that is not per credential lives in tags so that changing it never creates a secret
version (docs/ARCHITECTURE.md, "The secret"). Tag values allow only letters, digits, spaces and ``_.:/=+-@``,
so lists are separated by spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .errors import ConfigurationError
from .secret import parse_time

PREFIX = "regcred:"
MANAGED = "regcred:managed"
PROVIDER = "regcred:provider"
ADMIN_SECRET = "regcred:admin-secret"  # noqa: S105 - a tag key
ADMIN_MARK = "regcred:admin"
API = "regcred:api"
REGISTRY = "regcred:registry"
REALM_HOSTS = "regcred:realm-hosts"
IMAGES = "regcred:images"
GRACE = "regcred:grace"
TTL = "regcred:ttl"
ORG = "regcred:org"
# Bookkeeping written by regcred itself.
PROMOTED_AT = "regcred:promoted-at"
PROMOTED_VERSION = "regcred:promoted-version"
RETIRED_TOKEN = "regcred:retired-token-id"  # noqa: S105 - a tag key

DEFAULT_GRACE_S = 24 * 3600
DEFAULT_TTL_S = 90 * 24 * 3600

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str) -> int:
    """Seconds in a duration such as ``90``, ``45m``, ``24h`` or ``30d``."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ConfigurationError(f"{what} must be a duration such as 24h, 30m or 7d (got {text!r})")
    return int(match.group(1)) * _UNITS[match.group(2)]


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
        return cls(
            provider=provider,
            admin_secret=tags.get(ADMIN_SECRET, "").strip() or None,
            api=tags.get(API, "").strip() or None,
            registry=tags.get(REGISTRY, "").strip() or None,
            realm_hosts=tuple(tags.get(REALM_HOSTS, "").split()),
            images=tuple(tags.get(IMAGES, "").split()),
            grace_s=parse_duration(tags[GRACE], GRACE) if tags.get(GRACE) else DEFAULT_GRACE_S,
            ttl_s=parse_duration(tags[TTL], TTL) if tags.get(TTL) else DEFAULT_TTL_S,
            org=tags.get(ORG, "").strip() or None,
            promoted_at=parse_time(promoted, PROMOTED_AT) if promoted else None,
            retired_token_id=tags.get(RETIRED_TOKEN, "").strip() or None,
        )
