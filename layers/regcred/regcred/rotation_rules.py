"""The rotation protocol's vocabulary and pure decisions: steps and their outcomes, the AWS templates' guard,
which job definition images name a secret, and the small records a step passes around. No I/O: the staging
labels and every Secrets Manager call live in `regcred.store`. The state machine that uses them is
`regcred.rotation`; docs/ARCHITECTURE.md, "Rotation", describes both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .config import SecretConfig, tag_value
from .errors import RotationError, RotationRetryable
from .providers import ProviderSpec
from .routing import Routing
from .store import CURRENT, PENDING, SecretState

if TYPE_CHECKING:
    from .http.deadline import Deadline
    from .registry import Credential, PullCheck

STEP_SECONDS = 60.0


class Step(enum.Enum):
    """The four rotation steps, in the order Secrets Manager calls them."""

    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"

    @classmethod
    def parse(cls, text: object) -> Step:
        """Accept ``createSecret`` and ``create_secret`` spellings."""
        key = text.replace("_", "").lower() if isinstance(text, str) and len(text) < 40 else ""
        for step in cls:
            if step.value.lower() == key:
                return step
        raise RotationError(
            "unknown rotation step; expected one of createSecret, setSecret, testSecret, finishSecret"
        )


class Outcome(enum.StrEnum):
    """What a rotation step did."""

    EXISTS = "exists"
    CREATED = "created"
    LOST_RACE = "lost_race"
    NOTHING_TO_SET = "nothing_to_set"
    PULLS = "pulls"
    PROMOTED = "promoted"
    ALREADY_CURRENT = "already_current"


class RetireResult(enum.StrEnum):
    """What `Rotator.retire_previous` did."""

    NO_PREVIOUS = "no_previous"
    NOT_MINTED = "previous_not_minted_by_regcred"
    ALREADY_RETIRED = "already_retired"
    IN_GRACE = "in_grace"
    CURRENT_UNPROVEN = "current_unproven"
    # The ECR pull-through cache mirror could not be made to hold AWSCURRENT: the previous credential, which
    # the mirror may still hold, is kept (`regcred.mirror.mirror_problem` says why).
    MIRROR_STALE = "mirror_stale"
    REFUSED = "refused_not_minted_for_secret"
    RETIRED = "retired"
    # An imported credential that regcred cannot revoke: recorded as retired; revoke it at the vendor.
    RETIRED_NOT_REVOKED = "retired_not_revoked"
    WOULD_RETIRE = "would_retire"  # a dry run: every check passed, nothing was revoked


class PullChecker(Protocol):
    """Proves a credential can pull images from a secret's registry."""

    def __call__(
        self,
        route: Routing,
        credential: Credential,
        images: Sequence[str],
        *,
        deadline: Deadline | None = None,
        prove: bool = False,
    ) -> PullCheck: ...


# -- pure decisions ----------------------------------------------------------------------------


class Guard(enum.Enum):
    """What the guard says about a step."""

    PROCEED = "proceed"
    ALREADY_CURRENT = "already_current"


def guard(
    versions: Mapping[str, Sequence[str]],
    token: str,
    step: Step,
    *,
    rotation_enabled: bool,
    require_rotation_enabled: bool = True,
) -> Guard:
    """The AWS templates' guard, plus one allowance: a createSecret whose token has no version yet may create
    it (the in-process driver, ``regcred rotate --local``, has no RotateSecret to register the token)."""
    if require_rotation_enabled and not rotation_enabled:
        raise RotationError(
            "rotation is not enabled on this secret; enable it (regcred onboard --rotation-lambda ARN) or "
            "drive it with regcred rotate --local"
        )
    stages = versions.get(token)
    if stages is None:
        if step is Step.CREATE:
            return Guard.PROCEED
        raise RotationError(f"version {token} of the secret does not exist; start a new rotation")
    if CURRENT in stages:
        return Guard.ALREADY_CURRENT
    if PENDING not in stages:
        raise RotationError(
            f"version {token} is not AWSPENDING (its earlier test failed or another rotation replaced it); "
            "start a new rotation"
        )
    return Guard.PROCEED


def failure_is_retryable(check: PullCheck) -> bool:
    """A check that only failed to reach or use the registry says nothing against the credential."""
    return check.could_not_check and not check.failed


def matches_secret(credentials_parameter: str, arn: str, name: str) -> bool:
    """Whether a job definition's ``credentialsParameter`` names this secret (ARN, partial ARN or name)."""
    if credentials_parameter in (arn, name):
        return True
    # A partial ARN lacks the 7-character "-AbCdEf" suffix Secrets Manager appends to full ARNs.
    return arn.startswith(credentials_parameter + "-") and len(arn) - len(credentials_parameter) == 7


def job_definition_images(definition: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(image, credentialsParameter) pairs of a Batch job definition, multi-node ranges included."""
    containers = [definition.get("containerProperties") or {}]
    node_properties = definition.get("nodeProperties") or {}
    for node_range in (
        node_properties.get("nodeRangeProperties") or [] if isinstance(node_properties, dict) else []
    ):
        if isinstance(node_range, dict):
            containers.append(node_range.get("container") or {})
    for container in containers:
        if not isinstance(container, dict):
            continue
        image = container.get("image")
        parameter = (container.get("repositoryCredentials") or {}).get("credentialsParameter")
        if isinstance(image, str) and isinstance(parameter, str) and image and parameter:
            yield image, parameter


@dataclass(frozen=True)
class StepOutcome:
    """What a step did, for logs and metrics."""

    step: Step
    outcome: Outcome
    provider: str
    rotation_seconds: float | None = None  # createSecret to promotion, set by finishSecret
    skipped_images: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.outcome.value


@dataclass(frozen=True)
class StepContext:
    """One step's view of a secret: its state, configuration, provider spec, routing and deadline."""

    state: SecretState
    cfg: SecretConfig
    spec: ProviderSpec
    route: Routing
    deadline: Deadline


@dataclass(frozen=True)
class ProbeImages:
    """The images that prove a credential, and those that were left out (with why)."""

    images: tuple[str, ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepFailure:
    """A failed rotation step, as the rotate function records it in the ``regcred:last-rotation-failure``
    bookkeeping tag (``<version> <step> <error>: <reason>``) and ``regcred rotate --wait`` reads it."""

    version: str
    step: str
    error: str
    reason: str

    @property
    def why(self) -> str:
        return f"{self.error}: {self.reason}"

    @property
    def retryable(self) -> bool:
        """Secrets Manager retries the step (AWSPENDING was kept)."""
        return self.error == RotationRetryable.__name__

    def tag_text(self) -> str:
        """The tag value: within the tag rules, never a secret (``reason`` is a scrubbed regcred message or
        an AWS error code)."""
        return tag_value(f"{self.version} {self.step} {self.why}")

    @classmethod
    def of_version(cls, text: str, version: str) -> StepFailure | None:
        """The recorded failure if it belongs to ``version`` (the rotation a caller follows), else None."""
        if not text.startswith(version + " "):
            return None
        _, step, rest = [*text.split(" ", 2), "", ""][:3]
        error, _, reason = rest.partition(":")
        return cls(version, step, error, reason.strip())


def select_images(candidates: Iterable[tuple[str, str | None]], route: Routing) -> ProbeImages:
    """The images among ``candidates`` ((image, default registry) pairs) that are on the secret's configured
    registry, parsed and de-duplicated; the others are reported as skipped, never sent anywhere."""
    from .errors import RegcredError
    from .registry.reference import ImageRef

    images: list[str] = []
    skipped: list[str] = []
    for text, default in dict.fromkeys(candidates):
        try:
            ref = ImageRef.parse(text, default_registry=default)
        except RegcredError as exc:
            skipped.append(str(exc))
            continue
        if not route.names_registry(ref.registry):
            skipped.append(f"{ref} is not on {route.registry_name}")
            continue
        if str(ref) not in images:
            images.append(str(ref))
    return ProbeImages(tuple(images), tuple(skipped))
