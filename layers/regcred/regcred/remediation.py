"""What to do about a classified image-pull failure: tag, probe, rotate, roll back, notify, hold; and about
the outcome of a Secrets Manager rotation: resubmit the jobs held for it, or report its failure.

Per event, the only write is the job's tags. Everything that costs a registry probe, a rotation or a
notification is coalesced per secret (or role, or image) per cooldown window, so a storm of
thousands of failures makes one probe and at most one rotation per secret.

With ResubmitJobs, a job whose credential is being rotated asynchronously (a rotation started or in
progress) is held for its secret (`regcred.held_jobs`) and resubmitted once that rotation's RotationSucceeded
event arrives; a job whose credential was fixed at once (rolled back, or the failure was transient) is
resubmitted at once. Either way a job is resubmitted at most once: a ``resubmit#<job id>`` claim, and the
``regcred:resubmitted-as`` / ``regcred:resubmission-of`` tags.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from . import jobs
from .access import check_role
from .aws import aws_error_code
from .coalesce import Coalescer
from .config import tag_value
from .ecs import tag_task
from .errors import ConfigurationError, RegcredError, SecretFormatError
from .failures import FailureClass, classify
from .held_jobs import HeldJobs, HoldResult
from .http.deadline import Deadline
from .observability import logger
from .resubmission import (
    HELD_AWAITING,
    HELD_REFUSED,
    HELD_RESUBMITTED,
    TAG_HELD,
    TAG_RESUBMITTED_AS,
    JobCopy,
    Resubmitter,
    resubmittable,
    submit_copy,
)
from .rotation import PullChecker, Rotator, StepContext
from .rotation_outcome import RotationOutcome, RotationOutcomes
from .routing import Deployment
from .secret import SecretValue
from .store import CURRENT, PENDING, PREVIOUS, SecretAccessDenied, SecretNotFound, SecretStore

if TYPE_CHECKING:
    # Their parser models (pydantic) load with the first event.
    from .events import PullFailure, RotationNotice

TAG_CLASS = "regcred:pull-failure"
TAG_SECRET = "regcred:secret"  # noqa: S105 - a tag key
TAG_DIAGNOSIS = "regcred:diagnosis"


class Diagnosis(StrEnum):
    """Short codes for the ``regcred:diagnosis`` tag and metrics."""

    ROTATION_STARTED = "rotation_started"
    ROTATION_IN_PROGRESS = "rotation_in_progress"
    ROTATION_NOT_ENABLED = "rotation_not_enabled"
    IMPORT_NEEDED = "import_needed"  # a provider regcred cannot mint for: an operator runs regcred import
    ROLLED_BACK = "rolled_back"
    SCOPE = "scope"
    IMAGE_NOT_FOUND = "not_found"
    TRANSIENT = "transient"
    REGISTRY_UNREACHABLE = "registry_unreachable"
    RATE_LIMITED = "rate_limited"
    COALESCED = "coalesced"
    ROLE_DENIED = "role_denied"
    KMS_DENIED = "kms_denied"
    ROLE_OK = "role_ok"
    ROLE_UNCHECKED = "role_unchecked"
    NO_EXECUTION_ROLE = "no_execution_role"
    SECRET_MISSING = "secret_missing"  # noqa: S105 - diagnosis codes, not secrets
    SECRET_UNMANAGED = "secret_unmanaged"  # noqa: S105
    SECRET_FORMAT = "secret_format"  # noqa: S105
    SECRET_MISCONFIGURED = "secret_misconfigured"  # noqa: S105
    NO_CREDENTIALS = "no_repository_credentials"
    NETWORK = "network"
    PLATFORM_MISMATCH = "platform_mismatch"


class Action(StrEnum):
    """What remediation did about an event, besides tagging its job (the ``RemediationAction`` metric)."""

    PROBED = "probed"
    ROLLED_BACK = "rolled_back"
    ROTATION_STARTED = "rotation_started"
    ROLE_SIMULATED = "role_simulated"
    NOTIFIED = "notified"
    RESUBMITTED = "resubmitted"
    HELD = "held"  # for the secret's rotation in progress, resubmitted when it succeeds


# What a person should do, by diagnosis; notifications carry this, never a secret value.
ADVICE: dict[Diagnosis, str] = {
    Diagnosis.ROTATION_STARTED: "The registry rejected the credential; a rotation was started. Watch the "
    "rotate function's logs; failed jobs can be resubmitted once it finishes.",
    Diagnosis.ROTATION_IN_PROGRESS: "The credential is rejected and a rotation is already in progress.",
    Diagnosis.ROTATION_NOT_ENABLED: "The registry rejected the credential and the secret has no rotation "
    "configured: run `regcred rotate SECRET --local` or enable rotation.",
    Diagnosis.IMPORT_NEEDED: "The registry rejected the credential, and regcred cannot mint one for this "
    "provider: create a new token at the vendor and run `regcred import SECRET`.",
    Diagnosis.ROLLED_BACK: "The newly promoted credential was rejected; AWSCURRENT was rolled back to the "
    "previous credential, which pulls. Investigate the vendor token before the next rotation.",
    Diagnosis.SCOPE: "The credential is valid but may not pull this repository: grant it pull access.",
    Diagnosis.IMAGE_NOT_FOUND: "The image or tag does not exist in the registry: fix the job definition.",
    Diagnosis.REGISTRY_UNREACHABLE: "The registry could not be reached to check the credential.",
    Diagnosis.RATE_LIMITED: "The registry's pull rate limit was hit: authenticate with a paid plan, "
    "mirror the image, or spread the jobs out. Rotating would not help.",
    Diagnosis.ROLE_DENIED: "The job's execution role may not read the secret: allow "
    "secretsmanager:GetSecretValue on it.",
    Diagnosis.KMS_DENIED: "The job's execution role may not decrypt the secret: "
    "allow kms:Decrypt on its key.",
    Diagnosis.ROLE_OK: "The execution role may read the secret; check the secret ARN, VPC endpoints or "
    "network path to Secrets Manager.",
    Diagnosis.ROLE_UNCHECKED: "The execution role could not be simulated; "
    "run `regcred diagnose JOB_ID|TASK_ARN`.",
    Diagnosis.NO_EXECUTION_ROLE: "The job has no execution role to read the secret with: "
    "set executionRoleArn.",
    Diagnosis.SECRET_MISSING: "The secret named by repositoryCredentials does not exist.",
    Diagnosis.SECRET_FORMAT: 'The secret is not JSON {"username","password"}: fix its AWSCURRENT value.',
    Diagnosis.SECRET_MISCONFIGURED: "The secret's regcred configuration does not hold (its tags, its admin "
    "secret, or a value naming another registry): run `regcred diagnose JOB_ID|TASK_ARN` and fix what it "
    "reports.",
    Diagnosis.SECRET_UNMANAGED: "The secret is not managed by regcred (or regcred may not read it): nothing "
    "was probed, rotated or rolled back.",
    Diagnosis.NO_CREDENTIALS: "The registry refused an anonymous pull: add repositoryCredentials.",
    Diagnosis.PLATFORM_MISMATCH: "The image has no manifest for the job's platform (e.g. arm64 vs amd64).",
}
# Classes a person must hear about even though regcred does not act on them.
_NOTIFY = {
    Diagnosis.ROTATION_NOT_ENABLED,
    Diagnosis.IMPORT_NEEDED,
    Diagnosis.ROLLED_BACK,
    Diagnosis.SCOPE,
    Diagnosis.IMAGE_NOT_FOUND,
    Diagnosis.RATE_LIMITED,
    Diagnosis.ROLE_DENIED,
    Diagnosis.KMS_DENIED,
    Diagnosis.ROLE_OK,
    Diagnosis.ROLE_UNCHECKED,
    Diagnosis.NO_EXECUTION_ROLE,
    Diagnosis.SECRET_MISSING,
    Diagnosis.SECRET_FORMAT,
    Diagnosis.SECRET_MISCONFIGURED,
    Diagnosis.NO_CREDENTIALS,
    Diagnosis.PLATFORM_MISMATCH,
    Diagnosis.ROTATION_STARTED,
}
# Diagnoses whose fix is a rotation that finishes after the invocation: with ResubmitJobs, the job waits.
_HOLD_FOR = (Diagnosis.ROTATION_STARTED, Diagnosis.ROTATION_IN_PROGRESS)
_BY_CLASS = {
    FailureClass.RATE_LIMIT: Diagnosis.RATE_LIMITED,
    FailureClass.NOT_FOUND: Diagnosis.IMAGE_NOT_FOUND,
    FailureClass.NETWORK: Diagnosis.NETWORK,
    FailureClass.PLATFORM_MISMATCH: Diagnosis.PLATFORM_MISMATCH,
    FailureClass.SECRET_FORMAT: Diagnosis.SECRET_FORMAT,
}


@dataclass
class Outcome:
    """What remediation did with one event."""

    failure_class: FailureClass
    registry: str | None = None
    secret: str | None = None
    diagnosis: Diagnosis | None = None
    actions: list[Action] = field(default_factory=list)
    tagged: bool = False
    duplicate: bool = False
    hold: HoldResult | None = None  # what became of the job when it was to be held for a rotation
    # Found by the probe: the secret's full ARN, and the AWSCURRENT version the registry rejected.
    secret_arn: str | None = None
    rejected_version: str | None = None
    not_tagged: str | None = None  # why an ECS task was not tagged (counted as EcsTaskNotTagged)


@dataclass(frozen=True)
class Settings:
    """Deployment settings, from the function's environment."""

    cooldown_s: int = 900
    resubmit: bool = False
    topic_arn: str | None = None


class Remediator:
    """Handles pull failures; built once per execution environment so its caches stay warm."""

    def __init__(
        self,
        *,
        sm: Any,
        batch: Any,
        coalescer: Coalescer,
        iam: Any | None = None,
        kms: Any | None = None,
        ecs: Any | None = None,
        sns: Any | None = None,
        check: PullChecker | None = None,
        rotator: Rotator | None = None,
        deployment: Deployment | None = None,
        settings: Settings | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        start_rotation: Callable[[str], object] | None = None,
        held: HeldJobs | None = None,
        seen_size: int = 8192,
    ) -> None:
        self.store = SecretStore.of(sm)
        self.batch, self.iam, self.kms, self.ecs, self.sns = batch, iam, kms, ecs, sns
        self.coalescer = coalescer
        # Routing, probe images and the pull check are the rotation's own: one rule for where a credential
        # goes.
        self.rotator = rotator or Rotator(
            self.store, batch=batch, deployment=deployment, check=check, now=now
        )
        self.settings = settings or Settings()
        self._now = now
        # Secrets Manager invokes the rotation function; tests without Lambda drive it themselves.
        self._start_rotation = start_rotation or self.store.start_rotation
        self.job_definitions = jobs.DefinitionCache(jobs.batch_job_definition_fetcher(batch))
        self.task_definitions = jobs.DefinitionCache(jobs.ecs_task_definition_fetcher(ecs)) if ecs else None
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._seen_size = seen_size
        # Jobs held for a rotation: in the coalesce table when the function has one (build_remediator),
        # else in this process.
        self.held = held or HeldJobs(None, None)
        self.resubmitter = Resubmitter(batch, coalescer, self.held)
        self.rotations = RotationOutcomes(
            store=self.store,
            held=self.held,
            resubmitter=self.resubmitter,
            coalescer=coalescer,
            sns=sns,
            settings=self.settings,
        )
        # The full ARN of each secret a job names (by name, partial or full ARN): the held jobs' key.
        self._arns: OrderedDict[str, str] = OrderedDict()

    # -- per event ---------------------------------------------------------------------------

    def handle(self, failure: PullFailure, *, deadline: Deadline | None = None) -> Outcome:
        """Classify, link, act (coalesced) and tag one failure; registry and vendor calls end by ``deadline``
        (the invocation's, less a margin)."""
        failure_class = classify(failure.reason)
        outcome = Outcome(failure_class)
        if failure_class is FailureClass.OTHER:
            return outcome
        seen_key = (failure.resource_id, failure.attempts)
        if seen_key in self._seen:
            outcome.duplicate = True  # a redelivery: its job is tagged already
            return outcome
        image, secret_id, role, _container = jobs.link(failure, self.job_definitions, self.task_definitions)
        ref = jobs.parse_image(image) if image else None
        outcome.registry = ref.registry if ref is not None else None
        outcome.secret = secret_id
        if failure_class in (FailureClass.AUTH, FailureClass.AUTH_OR_NOT_FOUND):
            outcome.diagnosis = self._auth(secret_id, image, outcome, deadline)
        elif failure_class is FailureClass.SECRET_RETRIEVAL:
            outcome.diagnosis = self._secret_retrieval(secret_id, role, outcome)
        else:
            outcome.diagnosis = _BY_CLASS[failure_class]
            self._notify_once(secret_id or image or "-", outcome.diagnosis, image, outcome)
        if failure.kind == "batch" and not jobs.is_child_job(failure.resource_id) and failure.resource_arn:
            tags = {TAG_CLASS: failure_class.value, TAG_DIAGNOSIS: outcome.diagnosis}
            if secret_id:
                tags[TAG_SECRET] = tag_value(jobs.secret_name_from_arn(secret_id))
            if self._should_resubmit(failure, outcome):
                self._resubmit_now(failure, outcome, tags)
            elif secret_id and self._should_hold(failure, outcome):
                self._hold(failure, secret_id, outcome, tags)
            self.batch.tag_resource(
                resourceArn=failure.resource_arn, tags={k: tag_value(v) for k, v in tags.items()}
            )
            outcome.tagged = True
        elif failure.kind == "ecs" and self.ecs is not None:  # where ECS allows it (regcred.ecs)
            tags = {TAG_CLASS: failure_class.value, TAG_DIAGNOSIS: str(outcome.diagnosis)}
            if secret_id:
                tags[TAG_SECRET] = jobs.secret_name_from_arn(secret_id)
            result = tag_task(self.ecs, failure.resource_id, tags, region=failure.region)
            outcome.tagged, outcome.not_tagged = result.tagged, result.reason
        self._seen[seen_key] = None
        if len(self._seen) > self._seen_size:
            self._seen.popitem(last=False)
        return outcome

    # -- auth: probe, then rotate or roll back -------------------------------------------------

    def _auth(
        self, secret_id: str | None, image: str | None, outcome: Outcome, deadline: Deadline | None
    ) -> Diagnosis:
        if not secret_id:
            return Diagnosis.NO_CREDENTIALS
        key = f"probe#{secret_id}"
        claim = self.coalescer.claim(key)
        if not claim.owner:
            return _recorded(claim.diagnosis)
        try:
            diagnosis = self._probe_and_act(secret_id, image, outcome, deadline)
        except RegcredError as exc:
            logger.warning(
                "remediation probe failed", extra={"error": type(exc).__name__, "reason": str(exc)}
            )
            diagnosis = Diagnosis.REGISTRY_UNREACHABLE
        self.coalescer.record(key, diagnosis)
        if diagnosis in _NOTIFY:
            self._publish(diagnosis, secret_id, image, outcome)
        return diagnosis

    def _probe_and_act(
        self, secret_id: str, image: str | None, outcome: Outcome, deadline: Deadline | None
    ) -> Diagnosis:
        from .registry.results import PullStatus  # urllib3 loads with the first probe

        rotator = self.rotator
        try:
            state = self.store.describe(secret_id)
        except SecretNotFound:
            return Diagnosis.SECRET_MISSING
        except SecretAccessDenied:
            # The functions may describe only secrets tagged regcred:managed=true: a secret we may not
            # describe is not one regcred manages, and is never probed with.
            return Diagnosis.SECRET_UNMANAGED
        if not state.managed:
            return Diagnosis.SECRET_UNMANAGED
        outcome.secret_arn = state.arn
        self._remember_arn(secret_id, state.arn)
        try:
            ctx = rotator.context(state, deadline)
        except ConfigurationError as exc:
            logger.warning("managed secret misconfigured", extra={"reason": str(exc)})
            return Diagnosis.SECRET_MISCONFIGURED
        try:
            current = self.store.read(state.arn, stage=CURRENT)
        except (SecretFormatError, SecretNotFound):
            return Diagnosis.SECRET_FORMAT
        images = self._probe_images(ctx, image)
        if not images:
            return Diagnosis.SECRET_MISCONFIGURED
        outcome.actions.append(Action.PROBED)
        try:
            result = rotator.check(ctx, current, images)
        except ConfigurationError as exc:
            logger.warning("managed secret misconfigured", extra={"reason": str(exc)})
            return Diagnosis.SECRET_MISCONFIGURED
        statuses = {i.status for i in result.images}
        if PullStatus.CREDENTIALS_REJECTED in statuses:
            return self._rollback_or_rotate(ctx, images, outcome)
        if PullStatus.NO_ACCESS in statuses:
            return Diagnosis.SCOPE
        if PullStatus.NOT_FOUND in statuses:
            return Diagnosis.IMAGE_NOT_FOUND
        if PullStatus.RATE_LIMITED in statuses:
            return Diagnosis.RATE_LIMITED
        if PullStatus.UNREACHABLE in statuses:
            return Diagnosis.REGISTRY_UNREACHABLE
        return Diagnosis.TRANSIENT

    def _probe_images(self, ctx: StepContext, image: str | None) -> list[str]:
        """The failed job's image when it is on the secret's configured registry, else the secret's probe
        images. An image on any other host is ignored, whoever registered the job definition."""
        ref = jobs.parse_image(image) if image else None
        if ref is not None and ctx.route.names_registry(ref.registry):
            return [str(ref)]
        if image:
            logger.info("failed job's image is not on the secret's registry: probing its own images instead")
        try:
            return list(self.rotator.probe_images(ctx).images)
        except ConfigurationError:
            return []

    def _rollback_or_rotate(self, ctx: StepContext, images: list[str], outcome: Outcome) -> Diagnosis:
        state, cfg = ctx.state, ctx.cfg
        arn = state.arn
        current_id = state.holder(CURRENT)
        pending_id = state.holder(PENDING)
        outcome.rejected_version = current_id
        if pending_id is not None and pending_id != current_id:
            return Diagnosis.ROTATION_IN_PROGRESS
        previous_id = state.holder(PREVIOUS)
        in_grace = cfg.promoted_at is not None and self._now() < cfg.promoted_at + timedelta(
            seconds=cfg.grace_s
        )
        if previous_id and current_id and in_grace:
            try:
                previous: SecretValue | None = self.store.read(arn, stage=PREVIOUS, version_id=previous_id)
            except (SecretFormatError, SecretNotFound):
                previous = None
            if previous is not None and previous.token_id != cfg.retired_token_id:
                try:
                    result = self.rotator.check(ctx, previous, images)
                except ConfigurationError:
                    result = None
                if result is not None and result.ok:
                    self.store.move_stage(arn, CURRENT, to=previous_id, remove_from=current_id)
                    outcome.actions.append(Action.ROLLED_BACK)
                    logger.warning(
                        "AWSCURRENT rolled back to the previous credential", extra={"secret": state.name}
                    )
                    return Diagnosis.ROLLED_BACK
        if not ctx.spec.can_mint:
            return Diagnosis.IMPORT_NEEDED  # a RotateSecret could only fail: a person must import a token
        if not state.rotation_enabled:
            return Diagnosis.ROTATION_NOT_ENABLED
        try:
            self._start_rotation(arn)
        except Exception as exc:
            if aws_error_code(exc) != "InvalidRequestException":
                raise
            return Diagnosis.ROTATION_IN_PROGRESS  # "previous rotation request is still in progress"
        outcome.actions.append(Action.ROTATION_STARTED)
        return Diagnosis.ROTATION_STARTED

    # -- secret retrieval: diagnose the execution role -----------------------------------------

    def _secret_retrieval(self, secret_id: str | None, role: str | None, outcome: Outcome) -> Diagnosis:
        if not secret_id:
            return Diagnosis.NO_CREDENTIALS
        if not role:
            diagnosis = Diagnosis.NO_EXECUTION_ROLE
            self._notify_once(secret_id, diagnosis, None, outcome)
            return diagnosis
        key = f"role#{role}#{secret_id}"
        claim = self.coalescer.claim(key)
        if not claim.owner:
            return _recorded(claim.diagnosis)
        diagnosis = self._simulate(role, secret_id)
        outcome.actions.append(Action.ROLE_SIMULATED)
        self.coalescer.record(key, diagnosis)
        self._publish(diagnosis, secret_id, None, outcome)
        return diagnosis

    def _simulate(self, role: str, secret_id: str) -> Diagnosis:
        """The execution role's access to the secret (`regcred.access.check_role`, as diagnose uses it)."""
        if self.iam is None:
            return Diagnosis.ROLE_OK
        try:
            state = self.store.describe(secret_id)
        except SecretNotFound:
            return Diagnosis.SECRET_MISSING
        except SecretAccessDenied:
            return Diagnosis.SECRET_UNMANAGED
        access = check_role(role, state, iam=self.iam, store=self.store, kms=self.kms)
        if access.role_missing or access.secret in access.denied:
            return Diagnosis.ROLE_DENIED
        if access.denied:
            return Diagnosis.KMS_DENIED
        if access.unknown:
            logger.warning(
                "role simulation inconclusive",
                extra={"notes": [p.note for p in access.permissions if p.note]},
            )
            return Diagnosis.ROLE_UNCHECKED
        return Diagnosis.ROLE_OK

    # -- notifications and resubmission ---------------------------------------------------------

    def _notify_once(
        self, subject_key: str, diagnosis: Diagnosis, image: str | None, outcome: Outcome
    ) -> None:
        """One notification per diagnosis and secret (or image) per window."""
        if diagnosis in _NOTIFY and self.coalescer.claim(f"notify#{diagnosis}#{subject_key}").owner:
            self._publish(diagnosis, outcome.secret, image, outcome)

    def _publish(
        self, diagnosis: Diagnosis, secret_id: str | None, image: str | None, outcome: Outcome
    ) -> None:
        if self.sns is None or not self.settings.topic_arn:
            return
        lines = [
            f"Pull failure class: {outcome.failure_class.value}",
            f"Diagnosis: {diagnosis}",
            f"Secret: {secret_id or '-'}",
            f"Registry: {outcome.registry or '-'}",
            f"Image: {image or '-'}",
            "",
            ADVICE.get(diagnosis, ""),
            f"Jobs are tagged {TAG_DIAGNOSIS}={diagnosis}; similar failures within "
            f"{self.settings.cooldown_s // 60} minutes are not reported again.",
        ]
        subject = f"regcred: {diagnosis} for {jobs.secret_name_from_arn(secret_id) if secret_id else 'a job'}"
        self.sns.publish(TopicArn=self.settings.topic_arn, Subject=subject[:100], Message="\n".join(lines))
        outcome.actions.append(Action.NOTIFIED)

    def _should_resubmit(self, failure: PullFailure, outcome: Outcome) -> bool:
        return (
            self.settings.resubmit
            and outcome.failure_class is FailureClass.AUTH
            and outcome.diagnosis in (Diagnosis.ROLLED_BACK, Diagnosis.TRANSIENT)
            and resubmittable(failure.tags)
            and self.resubmitter.claim(failure.resource_id)
        )

    def _resubmit_now(self, failure: PullFailure, outcome: Outcome, tags: dict[str, str]) -> None:
        """Resubmit the failed job from its event (its ``resubmit#`` claim is this invocation's)."""
        copy = JobCopy.of_failure(failure)
        if copy is None:
            return
        tags[TAG_RESUBMITTED_AS] = submit_copy(self.batch, copy)
        outcome.actions.append(Action.RESUBMITTED)

    # -- held jobs: a rotation in progress --------------------------------------------------------

    def _should_hold(self, failure: PullFailure, outcome: Outcome) -> bool:
        """A top-level job (the caller checked), not resubmitted before, whose credential is being rotated."""
        return (
            self.settings.resubmit
            and outcome.failure_class in (FailureClass.AUTH, FailureClass.AUTH_OR_NOT_FOUND)
            and outcome.diagnosis in _HOLD_FOR
            and resubmittable(failure.tags)
        )

    def _hold(self, failure: PullFailure, secret_id: str, outcome: Outcome, tags: dict[str, str]) -> None:
        """Hold the job for its secret's rotation, or resubmit it at once if that rotation has succeeded."""
        arn = outcome.secret_arn or self._secret_arn(secret_id)
        if arn is None:
            return
        result = self.held.hold(
            arn, failure.resource_id, failed_at=failure.failed_at, rejected_version=outcome.rejected_version
        )
        outcome.hold = result
        if result is HoldResult.HELD or result is HoldResult.ALREADY_HELD:
            tags[TAG_HELD] = HELD_AWAITING
            if result is HoldResult.HELD:
                outcome.actions.append(Action.HELD)
        elif result is HoldResult.FULL:
            tags[TAG_HELD] = HELD_REFUSED
            logger.warning(
                "job not held: the secret holds the most jobs it may",
                extra={"secret": arn, "limit": self.held.limit},
            )
        elif self.resubmitter.claim(failure.resource_id):
            # HoldResult.ROTATED: the rotation this job would wait for has succeeded already.
            self._resubmit_now(failure, outcome, tags)
            if TAG_RESUBMITTED_AS in tags:
                tags[TAG_HELD] = HELD_RESUBMITTED

    def _secret_arn(self, secret_id: str) -> str | None:
        """The full ARN of the managed secret a job names (by name, partial or full ARN), described once per
        execution environment; None for a secret that is missing or not managed."""
        known = self._arns.get(secret_id)
        if known is not None:
            self._arns.move_to_end(secret_id)
            return known
        try:
            state = self.store.describe(secret_id)
        except (SecretNotFound, SecretAccessDenied):
            return None
        if not state.managed:
            return None
        self._remember_arn(secret_id, state.arn)
        return state.arn

    def _remember_arn(self, secret_id: str, arn: str) -> None:
        self._arns[secret_id] = arn
        self._arns.move_to_end(secret_id)
        if len(self._arns) > 1024:
            self._arns.popitem(last=False)

    # -- Secrets Manager's rotation events --------------------------------------------------------

    def handle_rotation(self, notice: RotationNotice, *, deadline: Deadline | None = None) -> RotationOutcome:
        """RotationSucceeded: resubmit the jobs held for the secret; RotationFailed / RotationAbandoned:
        notify once per secret per cooldown (`regcred.rotation_outcome`)."""
        return self.rotations.handle(notice, deadline=deadline)


def _recorded(text: str | None) -> Diagnosis:
    """The diagnosis the owner of a coalesced claim recorded; COALESCED until it has (or if it is unknown)."""
    try:
        return Diagnosis(text) if text else Diagnosis.COALESCED
    except ValueError:
        return Diagnosis.COALESCED
