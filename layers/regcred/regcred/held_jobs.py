"""Failed Batch jobs held for a secret until its asynchronous rotation succeeds (ResubmitJobs=true).

When remediation starts a rotation for a credential the registry rejects (or finds one in progress), the jobs
that failed on it are not resubmitted at once: they would fail again until the rotation promotes a new
credential. They are held instead, in one item per secret of the coalesce table:

    pk                "held#<secret ARN>"
    jobs              string set of job ids (UpdateItem ADD: concurrent invocations never overwrite others')
    held_count        how many ids the set holds: at most ``limit``, by a ConditionExpression
    rejected_version  the AWSCURRENT version the registry rejected (recorded by the invocation that probed)
    rotated_at        when a RotationSucceeded last took the set (seconds since the epoch)
    expires_at        the table's TTL attribute: ``hold_s`` after the last job was held (or the set taken)

On RotationSucceeded, `take` removes the set in one UpdateItem (REMOVE ... ReturnValues=UPDATED_OLD): two
deliveries of the event, or two containers, cannot both get it; and it refuses while AWSCURRENT is still the
rejected version. A job that failed before the last successful rotation is not held (`HoldResult.ROTATED`):
its failure event arrived after the rotation it would wait for, and the caller resubmits it at once.

Without a table (the CLI, tests of one process) the same rules hold for a dict in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["DEFAULT_HOLD_S", "DEFAULT_LIMIT", "HeldJobs", "HoldResult", "Taken"]

DEFAULT_HOLD_S = 24 * 3600
DEFAULT_LIMIT = 1000
_PREFIX = "held#"


class HoldResult(StrEnum):
    """What `HeldJobs.hold` did with a job."""

    HELD = "held"
    ALREADY_HELD = "already_held"  # a redelivery of its event
    FULL = "full"  # the secret holds ``limit`` jobs already: refused (logged and counted by the caller)
    ROTATED = "rotated"  # the job failed before the last successful rotation: resubmit it now


@dataclass(frozen=True)
class Taken:
    """The jobs a RotationSucceeded took; ``expired`` when the set outlived its TTL (not yet deleted)."""

    jobs: tuple[str, ...]
    expired: bool = False


@dataclass
class _Item:
    jobs: set[str] = field(default_factory=set)
    expires_at: float = 0.0
    rejected_version: str | None = None
    rotated_at: float | None = None


class HeldJobs:
    """The held jobs of every secret: in DynamoDB (``ddb`` and ``table``), or without them in this process."""

    def __init__(
        self,
        ddb: Any | None,
        table: str | None,
        *,
        hold_s: int = DEFAULT_HOLD_S,
        limit: int = DEFAULT_LIMIT,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = ddb if ddb is not None and table else None
        self._table = table
        self.hold_s = hold_s
        self.limit = limit
        self._now = now
        self._local: dict[str, _Item] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(secret_arn: str) -> str:
        """The item's partition key."""
        return f"{_PREFIX}{secret_arn}"

    # -- holding -----------------------------------------------------------------------------------

    def hold(
        self, secret_arn: str, job_id: str, *, failed_at: float | None, rejected_version: str | None = None
    ) -> HoldResult:
        """Hold ``job_id`` for the secret's next successful rotation. ``failed_at``: when the job failed
        (its event's time); ``rejected_version``: the AWSCURRENT version the registry rejected, if known."""
        now = self._now()
        failed = now if failed_at is None else failed_at
        if self._ddb is None:
            return self._hold_local(secret_arn, job_id, failed, rejected_version, now)
        update = "ADD jobs :job, held_count :one SET expires_at = :expires"
        values: dict[str, Any] = {
            ":job": {"SS": [job_id]},
            ":id": {"S": job_id},
            ":one": {"N": "1"},
            ":limit": {"N": str(self.limit)},
            ":failed": {"N": _number(failed)},
            ":expires": {"N": str(int(now + self.hold_s))},
        }
        if rejected_version:
            update += ", rejected_version = if_not_exists(rejected_version, :rejected)"
            values[":rejected"] = {"S": rejected_version}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": self.key(secret_arn)}},
                UpdateExpression=update,
                # held_count and jobs exist together (take removes both).
                ConditionExpression="(attribute_not_exists(held_count) OR "
                "(held_count < :limit AND NOT contains(jobs, :id))) AND "
                "(attribute_not_exists(rotated_at) OR rotated_at <= :failed)",
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException as exc:
            item = getattr(exc, "response", {}).get("Item") or {}
            rotated = item.get("rotated_at", {}).get("N")
            return self._refusal(
                rotated_at=float(rotated) if rotated is not None else None,
                held=job_id in (item.get("jobs", {}).get("SS") or ()),
                failed_at=failed,
            )
        return HoldResult.HELD

    def _hold_local(
        self, secret_arn: str, job_id: str, failed_at: float, rejected_version: str | None, now: float
    ) -> HoldResult:
        with self._lock:
            item = self._live(secret_arn, now)
            if (item.rotated_at is not None and item.rotated_at > failed_at) or job_id in item.jobs:
                return self._refusal(
                    rotated_at=item.rotated_at, held=job_id in item.jobs, failed_at=failed_at
                )
            if len(item.jobs) >= self.limit:
                return HoldResult.FULL
            item.jobs.add(job_id)
            item.expires_at = now + self.hold_s
            if rejected_version and item.rejected_version is None:
                item.rejected_version = rejected_version
            return HoldResult.HELD

    @staticmethod
    def _refusal(*, rotated_at: float | None, held: bool, failed_at: float) -> HoldResult:
        if rotated_at is not None and rotated_at > failed_at:
            return HoldResult.ROTATED
        return HoldResult.ALREADY_HELD if held else HoldResult.FULL

    # -- releasing ---------------------------------------------------------------------------------

    def take(self, secret_arn: str, *, current_version: str) -> Taken | None:
        """Take every job held for the secret, once: a second call (the event delivered twice) gets none.
        None, and nothing taken, while ``current_version`` (AWSCURRENT now) is the rejected version."""
        now = self._now()
        if self._ddb is None:
            return self._take_local(secret_arn, current_version, now)
        try:
            reply = self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": self.key(secret_arn)}},
                UpdateExpression="SET rotated_at = :now, expires_at = :expires "
                "REMOVE jobs, held_count, rejected_version",
                ConditionExpression="attribute_not_exists(rejected_version) OR rejected_version <> :current",
                ExpressionAttributeValues={
                    ":now": {"N": _number(now)},
                    ":expires": {"N": str(int(now + self.hold_s))},
                    ":current": {"S": current_version},
                },
                ReturnValues="UPDATED_OLD",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return None
        old = reply.get("Attributes") or {}
        jobs = tuple(sorted(old.get("jobs", {}).get("SS") or ()))
        expires = old.get("expires_at", {}).get("N")
        return Taken(jobs, expired=bool(jobs) and expires is not None and float(expires) < now)

    def _take_local(self, secret_arn: str, current_version: str, now: float) -> Taken | None:
        with self._lock:
            item = self._local.setdefault(self.key(secret_arn), _Item())
            if item.rejected_version is not None and item.rejected_version == current_version:
                return None
            jobs = tuple(sorted(item.jobs))
            expired = bool(jobs) and item.expires_at < now
            self._local[self.key(secret_arn)] = _Item(expires_at=now + self.hold_s, rotated_at=now)
            return Taken(jobs, expired=expired)

    def put_back(self, secret_arn: str, job_ids: Iterable[str]) -> None:
        """Hold again jobs that were taken but not resubmitted (the invocation ran out of time, or SubmitJob
        failed): the retry of the event, or the next successful rotation, takes them."""
        ids = sorted(set(job_ids))
        if not ids:
            return
        now = self._now()
        if self._ddb is None:
            with self._lock:
                item = self._live(secret_arn, now)
                item.jobs.update(ids)
                item.expires_at = now + self.hold_s
            return
        self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": self.key(secret_arn)}},
            UpdateExpression="ADD jobs :jobs, held_count :n SET expires_at = :expires",
            ExpressionAttributeValues={
                ":jobs": {"SS": ids},
                ":n": {"N": str(len(ids))},
                ":expires": {"N": str(int(now + self.hold_s))},
            },
        )

    def count(self, secret_arn: str) -> int:
        """How many jobs are held for the secret."""
        now = self._now()
        if self._ddb is None:
            with self._lock:
                local = self._local.get(self.key(secret_arn))
                return len(local.jobs) if local is not None and local.expires_at >= now else 0
        item = (
            self._ddb.get_item(
                TableName=self._table,
                Key={"pk": {"S": self.key(secret_arn)}},
                ConsistentRead=True,
                ProjectionExpression="held_count, expires_at",
            ).get("Item")
            or {}
        )
        expires = item.get("expires_at", {}).get("N")
        if expires is not None and float(expires) < now:
            return 0  # past its TTL, not yet deleted
        return int(item.get("held_count", {}).get("N", "0"))

    def _live(self, secret_arn: str, now: float) -> _Item:
        """The local item, emptied of its jobs once past its TTL (what DynamoDB's TTL does, eventually)."""
        item = self._local.setdefault(self.key(secret_arn), _Item())
        if item.jobs and item.expires_at < now:
            item.jobs.clear()
            item.rejected_version = None
        return item


def _number(value: float) -> str:
    """A DynamoDB number for a time: milliseconds are enough."""
    return f"{value:.3f}"
