"""What a rotation would do, found without writing anything (``regcred rotate --dry-run``).

It runs createSecret's checks (routing, the value's registry and provider, the admin secret's binding, probe
images), lists the vendor's tokens to find the orphans createSecret would revoke, proves AWSCURRENT pulls,
and asks the vendor whether the credential about to leave AWSPREVIOUS is one regcred may revoke. Reads at
AWS and the vendor only: nothing is minted, stored, moved, tagged or revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import labels
from .http.deadline import Deadline
from .revocation import RevokeResult, orphans, revoke_minted
from .rotation import Rotator
from .store import CURRENT, PREVIOUS
from .timefmt import format_time

__all__ = ["RotationPlan", "plan_rotation"]


@dataclass(frozen=True)
class RotationPlan:
    """What `regcred rotate` would mint, move and revoke."""

    secret: str
    arn: str
    provider: str
    registry: str
    rotation_enabled: bool
    label: str
    expires_at: datetime
    probe_images: tuple[str, ...]
    skipped_images: tuple[str, ...]
    current_version: str | None
    current_token: str | None
    current_check: Any  # a registry.PullCheck
    previous_version: str | None
    previous_token: str | None
    previous_revocation: RevokeResult | None  # None: nothing leaves AWSPREVIOUS, or its token stays live
    orphans: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "arn": self.arn,
            "provider": self.provider,
            "registry": self.registry,
            "rotation_enabled": self.rotation_enabled,
            "mint": {"label": self.label, "expires_at": format_time(self.expires_at)},
            "probe_images": list(self.probe_images),
            "skipped_images": list(self.skipped_images),
            "move": {
                CURRENT: {"from": self.current_version, "to": "<new version>"},
                PREVIOUS: {"from": self.previous_version, "to": self.current_version},
            },
            "revoke": {
                "previous_token": self.previous_token if self.previous_revocation else None,
                "previous_revocation": self.previous_revocation.value if self.previous_revocation else None,
                "orphans": list(self.orphans),
            },
            "current_pulls": bool(self.current_check.ok),
        }


def plan_rotation(rotator: Rotator, secret_id: str, *, deadline: Deadline | None = None) -> RotationPlan:
    """Every check a rotation makes before it writes, and what it would then do."""
    state = rotator.describe(secret_id)
    ctx = rotator.context(state, deadline)
    current, provider, probe = rotator.preflight(ctx)
    # The label a rotation gives its token; the real one carries Secrets Manager's ClientRequestToken.
    label = labels.label_for(state.name, str(uuid.uuid4()), max_length=provider.spec.label_max)
    held = rotator.held_token_ids(state)
    found = orphans(provider.list_tokens(), state.name, held)
    check = rotator.check(ctx, current, probe.images)
    previous_id = state.holder(PREVIOUS)
    previous_token: str | None = None
    revocation: RevokeResult | None = None
    if previous_id:
        previous = rotator.read(state.arn, stage=PREVIOUS, version_id=previous_id)
        previous_token = previous.token_id
        if previous_token and previous_token != current.token_id:
            revocation = revoke_minted(provider, previous_token, state.name, dry_run=True)
    return RotationPlan(
        secret=state.name,
        arn=state.arn,
        provider=ctx.cfg.provider,
        registry=ctx.route.registry_name,
        rotation_enabled=state.rotation_enabled,
        label=label,
        expires_at=datetime.now(UTC) + timedelta(seconds=ctx.cfg.ttl_s),
        probe_images=probe.images,
        skipped_images=probe.skipped,
        current_version=state.holder(CURRENT),
        current_token=current.token_id,
        current_check=check,
        previous_version=previous_id,
        previous_token=previous_token,
        previous_revocation=revocation,
        orphans=tuple(t.token_id for t in found),
    )
