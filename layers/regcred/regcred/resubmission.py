"""A failed Batch job submitted again as it was (ResubmitJobs=true), from its event or from DescribeJobs.

The copy keeps what the job was submitted with that its definition does not say: name, queue, definition,
parameters, the command it ran, an array job's size, its fair-share identifier and scheduling priority. It
is tagged ``regcred:resubmission-of`` with the original's id, so that its own failure is never resubmitted,
and the original ``regcred:resubmitted-as`` with the copy's. A job is resubmitted by whoever wins its
``resubmit#<job id>`` claim (`regcred.coalesce`), and only if neither tag is on it: at most once.

`Resubmitter.release` resubmits the jobs a successful rotation took from the held set (`regcred.held_jobs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import jobs
from .aws import aws_error_code
from .config import tag_value
from .errors import RegcredError
from .observability import logger

if TYPE_CHECKING:
    from .coalesce import Coalescer
    from .events import PullFailure
    from .held_jobs import HeldJobs
    from .http.deadline import Deadline

TAG_RESUBMITTED_AS = "regcred:resubmitted-as"
TAG_RESUBMISSION_OF = "regcred:resubmission-of"
# A job held for its secret's rotation: HELD_AWAITING until the rotation succeeds, then HELD_RESUBMITTED;
# HELD_REFUSED when the secret holds the most jobs it may (`regcred.held_jobs.DEFAULT_LIMIT`).
TAG_HELD = "regcred:held"
HELD_AWAITING = "awaiting-rotation"
HELD_RESUBMITTED = "resubmitted"
HELD_REFUSED = "limit-reached"
# DescribeJobs takes at most 100 job ids.
DESCRIBE_BATCH = 100
# Left for what follows the last resubmission of an invocation: putting the rest back, and the result.
RESERVE_S = 5.0
SUBMIT_FAILED = "submit_failed"


class ResubmissionIncomplete(RegcredError):
    """The invocation ran out of time before every held job was resubmitted: the rest are held again, and the
    event is raised for Lambda to retry."""


def resubmittable(tags: Mapping[str, str]) -> bool:
    """Neither a resubmission itself nor resubmitted already (its tags say)."""
    return TAG_RESUBMISSION_OF not in tags and TAG_RESUBMITTED_AS not in tags


@dataclass(frozen=True)
class JobCopy:
    """What SubmitJob needs to run a failed job again."""

    job_id: str
    job_name: str
    job_queue: str
    definition: str
    command: tuple[str, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)
    array_size: int | None = None
    share_identifier: str | None = None
    scheduling_priority: int | None = None

    @classmethod
    def of_failure(cls, failure: PullFailure) -> JobCopy | None:
        """From the job's FAILED event; None when it lacks the job's name, queue or definition."""
        if not (failure.job_name and failure.job_queue and failure.definition):
            return None
        return cls(
            job_id=failure.resource_id,
            job_name=failure.job_name,
            job_queue=failure.job_queue,
            definition=failure.definition,
            command=tuple(failure.command),
            parameters=dict(failure.parameters),
            array_size=failure.array_size,
            share_identifier=failure.share_identifier,
            scheduling_priority=failure.scheduling_priority,
        )

    @classmethod
    def of_description(cls, job: Mapping[str, Any]) -> JobCopy | None:
        """From a DescribeJobs entry; None when it lacks the job's name, queue or definition."""
        name, queue, definition = job.get("jobName"), job.get("jobQueue"), job.get("jobDefinition")
        if not (isinstance(name, str) and isinstance(queue, str) and isinstance(definition, str)):
            return None
        container = job.get("container") or {}
        array = job.get("arrayProperties") or {}
        size = array.get("size")
        priority = job.get("schedulingPriority")
        parameters = job.get("parameters") or {}
        return cls(
            job_id=str(job["jobId"]),
            job_name=name,
            job_queue=queue,
            definition=definition,
            command=tuple(str(c) for c in container.get("command") or ()),
            parameters={str(k): str(v) for k, v in parameters.items()},
            array_size=size if isinstance(size, int) and size > 1 else None,
            share_identifier=job.get("shareIdentifier") or None,
            scheduling_priority=priority if isinstance(priority, int) else None,
        )

    def request(self) -> dict[str, Any]:
        """The SubmitJob request."""
        request: dict[str, Any] = {
            "jobName": self.job_name,
            "jobQueue": self.job_queue,
            "jobDefinition": self.definition,
            "tags": {TAG_RESUBMISSION_OF: tag_value(self.job_id)},
        }
        if self.parameters:
            request["parameters"] = dict(self.parameters)
        if self.command:
            request["containerOverrides"] = {"command": list(self.command)}
        if self.array_size:
            request["arrayProperties"] = {"size": self.array_size}
        if self.share_identifier:
            request["shareIdentifier"] = self.share_identifier
        if self.scheduling_priority is not None:
            request["schedulingPriorityOverride"] = self.scheduling_priority
        return request


def submit_copy(batch: Any, copy: JobCopy) -> str:
    """SubmitJob of the copy; the new job's id."""
    job_id: str = batch.submit_job(**copy.request())["jobId"]
    return job_id


@dataclass
class Released:
    """What became of the held jobs a rotation released."""

    resubmitted: dict[str, str] = field(default_factory=dict)  # original job id -> new job id
    skipped: dict[str, str] = field(default_factory=dict)  # job id -> why it was not resubmitted


class Resubmitter:
    """Submits copies of failed jobs, each at most once."""

    def __init__(self, batch: Any, coalescer: Coalescer, held: HeldJobs) -> None:
        self.batch, self.coalescer, self.held = batch, coalescer, held

    def claim(self, job_id: str) -> bool:
        """Whether this invocation is the one to resubmit the job (the ``resubmit#`` claim)."""
        return self.coalescer.claim(f"resubmit#{job_id}").owner

    def release(self, arn: str, job_ids: Sequence[str], deadline: Deadline | None = None) -> Released:
        """Resubmit each job taken from the secret's held set (DescribeJobs by 100). Jobs whose SubmitJob
        failed are held again; so are the jobs not reached when the invocation runs out of time or an AWS call
        fails, which raises, so that Lambda retries the event."""
        released = Released()
        done: set[str] = set()
        failed: list[str] = []
        try:
            for start in range(0, len(job_ids), DESCRIBE_BATCH):
                chunk = list(job_ids[start : start + DESCRIBE_BATCH])
                _check_time(deadline, len(job_ids) - len(done))
                described = self.batch.describe_jobs(jobs=chunk).get("jobs") or []
                by_id = {str(j.get("jobId")): j for j in described}
                for job_id in chunk:
                    _check_time(deadline, len(job_ids) - len(done))
                    if self._resubmit_one(job_id, by_id.get(job_id), released) == SUBMIT_FAILED:
                        failed.append(job_id)
                    done.add(job_id)
        except BaseException:
            self.held.put_back(arn, [j for j in job_ids if j not in done] + failed)
            raise
        self.held.put_back(arn, failed)
        return released

    def _resubmit_one(self, job_id: str, job: Mapping[str, Any] | None, released: Released) -> str:
        """Resubmit one held job unless it is gone, a child or resubmitted already; what became of it."""
        copy = JobCopy.of_description(job) if job is not None else None
        reason = _not_resubmittable(job_id, job, copy)
        if reason is None and not self.claim(job_id):
            reason = "claimed_elsewhere"
        if reason is not None or copy is None or job is None:
            released.skipped[job_id] = reason or "incomplete_description"
            return released.skipped[job_id]
        try:
            new_job = submit_copy(self.batch, copy)
        except Exception as exc:
            self.coalescer.release(f"resubmit#{job_id}")  # the next attempt may claim it at once
            released.skipped[job_id] = f"{SUBMIT_FAILED}: {aws_error_code(exc)}"
            logger.warning("held job not resubmitted", extra={"job": job_id, "error": aws_error_code(exc)})
            return SUBMIT_FAILED
        released.resubmitted[job_id] = new_job
        job_arn = job.get("jobArn")
        if isinstance(job_arn, str):
            try:
                self.batch.tag_resource(
                    resourceArn=job_arn,
                    tags={TAG_RESUBMITTED_AS: tag_value(new_job), TAG_HELD: HELD_RESUBMITTED},
                )
            except Exception as exc:
                # The copy carries regcred:resubmission-of and the claim stands: it is not resubmitted twice.
                logger.warning(
                    "resubmitted job not tagged", extra={"job": job_id, "error": aws_error_code(exc)}
                )
        return HELD_RESUBMITTED


def _check_time(deadline: Deadline | None, left: int) -> None:
    if deadline is not None and deadline.remaining() < RESERVE_S:
        raise ResubmissionIncomplete(
            f"out of time with {left} held jobs not resubmitted: they are held again for the retry"
        )


def _not_resubmittable(job_id: str, job: Mapping[str, Any] | None, copy: JobCopy | None) -> str | None:
    """Why a held job is not resubmitted (DescribeJobs' entry for it, and the copy it allows), or None."""
    if job is None:
        return "not_found"
    if jobs.is_child_job(job_id):
        return "child_job"
    tags = job.get("tags") or {}
    if TAG_RESUBMITTED_AS in tags:
        return "already_resubmitted"
    if TAG_RESUBMISSION_OF in tags:
        return "is_a_resubmission"
    if copy is None:
        return "incomplete_description"
    return None
