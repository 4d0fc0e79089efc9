"""The event Secrets Manager sends a rotation function, checked before anything acts on it.

``{"SecretId", "ClientRequestToken", "Step", "RotationToken"?}``: SecretId a secret ARN or name (1-2048
characters), ClientRequestToken 32-64 characters of letters, digits and hyphens (the RotateSecret API's
limits; ``regcred rotate --local`` uses a UUID), Step one of the four steps. Anything else is an
`InvalidEvent` whose message names the field, never its value.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidEvent, RotationError
from .rotation_rules import Step

__all__ = ["rotation_event"]

_TOKEN_RE = re.compile(r"[A-Za-z0-9-]{32,64}")
_SECRET_ID_RE = re.compile(r"[\x21-\x7e]{1,2048}")


def rotation_event(event: Any) -> tuple[str, str, Step]:
    """(SecretId, ClientRequestToken, Step) of a rotation event; InvalidEvent when it is not one."""
    if not isinstance(event, dict):
        raise InvalidEvent("not a Secrets Manager rotation event: the event must be a JSON object")
    secret_id = event.get("SecretId")
    token = event.get("ClientRequestToken")
    step = event.get("Step")
    if not isinstance(secret_id, str) or _SECRET_ID_RE.fullmatch(secret_id) is None:
        raise InvalidEvent("not a Secrets Manager rotation event: SecretId must be a secret ARN or name")
    if not isinstance(token, str) or _TOKEN_RE.fullmatch(token) is None:
        raise InvalidEvent(
            "not a Secrets Manager rotation event: "
            "ClientRequestToken must be 32-64 letters, digits or hyphens"
        )
    try:
        parsed = Step.parse(step)
    except RotationError:
        raise InvalidEvent(
            "not a Secrets Manager rotation event: "
            "Step must be createSecret, setSecret, testSecret or finishSecret"
        ) from None
    return secret_id, token, parsed
