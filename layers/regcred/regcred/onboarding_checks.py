"""The checks of ``regcred onboard`` that need no secret: the flag values (schedule grammar, ranges, the ECR
mirror's name) and the rotation function (it exists, and Secrets Manager may invoke it)."""

from __future__ import annotations

import re
from typing import Any

from . import config
from .aws import aws_error_code
from .errors import ConfigurationError

__all__ = ["check_ecr_mirror", "check_rotation_function", "check_values", "validate_schedule"]

# Secrets Manager rotates at most every four hours; AutomaticallyAfterDays ranges 1..1000 (API reference,
# RotationRulesType: "You can rotate a secret as often as every four hours"; "Valid Range: Minimum value of 1.
# Maximum value of 1000.").
_RATE = re.compile(r"rate\((\d{1,5}) (hours?|days?)\)")
_CRON = re.compile(r"cron\(([^()]+)\)")
MIN_RATE_HOURS, MAX_RATE_DAYS = 4, 1000


def validate_schedule(text: str) -> str:
    """A Secrets Manager ScheduleExpression: ``rate(N hours|days)`` (4 hours to 1000 days) or ``cron(...)``
    with six fields. ConfigurationError naming the flag otherwise."""
    rate = _RATE.fullmatch(text)
    if rate:
        number, unit = int(rate.group(1)), rate.group(2)
        hours = number if unit.startswith("hour") else number * 24
        if hours < MIN_RATE_HOURS or hours > MAX_RATE_DAYS * 24 or number == 0:
            raise ConfigurationError(
                f"--schedule {text!r}: Secrets Manager rotates between every {MIN_RATE_HOURS} hours and "
                f"every {MAX_RATE_DAYS} days"
            )
        if (unit in ("hour", "day")) != (number == 1):
            raise ConfigurationError(f"--schedule {text!r}: write rate(1 day), rate(2 days), rate(12 hours)")
        return text
    cron = _CRON.fullmatch(text)
    if cron and len(cron.group(1).split()) == 6:
        return text
    raise ConfigurationError(
        f"--schedule {text!r} is not a Secrets Manager schedule: use rate(30 days), rate(12 hours) or a "
        "six-field cron(...) expression such as cron(0 4 ? * SUN *)"
    )


def check_values(
    *,
    rotation_lambda: str | None,
    schedule: str | None,
    grace: str,
    ttl: str,
    ecr_mirror: str | None = None,
    name: str = "",
) -> None:
    """The onboard values that are wrong whatever AWS says (ConfigurationError naming the flag): the
    rotation function and schedule go together, the schedule's grammar, the grace and ttl ranges, and the
    ECR mirror's name (``name`` is the managed secret's)."""
    if bool(rotation_lambda) != bool(schedule):
        raise ConfigurationError("--rotation-lambda and --schedule go together: give both or neither")
    if schedule:
        validate_schedule(schedule)
    config.parse_duration(grace, "--grace", minimum=config.GRACE_RANGE[0], maximum=config.GRACE_RANGE[1])
    config.parse_duration(ttl, "--ttl", minimum=config.TTL_RANGE[0], maximum=config.TTL_RANGE[1])
    if ecr_mirror is not None:
        check_ecr_mirror(ecr_mirror, name)


def check_ecr_mirror(mirror: str, name: str) -> None:
    """--ecr-mirror: a secret name beginning with ``ecr-pullthroughcache/`` (what ECR pull-through cache rules
    read), and not the managed secret itself."""
    from .mirror import check_mirror_name

    try:
        check_mirror_name(mirror, name)
    except ConfigurationError:
        raise ConfigurationError(
            f"--ecr-mirror {mirror[:60]!r}: name a secret beginning with {config.ECR_MIRROR_PREFIX} (the "
            "only secrets an ECR pull-through cache rule reads), such as ecr-pullthroughcache/docker-hub"
        ) from None
    if mirror == name:
        raise ConfigurationError(f"--ecr-mirror {mirror}: the mirror must be another secret than {name}")


def check_rotation_function(lam: Any, arn: str) -> None:
    """The rotation function exists and its resource policy lets Secrets Manager invoke it."""
    import json

    try:
        lam.get_function(FunctionName=arn)
    except Exception as exc:
        code = aws_error_code(exc)
        if code == "ResourceNotFoundException":
            raise ConfigurationError(
                f"--rotation-lambda {arn}: no such function (use the RotateFunctionArn output of the "
                "regcred stack)"
            ) from None
        raise ConfigurationError(f"--rotation-lambda {arn}: lambda:GetFunction failed ({code})") from None
    try:
        policy = json.loads(lam.get_policy(FunctionName=arn).get("Policy") or "{}")
    except Exception as exc:
        if aws_error_code(exc) != "ResourceNotFoundException":
            raise ConfigurationError(
                f"--rotation-lambda {arn}: lambda:GetPolicy failed ({aws_error_code(exc)})"
            ) from None
        policy = {}
    for statement in policy.get("Statement") or []:
        principal = statement.get("Principal") or {}
        service = principal.get("Service") if isinstance(principal, dict) else None
        services = service if isinstance(service, list) else [service]
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if (
            statement.get("Effect") == "Allow"
            and "secretsmanager.amazonaws.com" in services
            and ({"lambda:InvokeFunction", "lambda:*"} & set(actions))
        ):
            return
    raise ConfigurationError(
        f"--rotation-lambda {arn}: Secrets Manager may not invoke it (no resource policy statement allows "
        "secretsmanager.amazonaws.com lambda:InvokeFunction). The regcred stack's RotateFunction has one; "
        "for "
        f"another function: aws lambda add-permission --function-name {arn} --statement-id SecretsManager "
        "--action lambda:InvokeFunction --principal secretsmanager.amazonaws.com"
    )
