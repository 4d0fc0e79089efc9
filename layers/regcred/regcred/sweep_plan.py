"""The sweep's vocabulary and pure decisions: what it records of a secret (`SweepRecord`, the
``regcred:sweep`` tag), when a credential is rotated ahead of expiry (`rotation_due`), what comes next
(`plan_next`), and the deployment's settings. No I/O: `regcred.sweep` acts on them, `regcred status` reads
them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .config import DAY, SecretConfig, parse_duration, tag_value
from .errors import ConfigurationError
from .rotation_rules import RetireResult
from .timefmt import format_time, parse_time_or_none

__all__ = [
    "EXPIRING_SOON_S",
    "LIVE_PREVIOUS",
    "ORPHAN_INTERVAL_S",
    "RECORD_REFRESH_S",
    "Failure",
    "NextAction",
    "SweepRecord",
    "SweepSettings",
    "plan_next",
    "ratelimit_count",
    "rotation_due",
]

# Orphans are looked for at most this often per secret (a vendor listing per secret per sweep would be
# thousands of vendor API calls an hour), and after every promotion.
ORPHAN_INTERVAL_S = DAY
# A secret whose credential expires within this is "expiring soon" once it is under its rotation point.
EXPIRING_SOON_S = DAY
# A sweep that sees what the last one recorded writes no tag, unless the record is older than this: at 10,000
# secrets every 15 minutes a TagResource per secret per sweep would be 11 calls a second for nothing new.
# So regcred:valid-at is at most this old while nothing changes.
RECORD_REFRESH_S = 3600


class Failure(StrEnum):
    """What kept a secret from being proven, as the ``regcred:sweep`` record and `regcred status` name it."""

    CREDENTIALS_REJECTED = "credentials_rejected"
    NO_ACCESS = "no_access"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"
    UNPROVEN = "unproven"  # every image pulled without credentials: nothing proved the credential
    MISCONFIGURED = "misconfigured"
    SECRET_FORMAT = "secret_format"  # noqa: S105 - a failure class, not a secret
    ERROR = "error"


class NextAction(StrEnum):
    """What the sweep will do next about a secret."""

    CHECK = "check"
    ROTATE = "rotate"
    RETIRE = "retire"
    WAIT_ROTATION = "wait_rotation"
    IMPORT = "import"
    ENABLE_ROTATION = "enable_rotation"
    FIX = "fix"


@dataclass(frozen=True)
class SweepSettings:
    """The sweep's deployment settings (the function's environment)."""

    period_s: int = 900
    parallelism: int = 16
    secret_deadline_s: float = 30.0
    fanout_threshold: int = 200
    per_secret_metrics: bool = True
    queue_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SweepSettings:
        """Read and check REGCRED_SWEEP_*; a bad value fails the invocation with a message naming it."""
        env = os.environ if env is None else env

        def number(name: str, default: int, low: int, high: int) -> int:
            text = env.get(name, "").strip() or str(default)
            if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
                raise ConfigurationError(f"{name} must be a whole number between {low} and {high}")
            return int(text)

        return cls(
            period_s=parse_duration(
                env.get("REGCRED_SWEEP_PERIOD", "15m"), "REGCRED_SWEEP_PERIOD", minimum=60, maximum=DAY
            ),
            parallelism=number("REGCRED_SWEEP_PARALLELISM", 16, 1, 64),
            secret_deadline_s=float(
                parse_duration(
                    env.get("REGCRED_SWEEP_SECRET_DEADLINE", "30s"),
                    "REGCRED_SWEEP_SECRET_DEADLINE",
                    minimum=5,
                    maximum=600,
                )
            ),
            fanout_threshold=number("REGCRED_SWEEP_FANOUT_THRESHOLD", 200, 1, 1_000_000),
            per_secret_metrics=env.get("REGCRED_PER_SECRET_METRICS", "true").strip().lower() != "false",
            queue_url=env.get("REGCRED_SWEEP_QUEUE_URL", "").strip() or None,
        )

    @property
    def lease_s(self) -> int:
        """How long one sweep holds a secret: less than a period, so the next scheduled sweep may claim it."""
        return max(30, self.period_s - 60)


def rotation_due(
    now: datetime, issued_at: datetime | None, expires_at: datetime | None, fraction: float, period_s: int
) -> tuple[bool, datetime | None]:
    """Whether a credential must be rotated now, and when the sweep that rotates it is due.

    A rotation starts at the last sweep before the remaining lifetime falls under ``fraction`` of the whole:
    by the next sweep it would be under it. Without an expiry (or an issue time) there is nothing to do."""
    if expires_at is None or issued_at is None or expires_at <= issued_at:
        return False, None
    lifetime = (expires_at - issued_at).total_seconds()
    rotate_at = expires_at - timedelta(seconds=fraction * lifetime + period_s)
    return now >= rotate_at, rotate_at


# What `Rotator.retire_previous` says of a previous credential that is still alive and will be retired.
LIVE_PREVIOUS = frozenset(
    {RetireResult.IN_GRACE.value, RetireResult.CURRENT_UNPROVEN.value, RetireResult.MIRROR_STALE.value}
)


def plan_next(
    cfg: SecretConfig,
    *,
    now: datetime,
    period_s: int,
    can_mint: bool,
    rotation_enabled: bool,
    rejected: bool,
    issued_at: datetime | None,
    expires_at: datetime | None,
    previous_live: bool,
) -> tuple[NextAction, datetime | None]:
    """What the sweep will do next about a secret, and when: the earliest of rotating (now, for a rejected
    credential; ahead of expiry otherwise) and retiring a live previous credential after its grace period;
    else the next check. A rotation regcred cannot start is an operator's action (import, enable rotation)."""
    rotate = NextAction.ROTATE
    if not can_mint:
        rotate = NextAction.IMPORT
    elif not rotation_enabled:
        rotate = NextAction.ENABLE_ROTATION
    if rejected:
        return rotate, now
    choices: list[tuple[datetime, NextAction]] = []
    _, rotate_at = rotation_due(now, issued_at, expires_at, cfg.rotate_fraction, period_s)
    if rotate_at is not None:
        choices.append((max(rotate_at, now), rotate))
    if previous_live and cfg.promoted_at is not None:
        choices.append((max(cfg.promoted_at + timedelta(seconds=cfg.grace_s), now), NextAction.RETIRE))
    if not choices:
        return NextAction.CHECK, now + timedelta(seconds=period_s)
    when, action = min(choices, key=lambda c: c[0])
    return action, when


def ratelimit_count(text: str | None) -> int | None:
    """The count of a RateLimit header (Docker Hub: ``76;w=21600``)."""
    match = re.match(r"\s*([0-9]{1,12})", text or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SweepRecord:
    """What the last sweep saw and will do, as the ``regcred:sweep`` tag holds it: space-separated
    ``key=value`` pairs within the tag rules (never a secret: times, counts, enum values, token ids)."""

    at: datetime
    valid: bool | None
    failure: str | None = None
    ratelimit_remaining: int | None = None
    ratelimit_limit: int | None = None
    previous: str | None = None  # a RetireResult value, or "none"
    orphans_revoked: int = 0
    orphans_at: datetime | None = None
    rotation: str | None = None  # started / in_progress / not_enabled / import_needed
    next_action: str = NextAction.CHECK
    next_at: datetime | None = None
    mirror: str | None = None  # the ECR mirror: in_sync, written or stale (None: no mirror)

    def same_as(self, other: SweepRecord) -> bool:
        """The same observations and plan, whenever they were made (a planned check's time moves on)."""
        mine, theirs = replace(self, at=other.at), other
        if self.next_action == NextAction.CHECK and other.next_action == NextAction.CHECK:
            mine = replace(mine, next_at=other.next_at)
        return mine.tag_text() == theirs.tag_text()

    def tag_text(self) -> str:
        pairs = {
            "at": format_time(self.at),
            "valid": "-" if self.valid is None else str(int(self.valid)),
            "failure": self.failure or "-",
            "ratelimit": (
                f"{self.ratelimit_remaining}/{self.ratelimit_limit or '-'}"
                if self.ratelimit_remaining is not None
                else "-"
            ),
            "previous": self.previous or "-",
            "orphans": str(self.orphans_revoked),
            "orphans-at": format_time(self.orphans_at) if self.orphans_at else "-",
            "rotation": self.rotation or "-",
            "next": self.next_action,
            "next-at": format_time(self.next_at) if self.next_at else "-",
            # Last: were the text ever cut at 256 characters, this is what would go.
            "mirror": self.mirror or "-",
        }
        return tag_value(" ".join(f"{k}={v}" for k, v in pairs.items()))

    @classmethod
    def parse(cls, text: str | None) -> SweepRecord | None:
        """The record in a tag; None when there is none or it is not one (a hand-edited tag is ignored)."""
        if not text or len(text) > 256:
            return None
        pairs = dict(item.partition("=")[::2] for item in text.split())
        at = parse_time_or_none(pairs.get("at"))
        if at is None:
            return None

        def value(key: str) -> str | None:
            found = pairs.get(key, "-")
            return None if found in ("-", "") else found

        def count(text: str | None) -> int | None:
            return int(text) if text and text.isascii() and text.isdigit() and len(text) < 13 else None

        remaining, _, limit = (value("ratelimit") or "").partition("/")
        return cls(
            at=at,
            valid={"1": True, "0": False}.get(pairs.get("valid", "-")),
            failure=value("failure"),
            ratelimit_remaining=count(remaining),
            ratelimit_limit=count(limit),
            previous=value("previous"),
            orphans_revoked=count(value("orphans")) or 0,
            orphans_at=parse_time_or_none(value("orphans-at")),
            rotation=value("rotation"),
            next_action=value("next") or NextAction.CHECK,
            next_at=parse_time_or_none(value("next-at")),
            mirror=value("mirror"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": format_time(self.at),
            "valid": self.valid,
            "failure": self.failure,
            "ratelimit_remaining": self.ratelimit_remaining,
            "ratelimit_limit": self.ratelimit_limit,
            "previous": self.previous,
            "orphans_revoked": self.orphans_revoked,
            "orphans_checked_at": format_time(self.orphans_at) if self.orphans_at else None,
            "rotation": self.rotation,
            "next_action": self.next_action,
            "next_at": format_time(self.next_at) if self.next_at else None,
            "mirror": self.mirror,
        }
