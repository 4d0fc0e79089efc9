"""The scheduled sweep: find trouble with every managed secret before jobs fail on it.

Every sweep period (EventBridge Scheduler, `functions/sweep`), for each secret tagged regcred:managed=true:

1. **Claim** it for the period with a conditional write (`regcred.coalesce.Coalescer`, key ``sweep#<arn>``):
   two sweeps that overlap (a slow one and the next, a retried invocation, a redelivered message) never both
   act on one secret. A sweep that fails on a secret releases its claim, so that a retry can act.
2. **Prove** AWSCURRENT with a fresh login: the ``regcred:images`` tag and every image of every ACTIVE Batch
   job definition that names the secret, on the secret's configured registry only, in one `/v2/` flow (one
   token request for all of a registry's repositories, then a manifest HEAD per image). That is 2 registry
   requests plus one per image.
3. **Decide**, in this order:
   - a rotation in progress (AWSPENDING on another version than AWSCURRENT): nothing else is started;
   - AWSCURRENT refused by the registry: start a rotation (RotateSecret), or say that an operator must import
     a token (providers regcred cannot mint for) or enable rotation;
   - the credential expires before the next sweep would still find it above ``regcred:rotate-fraction``
     (default 0.25) of its lifetime: start a rotation. This is how a token that lives less than Secrets
     Manager's 4-hour minimum rotation interval stays fresh;
   - otherwise, when AWSCURRENT pulls: retire the previous credential once its grace period is over
     (`Rotator.retire_previous`, with every rule of `regcred retire`) and, at most once a day or after each
     promotion, revoke orphans (credentials labelled for the secret that no version holds).
4. **Record** what it saw in two bookkeeping tags: ``regcred:valid-at`` (the last proof) and ``regcred:sweep``
   (`SweepRecord`, which `regcred status` reads), and report it (`SecretReport`: the function turns reports
   into metrics).

Bounded parallelism (a thread pool), a deadline per secret, and every error caught per secret: one broken
registry or secret is reported without stalling the rest. Above a threshold the scheduled invocation only
lists the secrets and sends one SQS message per secret; the same function consumes them in batches.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import providers
from .aws import aws_error_code
from .coalesce import Coalescer
from .config import IMAGES, SWEEP, VALID_AT
from .errors import ConfigurationError, RegcredError, SecretFormatError
from .http.deadline import Deadline
from .observability import logger
from .rotation import Rotator
from .rotation_rules import RetireResult, StepContext, job_definition_images, select_images
from .secret import SecretValue
from .store import CURRENT, PENDING, PREVIOUS, SecretAccessDenied, SecretNotFound, SecretState, SecretStore
from .sweep_plan import (
    EXPIRING_SOON_S,
    LIVE_PREVIOUS,
    ORPHAN_INTERVAL_S,
    RECORD_REFRESH_S,
    Failure,
    NextAction,
    SweepRecord,
    SweepSettings,
    plan_next,
    ratelimit_count,
    rotation_due,
)
from .timefmt import format_time

if TYPE_CHECKING:
    from .registry import PullCheck

__all__ = [
    "Failure",
    "JobDefinitionIndex",
    "NextAction",
    "SecretReport",
    "SweepRecord",
    "SweepSettings",
    "SweepSummary",
    "Sweeper",
    "plan_next",
    "rotation_due",
    "select_images",
]


@dataclass
class SecretReport:
    """What the sweep did with one secret (for metrics, the function's result and `regcred sweep`)."""

    secret: str
    arn: str
    swept: bool = False
    claimed_elsewhere: bool = False
    valid: bool | None = None
    failure: Failure | None = None
    detail: str | None = None
    registry: str | None = None
    images: int = 0
    seconds_to_expiry: int | None = None
    expiring_soon: bool = False
    ratelimit_remaining: int | None = None
    ratelimit_limit: int | None = None
    rotation: str | None = None
    retired: str | None = None
    orphans_revoked: int = 0
    next_action: str = NextAction.CHECK
    next_at: datetime | None = None
    mirror: str | None = None

    @property
    def unchecked(self) -> bool:
        """The registry could not be asked (unreachable, rate limited): nothing is known of the credential."""
        return self.failure in (Failure.UNREACHABLE, Failure.RATE_LIMITED)

    @property
    def error(self) -> bool:
        """The secret could not be swept (its configuration, its value, or an unexpected error)."""
        return self.failure in (Failure.MISCONFIGURED, Failure.SECRET_FORMAT, Failure.ERROR)

    def as_dict(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "arn": self.arn,
            "swept": self.swept,
            "claimed_elsewhere": self.claimed_elsewhere,
            "valid": self.valid,
            "failure": self.failure.value if self.failure else None,
            "detail": self.detail,
            "registry": self.registry,
            "images": self.images,
            "seconds_to_expiry": self.seconds_to_expiry,
            "expiring_soon": self.expiring_soon,
            "ratelimit_remaining": self.ratelimit_remaining,
            "rotation": self.rotation,
            "retired": self.retired,
            "orphans_revoked": self.orphans_revoked,
            "next_action": self.next_action,
            "next_at": format_time(self.next_at) if self.next_at else None,
            "mirror": self.mirror,
        }


@dataclass
class SweepSummary:
    """One sweep run: per-secret reports, or how many secrets were handed to the workers."""

    reports: list[SecretReport] = field(default_factory=list)
    fanned_out: int = 0
    not_swept: int = 0  # left when the invocation ran out of time

    def counts(self) -> dict[str, int]:
        reports = self.reports
        return {
            "secrets": len(reports) + self.fanned_out + self.not_swept,
            "swept": sum(r.swept for r in reports),
            "claimed_elsewhere": sum(r.claimed_elsewhere for r in reports),
            "invalid": sum(r.valid is False and r.failure is Failure.CREDENTIALS_REJECTED for r in reports),
            "errors": sum(r.error for r in reports) + self.not_swept,
            "unchecked": sum(r.unchecked for r in reports),
            "expiring_soon": sum(r.expiring_soon for r in reports),
            "rotations_started": sum(r.rotation == "started" for r in reports),
            "retired": sum(
                r.retired in (RetireResult.RETIRED, RetireResult.RETIRED_NOT_REVOKED) for r in reports
            ),
            "orphans_revoked": sum(r.orphans_revoked for r in reports),
            "fanned_out": self.fanned_out,
            "not_swept": self.not_swept,
        }


class JobDefinitionIndex:
    """Images of the ACTIVE Batch job definitions, by the ``credentialsParameter`` that pulls them: read once
    per sweep (DescribeJobDefinitions has no filter by secret), looked up per secret by ARN, partial ARN or
    name (`regcred.rotation_rules.matches_secret`)."""

    def __init__(self, by_parameter: Mapping[str, Sequence[str]] | None = None) -> None:
        self._by_parameter = {k: tuple(dict.fromkeys(v)) for k, v in (by_parameter or {}).items()}

    @classmethod
    def read(cls, batch: Any | None) -> JobDefinitionIndex:
        if batch is None:
            return cls()
        found: dict[str, list[str]] = {}
        for page in batch.get_paginator("describe_job_definitions").paginate(status="ACTIVE"):
            for definition in page.get("jobDefinitions", []):
                for image, parameter in job_definition_images(definition):
                    found.setdefault(parameter, []).append(image)
        return cls(found)

    def images_for(self, state: SecretState) -> tuple[str, ...]:
        keys = {state.arn, state.name}
        if len(state.arn) > 7 and state.arn[-7] == "-":
            keys.add(state.arn[:-7])  # the partial ARN (without Secrets Manager's random suffix)
        out: list[str] = []
        for key in sorted(keys):
            out.extend(self._by_parameter.get(key, ()))
        return tuple(dict.fromkeys(out))

    def __len__(self) -> int:
        return len(self._by_parameter)


_CHECK_FAILURES = (
    ("credentials_rejected", Failure.CREDENTIALS_REJECTED),
    ("no_access", Failure.NO_ACCESS),
    ("not_found", Failure.NOT_FOUND),
    ("rate_limited", Failure.RATE_LIMITED),
    ("unreachable", Failure.UNREACHABLE),
)


def _check_failure(result: PullCheck) -> Failure | None:
    if result.ok:
        return None
    if result.unproven:
        return Failure.UNPROVEN
    statuses = {i.status.value for i in result.images}
    for status, failure in _CHECK_FAILURES:
        if status in statuses:
            return failure
    return Failure.UNREACHABLE


class Sweeper:
    """Sweeps managed secrets. Thread-safe for its own pool: boto3 clients and the transport are shared, the
    coalescer is locked, and nothing per secret lives on the instance."""

    def __init__(
        self,
        sm: Any,
        *,
        batch: Any | None = None,
        coalescer: Coalescer | None = None,
        settings: SweepSettings | None = None,
        rotator: Rotator | None = None,
        sqs: Any | None = None,
        start_rotation: Callable[[str], object] | None = None,
        rotate_without_schedule: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``start_rotation`` replaces RotateSecret (the CLI's --local runs the four steps itself); with
        ``rotate_without_schedule`` it also rotates secrets that have no rotation function configured."""
        self.store = SecretStore.of(sm)
        self.rotate_without_schedule = rotate_without_schedule
        self.batch = batch
        self.settings = settings or SweepSettings()
        self.coalescer = coalescer or Coalescer(None, None, self.settings.lease_s)
        self._now = now
        self.rotator = rotator or Rotator(self.store, batch=batch, now=now)
        self.sqs = sqs
        # Secrets Manager invokes the rotation function; the CLI (--local) and tests drive it themselves.
        self._start_rotation = start_rotation or self.store.start_rotation
        self._index: tuple[float, JobDefinitionIndex] | None = None
        self._index_lock = threading.Lock()

    def job_definitions(self) -> JobDefinitionIndex:
        """The job-definition index, read again once it is older than a third of a period (a warm worker
        reads it once for many batches)."""
        with self._index_lock:
            at = time.monotonic()
            if self._index is None or at - self._index[0] > self.settings.period_s / 3:
                self._index = (at, JobDefinitionIndex.read(self.batch))
            return self._index[1]

    # -- a whole sweep -------------------------------------------------------------------------------

    def managed(self) -> Iterator[SecretState]:
        """Every secret tagged regcred:managed=true that is not scheduled for deletion (paginated)."""
        for state in self.store.list_managed():
            if state.managed and not state.deleted:
                yield state

    def run(self, *, deadline: Deadline | None = None, secrets: Sequence[str] | None = None) -> SweepSummary:
        """Sweep every managed secret (or those named), fanning out through SQS above the threshold."""
        targets: list[str | SecretState] = list(secrets) if secrets else list(self.managed())
        if self.settings.queue_url and self.sqs is not None and len(targets) > self.settings.fanout_threshold:
            return SweepSummary(
                fanned_out=self.fan_out([t if isinstance(t, str) else t.arn for t in targets])
            )
        return self.sweep(targets, deadline=deadline)

    def fan_out(self, arns: Sequence[str]) -> int:
        """One message per secret on the sweep queue (SendMessageBatch, 10 at a time); returns how many.
        A message the queue refused is an error: the invocation fails and the schedule's retry sends again
        (a secret already claimed by a worker is skipped by that worker's successor)."""
        assert self.sqs is not None and self.settings.queue_url
        run = str(uuid.uuid4())
        sent = 0
        for start in range(0, len(arns), 10):
            chunk = arns[start : start + 10]
            reply = self.sqs.send_message_batch(
                QueueUrl=self.settings.queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": json.dumps({"secret": arn, "sweep": run})}
                    for i, arn in enumerate(chunk)
                ],
            )
            failed = reply.get("Failed") or []
            if failed:
                raise RegcredError(
                    f"the sweep queue refused {len(failed)} of {len(chunk)} messages "
                    f"({failed[0].get('Code', 'unknown')}); {sent} were sent, the schedule's retry sends "
                    "again"
                )
            sent += len(chunk)
        logger.info("sweep fanned out", extra={"secrets": sent})
        return sent

    def sweep(
        self, targets: Sequence[str | SecretState], *, deadline: Deadline | None = None
    ) -> SweepSummary:
        """Sweep these secrets with the configured parallelism; stop starting new ones when ``deadline`` is
        nearer than a secret's own deadline (those are counted as not swept)."""
        index = self.job_definitions()
        providers.plugins()  # loaded once, before the threads
        _ = self.rotator.transport
        summary = SweepSummary()
        lock = threading.Lock()

        def one(target: str | SecretState) -> None:
            if deadline is not None and deadline.remaining() < self.settings.secret_deadline_s + 1:
                with lock:
                    summary.not_swept += 1
                return
            report = self.sweep_secret(target, index)
            with lock:
                summary.reports.append(report)

        workers = max(1, min(self.settings.parallelism, len(targets)))
        if workers == 1:
            for target in targets:
                one(target)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
                list(pool.map(one, targets))
        if summary.not_swept:
            logger.error(
                "sweep ran out of time", extra={"not_swept": summary.not_swept, "swept": len(summary.reports)}
            )
        return summary

    # -- one secret ----------------------------------------------------------------------------------

    def sweep_secret(
        self, target: str | SecretState, index: JobDefinitionIndex | None = None
    ) -> SecretReport:
        """Sweep one secret, named by its id or as the listing described it (ListSecrets is eventually
        consistent: everything that acts describes the secret again first). Never raises for the secret's own
        trouble: it is in the report."""
        secret_id = target if isinstance(target, str) else target.arn
        report = SecretReport(secret=secret_id, arn=secret_id)
        try:
            state = target if isinstance(target, SecretState) else self.store.describe(secret_id)
        except (SecretNotFound, SecretAccessDenied) as exc:
            report.failure, report.detail = Failure.MISCONFIGURED, str(exc)
            return report
        except Exception as exc:
            report.failure, report.detail = Failure.ERROR, f"DescribeSecret failed ({aws_error_code(exc)})"
            logger.error("sweep could not describe a secret", extra={"error": aws_error_code(exc)})
            return report
        report.secret, report.arn = state.name, state.arn
        if not state.managed or state.deleted:
            report.failure, report.detail = Failure.MISCONFIGURED, "not managed by regcred (or being deleted)"
            return report
        key = f"sweep#{state.arn}"
        try:
            if not self.coalescer.claim(key).owner:
                report.claimed_elsewhere = True
                return report
        except Exception as exc:
            report.failure, report.detail = Failure.ERROR, f"the sweep's claim failed ({aws_error_code(exc)})"
            logger.error("sweep could not claim a secret", extra={"error": aws_error_code(exc)})
            return report
        try:
            self._sweep(state, index or JobDefinitionIndex(), report)
        except Exception as exc:
            # Released, so that a retry (the next message delivery, the next sweep) may act.
            self.coalescer.release(key)
            report.failure = Failure.ERROR
            report.detail = (
                str(exc) if isinstance(exc, RegcredError) else f"{type(exc).__name__} ({aws_error_code(exc)})"
            )
            logger.error("sweep failed on a secret", extra={"secret": state.name, "reason": report.detail})
            return report
        report.swept = True
        return report

    def _sweep(self, state: SecretState, index: JobDefinitionIndex, report: SecretReport) -> None:
        now = self._now()
        period = self.settings.period_s
        deadline = Deadline(self.settings.secret_deadline_s)
        previous_record = SweepRecord.parse(state.tags.get(SWEEP))
        record = SweepRecord(at=now, valid=None)
        try:
            ctx = self.rotator.context(state, deadline)
        except ConfigurationError as exc:
            self._cannot_use(state, report, record, Failure.MISCONFIGURED, str(exc))
            return
        report.registry = ctx.route.registry_name
        try:
            current = self.store.read(state.arn, stage=CURRENT)
        except (SecretFormatError, SecretNotFound) as exc:
            self._cannot_use(state, report, record, Failure.SECRET_FORMAT, str(exc))
            return
        probe = select_images(
            [(i, ctx.route.registry_name) for i in ctx.cfg.images]
            + [(i, None) for i in index.images_for(state)],
            ctx.route,
        )
        if probe.skipped:
            logger.warning(
                "probe images skipped", extra={"secret": state.name, "skipped": probe.skipped[:20]}
            )
        if not probe.images:
            detail = (
                f"no probe image on {ctx.route.registry_name}: tag it {IMAGES}='repo:tag ...' or reference "
                "it from an ACTIVE Batch job definition"
            )
            self._cannot_use(state, report, record, Failure.MISCONFIGURED, detail)
            return
        report.images = len(probe.images)
        result = self.rotator.check(ctx, current, probe.images)
        failure = _check_failure(result)
        valid = result.ok
        report.valid = valid if failure not in (Failure.UNREACHABLE, Failure.RATE_LIMITED) else None
        remaining = [
            (ratelimit_count(i.ratelimit_remaining), ratelimit_count(i.ratelimit_limit))
            for i in result.images
        ]
        known = [(r, lim) for r, lim in remaining if r is not None]
        if known:
            report.ratelimit_remaining, report.ratelimit_limit = min(known, key=lambda pair: pair[0] or 0)
        expires = current.expires_at
        if expires is not None:
            report.seconds_to_expiry = int((expires - now).total_seconds())
        due, _ = rotation_due(now, current.issued_at, expires, ctx.cfg.rotate_fraction, period)
        current_id = state.holder(CURRENT)
        pending_id = state.holder(PENDING)
        in_progress = pending_id is not None and pending_id != current_id
        retired: str | None = None
        orphans = 0
        orphans_at = previous_record.orphans_at if previous_record else None
        rejected = failure is Failure.CREDENTIALS_REJECTED
        if in_progress:
            report.rotation = "in_progress"
        elif rejected or due:
            report.rotation = self._rotate(ctx)
        note = result.summary() or None
        if valid and not in_progress and not (rejected or due):
            report.mirror = self._sync_mirror(ctx, current)
            # Housekeeping never costs the proof: a problem here is reported, and tried again next sweep.
            try:
                retired = self._retire(state, current_id, deadline)
                if self._orphans_due(ctx, state, orphans_at, now):
                    orphans = self._revoke_orphans(ctx)
                    orphans_at = now
            except ConfigurationError as exc:
                failure, note = Failure.MISCONFIGURED, str(exc)  # the admin secret, the provider's settings
                logger.warning(
                    "sweep could not retire or revoke", extra={"secret": state.name, "reason": note}
                )
            except RegcredError as exc:
                note = f"retirement or orphan revocation failed, tried again next sweep: {exc}"
                logger.warning(
                    "sweep could not retire or revoke", extra={"secret": state.name, "reason": str(exc)}
                )
        if report.rotation in ("started", "in_progress"):
            next_action: NextAction = NextAction.WAIT_ROTATION
            next_at: datetime | None = now + timedelta(seconds=period)
        else:
            next_action, next_at = plan_next(
                ctx.cfg,
                now=now,
                period_s=period,
                can_mint=ctx.spec.can_mint,
                rotation_enabled=state.rotation_enabled,
                rejected=rejected,
                issued_at=current.issued_at,
                expires_at=expires,
                previous_live=retired in LIVE_PREVIOUS,
            )
        report.expiring_soon = (
            expires is not None
            and report.seconds_to_expiry is not None
            and report.seconds_to_expiry < EXPIRING_SOON_S
            and (due or failure is Failure.CREDENTIALS_REJECTED or expires <= now)
            and report.rotation != "started"
        )
        report.retired, report.orphans_revoked = retired, orphans
        record = replace(
            record,
            valid=report.valid,
            failure=failure,
            ratelimit_remaining=report.ratelimit_remaining,
            ratelimit_limit=report.ratelimit_limit,
            previous=retired or (previous_record.previous if previous_record else None),
            orphans_revoked=orphans,
            orphans_at=orphans_at,
            rotation=report.rotation,
            next_action=next_action,
            next_at=next_at,
            mirror=report.mirror,
        )
        self._finish(state, report, record, failure, note)

    def _cannot_use(
        self, state: SecretState, report: SecretReport, record: SweepRecord, failure: Failure, detail: str
    ) -> None:
        """Record that the secret could not be swept at all (its tags, its value, no probe image): fix it."""
        self._finish(
            state, report, replace(record, failure=failure, next_action=NextAction.FIX), failure, detail
        )

    def _finish(
        self,
        state: SecretState,
        report: SecretReport,
        record: SweepRecord,
        failure: Failure | None,
        detail: str | None,
    ) -> None:
        report.failure, report.detail = failure, detail
        report.next_action, report.next_at = record.next_action, record.next_at
        last = SweepRecord.parse(state.tags.get(SWEEP))
        if (
            last is not None
            and record.same_as(last)
            and (record.at - last.at).total_seconds() < RECORD_REFRESH_S
            and (not record.valid or VALID_AT in state.tags)
        ):
            return  # nothing new to record: no TagResource call for this secret in this sweep
        tags = {SWEEP: record.tag_text()}
        if record.valid:
            tags[VALID_AT] = format_time(record.at)
        self.store.write_bookkeeping(state.arn, tags)

    def _rotate(self, ctx: StepContext) -> str:
        """Start a rotation unless only an operator can supply the credential, rotation is off, or one is in
        progress (read again now: the listing may be a step behind)."""
        if not ctx.spec.can_mint:
            return "import_needed"
        state = self.store.describe(ctx.state.arn)
        if not state.rotation_enabled and not self.rotate_without_schedule:
            return "not_enabled"
        if state.holder(PENDING) not in (None, state.holder(CURRENT)):
            return "in_progress"
        try:
            self._start_rotation(ctx.state.arn)
        except Exception as exc:
            if aws_error_code(exc) == "InvalidRequestException":
                return "in_progress"  # "A previous rotation isn't complete"
            raise
        logger.info("rotation started by the sweep", extra={"secret": ctx.state.name})
        return "started"

    def _sync_mirror(self, ctx: StepContext, current: SecretValue) -> str | None:
        """The ECR pull-through cache mirror holds AWSCURRENT (written if it does not): a mirror that an
        earlier write missed, or that someone edited, is repaired here. None when there is no mirror."""
        if not ctx.cfg.ecr_mirror:
            return None
        from .mirror import sync_mirror

        try:
            return sync_mirror(self.store, ctx, current).status.value
        except RegcredError as exc:
            logger.warning("ECR mirror not written", extra={"secret": ctx.state.name, "reason": str(exc)})
            return "stale"

    def _retire(self, state: SecretState, current_id: str | None, deadline: Deadline) -> str | None:
        if state.holder(PREVIOUS) is None:
            return None
        result = self.rotator.retire_previous(state.arn, deadline=deadline, proven_current=current_id)
        if result in (RetireResult.RETIRED, RetireResult.RETIRED_NOT_REVOKED):
            logger.info("previous credential retired by the sweep", extra={"secret": state.name})
        return result.value

    def _orphans_due(
        self, ctx: StepContext, state: SecretState, checked_at: datetime | None, now: datetime
    ) -> bool:
        if not ctx.spec.can_mint:
            return False
        if checked_at is None or (now - checked_at).total_seconds() >= ORPHAN_INTERVAL_S:
            return True
        promoted = ctx.cfg.promoted_at
        return promoted is not None and promoted > checked_at

    def _revoke_orphans(self, ctx: StepContext) -> int:
        provider = self.rotator.build_provider(ctx)
        state = self.store.describe(ctx.state.arn)  # the labels as they are now, not as listed
        if state.holder(PENDING) not in (None, state.holder(CURRENT)):
            return 0  # a rotation started meanwhile: its credential is not an orphan
        return self.rotator._revoke_orphans(ctx, provider, self.rotator.held_token_ids(state))
