"""The Harbor fake's persisted state: robot accounts (secrets only as SHA-256 digests), who a request is, and
its API error. Test double only; see ``devstack/fakes/harbor/__init__.py``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.fakes.registry_tokens import now
from devstack.fakes.state_base import JsonState, Table

Json = dict[str, Any]
NEVER = -1  # expires_at of a robot that never expires (and its duration)


def go_time(moment: dt.datetime) -> str:
    """A time as Harbor's API writes it (go-openapi strfmt.DateTime: RFC 3339, milliseconds, UTC)."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class HarborError(Exception):
    """An API error: the HTTP status and Harbor's error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Identity:
    """Who a request is: ``kind`` is user, robot or anonymous."""

    kind: str
    username: str = ""
    user_id: int = 0
    role: str = ""  # a user's project role: projectAdmin, maintainer, developer, guest, limitedGuest
    robot: Json = field(default_factory=dict)  # the robot record

    def label(self) -> str:
        if self.kind == "anonymous":
            return "anonymous"
        if self.kind == "robot":
            return f"robot:{self.robot.get('id')}"
        return f"user:{self.username}"


class State(JsonState):
    """The robots, persisted as JSON under the state directory (secrets only as SHA-256 digests)."""

    robots = Table("robots")

    def __init__(self, path: Path) -> None:
        super().__init__(path, {"seq": 0, "robots": {}})


def expired(record: Json) -> bool:
    expires = int(record.get("expires_at", NEVER))
    return expires != NEVER and expires <= int(now().timestamp())


def usable(record: Json) -> bool:
    """A robot that may log in: not disabled and not expired (Harbor's robot security context)."""
    return not record.get("disable") and not expired(record)
