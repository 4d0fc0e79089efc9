"""What remediation does about Secrets Manager's rotation events (the rotation-events rule).

RotationSucceeded (with ResubmitJobs): once the rotation is finished (no AWSPENDING on another version than
AWSCURRENT) and AWSCURRENT is no longer the version the registry rejected, the jobs held for the secret
(`regcred.held_jobs`) are taken, once, and each is resubmitted at most once (`regcred.resubmission`). The
rotate function's testSecret step proved the new credential pulls before it was promoted.

RotationFailed, RotationAbandoned: one notification per secret per cooldown window, never with a secret
value; the caller counts SecretsManagerRotationFailed. The held jobs are kept: they are resubmitted after a
later successful rotation, or expire.

Only secrets regcred manages are acted on: the rule matches every secret of the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import LAST_FAILURE
from .observability import logger
from .redact import scrub
from .store import CURRENT, PENDING, SecretAccessDenied, SecretNotFound, SecretState, SecretStore

if TYPE_CHECKING:
    from .coalesce import Coalescer
    from .events import RotationNotice
    from .held_jobs import HeldJobs
    from .http.deadline import Deadline
    from .remediation import Settings
    from .resubmission import Resubmitter

__all__ = ["RotationOutcome", "RotationOutcomes"]


@dataclass
class RotationOutcome:
    """What remediation did with one Secrets Manager rotation event."""

    event: str  # RotationSucceeded, RotationFailed or RotationAbandoned
    secret: str
    # In a word: resubmitted, nothing_held, resubmit_disabled, rotation_in_progress, current_unchanged,
    # expired (RotationSucceeded); notified, coalesced, no_topic (the failures); secret_missing,
    # secret_unmanaged (any of them).
    result: str = ""
    resubmitted: dict[str, str] = field(default_factory=dict)  # original job id -> new job id
    skipped: dict[str, str] = field(default_factory=dict)  # held job id -> why it was not resubmitted
    held: int = 0  # jobs held for the secret afterwards
    notified: bool = False
    rotation_failed: bool = False  # a failure of a managed secret's rotation: SecretsManagerRotationFailed

    def as_dict(self) -> dict[str, Any]:
        """The handler's JSON result."""
        return {
            "rotation_event": self.event,
            "secret": self.secret,
            "result": self.result,
            "resubmitted": dict(self.resubmitted),
            "skipped": dict(self.skipped),
            "held": self.held,
            "notified": self.notified,
        }


class RotationOutcomes:
    """Handles rotation events with the remediator's store, held jobs, claims and topic."""

    def __init__(
        self,
        *,
        store: SecretStore,
        held: HeldJobs,
        resubmitter: Resubmitter,
        coalescer: Coalescer,
        sns: Any | None,
        settings: Settings,
    ) -> None:
        self.store, self.held, self.resubmitter = store, held, resubmitter
        self.coalescer, self.sns, self.settings = coalescer, sns, settings

    def handle(self, notice: RotationNotice, *, deadline: Deadline | None = None) -> RotationOutcome:
        """One event: resubmit the held jobs (RotationSucceeded), or notify (the failures)."""
        outcome = RotationOutcome(notice.name, notice.secret_arn)
        if notice.succeeded and not self.settings.resubmit:
            outcome.result = "resubmit_disabled"
            return outcome
        try:
            state = self.store.describe(notice.secret_arn)
        except SecretNotFound:
            outcome.result = "secret_missing"
            return outcome
        except SecretAccessDenied:
            # The functions may describe only secrets tagged regcred:managed=true.
            outcome.result = "secret_unmanaged"
            return outcome
        if not state.managed:
            outcome.result = "secret_unmanaged"
            return outcome
        outcome.secret = state.arn
        if notice.succeeded:
            self._succeeded(state, outcome, deadline)
        else:
            self._failed(state, notice, outcome)
        outcome.held = self.held.count(state.arn)
        return outcome

    def _succeeded(self, state: SecretState, outcome: RotationOutcome, deadline: Deadline | None) -> None:
        current, pending = state.holder(CURRENT), state.holder(PENDING)
        if pending is not None and pending != current:
            # Another rotation started since: its own RotationSucceeded releases the jobs.
            outcome.result = "rotation_in_progress"
            return
        taken = self.held.take(state.arn, current_version=current or "")
        if taken is None:
            outcome.result = "current_unchanged"
            logger.warning(
                "rotation reported successful but AWSCURRENT is still the rejected version: jobs stay held",
                extra={"secret": state.name},
            )
            return
        if taken.expired:
            outcome.result = "expired"
            outcome.skipped = dict.fromkeys(taken.jobs, "expired")
            return
        if not taken.jobs:
            outcome.result = "nothing_held"
            return
        outcome.result = "resubmitted"
        released = self.resubmitter.release(state.arn, taken.jobs, deadline)
        outcome.resubmitted, outcome.skipped = released.resubmitted, released.skipped
        logger.info(
            "held jobs resubmitted",
            extra={
                "secret": state.name,
                "resubmitted": len(released.resubmitted),
                "skipped": released.skipped,
            },
        )

    def _failed(self, state: SecretState, notice: RotationNotice, outcome: RotationOutcome) -> None:
        outcome.rotation_failed = True
        if self.sns is None or not self.settings.topic_arn:
            outcome.result = "no_topic"
            return
        if not self.coalescer.claim(f"notify#rotation_failed#{state.arn}").owner:
            outcome.result = "coalesced"
            return
        outcome.result = "notified"
        self.sns.publish(
            TopicArn=self.settings.topic_arn,
            Subject=f"regcred: {notice.name} for {state.name}"[:100],
            Message="\n".join(self._message(state, notice)),
        )
        outcome.notified = True

    def _message(self, state: SecretState, notice: RotationNotice) -> list[str]:
        """The notification: what happened, what became of the held jobs, what to do. No secret value: the
        event carries none, and Secrets Manager's message is scrubbed of every value the process knows."""
        what = (
            "Secrets Manager abandoned the rotation: a new version was written while it ran, and AWSPENDING "
            "was removed. If that was not `regcred import` or a rollback, find out who wrote the secret."
            if notice.name == "RotationAbandoned"
            else "The rotation failed; AWSCURRENT is unchanged. The rotate function's logs and the secret's "
            f"{LAST_FAILURE} tag say which step failed and why; `regcred rotate {state.name} --wait` retries."
        )
        lines = [f"Secrets Manager event: {notice.name}", f"Secret: {state.name} ({state.arn})"]
        if notice.error:
            lines.append(f"Secrets Manager's message: {scrub(notice.error)[:500]}")
        lines += [
            f"Jobs held for this rotation: {self.held.count(state.arn)} (kept: they are resubmitted after "
            "the next successful rotation, or expire a day after they were held)"
            if self.settings.resubmit
            else "Jobs are not held or resubmitted (ResubmitJobs is off).",
            "",
            what,
            f"Further rotation failures of this secret within {self.settings.cooldown_s // 60} minutes are "
            "not reported again.",
        ]
        return lines
