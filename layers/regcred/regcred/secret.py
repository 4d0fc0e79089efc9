"""The value schema of a managed secret version.

ECS and Batch read only ``username`` and ``password`` from the AWSCURRENT version (the EC2 agent
decodes those two keys with Go's JSON and ignores the rest), so every version also carries what
belongs to that one credential: where it works, which vendor minted it, the vendor's id for it and
when it expires. Configuration that is not per version lives in the secret's tags (see ``config.py``).
A value is untrusted input: it is parsed with bounds (size, nesting), and none of its fields decides
where a credential is sent (``registry`` is checked against configuration, see ``routing.py``).

Every write goes through :func:`render`, which validates first: regcred never writes a value ECS
cannot read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from . import redact, safejson
from .errors import SecretFormatError
from .hosts import split_host_port
from .timefmt import format_time
from .timefmt import parse_time as _parse_iso

# Secrets Manager's own limit for SecretString.
MAX_SECRET_BYTES = 65536
_PROVIDER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Docker's credential helpers and the ECS agent pass these through HTTP Basic: no control characters.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_FIELD = 4096


def parse_time(text: str, what: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive times are taken as UTC."""
    try:
        return _parse_iso(text)
    except ValueError:
        raise SecretFormatError(
            f"{what} is not an ISO 8601 time (expected e.g. 2027-01-01T00:00:00Z)"
        ) from None


@dataclass(frozen=True)
class SecretValue:
    """One version of a managed registry credential."""

    username: str
    password: str = field(repr=False)
    registry: str = ""
    provider: str = ""
    token_id: str | None = None
    expires_at: datetime | None = None
    issued_at: datetime | None = None
    # Keys this version of regcred does not know are kept, so that a newer writer's fields survive
    # a rollback to an older regcred.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def with_credential(
        self,
        *,
        username: str,
        password: str,
        token_id: str | None,
        expires_at: datetime | None,
        issued_at: datetime,
        registry: str | None = None,
        provider: str | None = None,
    ) -> SecretValue:
        """This value with another credential (and, when given, the configured registry and provider)."""
        return replace(
            self,
            username=username,
            password=password,
            token_id=token_id,
            expires_at=expires_at,
            issued_at=issued_at,
            registry=self.registry if registry is None else registry,
            provider=self.provider if provider is None else provider,
        )

    def expires_within(self, now: datetime, seconds: float) -> bool:
        """True when the credential expires less than ``seconds`` after ``now``."""
        return self.expires_at is not None and (self.expires_at - now).total_seconds() < seconds


def parse(text: str | None) -> SecretValue:
    """Parse and validate a secret string. Errors name the field, never its value."""
    if not text:
        raise SecretFormatError(
            'the secret has no SecretString; store JSON {"username": ..., "password": ...}'
        )
    if not isinstance(text, str):
        raise SecretFormatError('the secret value must be a JSON string {"username": ..., "password": ...}')
    try:
        raw = safejson.loads(text, max_bytes=MAX_SECRET_BYTES)
    except ValueError as exc:
        raise SecretFormatError(
            f'the secret value is not usable JSON ({exc}); store {{"username": ..., "password": ...}}'
        ) from None
    if not isinstance(raw, dict):
        raise SecretFormatError('the secret value must be a JSON object {"username": ..., "password": ...}')
    known = {"username", "password", "registry", "provider", "token_id", "expires_at", "issued_at"}
    value = SecretValue(
        username=_string(raw, "username", required=True),
        password=_string(raw, "password", required=True),
        registry=_string(raw, "registry", required=False),
        provider=_string(raw, "provider", required=False),
        token_id=_string(raw, "token_id", required=False) or None,
        expires_at=_time(raw, "expires_at"),
        issued_at=_time(raw, "issued_at"),
        extra={k: v for k, v in raw.items() if k not in known},
    )
    redact.remember(value.password)
    validate(value)
    return value


def _string(raw: dict[str, Any], key: str, *, required: bool) -> str:
    item = raw.get(key)
    if item is None:
        if required:
            raise SecretFormatError(f'the secret value has no "{key}"; ECS needs "username" and "password"')
        return ""
    if not isinstance(item, str):
        raise SecretFormatError(f'"{key}" in the secret value must be a string')
    return item


def _time(raw: dict[str, Any], key: str) -> datetime | None:
    item = _string(raw, key, required=False)
    return parse_time(item, f'"{key}"') if item else None


def validate(value: SecretValue) -> None:
    """Refuse a value ECS could not use. Messages name the field, never its content."""
    for key in ("username", "password"):
        item = getattr(value, key)
        if not item or not item.strip():
            raise SecretFormatError(f'"{key}" is empty; ECS cannot pull with it')
        if len(item) > MAX_FIELD:
            raise SecretFormatError(f'"{key}" is longer than {MAX_FIELD} characters')
        if _CONTROL_RE.search(item):
            raise SecretFormatError(f'"{key}" contains control characters (a pasted newline?); remove them')
    if ":" in value.username:
        raise SecretFormatError('"username" contains ":", which HTTP Basic auth cannot carry')
    if value.registry and split_host_port(value.registry) is None:
        raise SecretFormatError(
            '"registry" must be a registry host such as registry-1.docker.io or host:port'
        )
    if value.provider and not _PROVIDER_RE.match(value.provider):
        raise SecretFormatError('"provider" must be a provider name such as "dockerhub"')


def render(value: SecretValue) -> str:
    """Validate and serialise a value for PutSecretValue."""
    validate(value)
    out: dict[str, Any] = dict(value.extra)
    out.update({"username": value.username, "password": value.password})
    if value.registry:
        out["registry"] = value.registry
    if value.provider:
        out["provider"] = value.provider
    if value.token_id:
        out["token_id"] = value.token_id
    if value.expires_at:
        out["expires_at"] = format_time(value.expires_at)
    if value.issued_at:
        out["issued_at"] = format_time(value.issued_at)
    return json.dumps(out, separators=(",", ":"))


def ecs_view(value: SecretValue) -> dict[str, str]:
    """The part of the value that the ECS agent reads."""
    return {"username": value.username, "password": value.password}
