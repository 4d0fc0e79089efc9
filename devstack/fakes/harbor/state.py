"""The Harbor fake's persisted state: robot accounts (secrets only as SHA-256 digests) and who a request is.
Test double only; see ``devstack/fakes/harbor/__init__.py``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.fakes.registry_tokens import now

Json = dict[str, Any]
NEVER = -1  # expires_at of a robot that never expires (and its duration)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def go_time(moment: dt.datetime) -> str:
    """A time as Harbor's API writes it (go-openapi strfmt.DateTime: RFC 3339, milliseconds, UTC)."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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


class State:
    """The robots, persisted as JSON under the state directory (secrets only as SHA-256 digests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: Json = {"seq": 0, "robots": {}}
        if path.exists():
            self.data.update(json.loads(path.read_text()))

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)

    def next_id(self) -> int:
        self.data["seq"] += 1
        return int(self.data["seq"])

    @property
    def robots(self) -> dict[str, Json]:
        return self.data["robots"]  # type: ignore[no-any-return]


def expired(record: Json) -> bool:
    expires = int(record.get("expires_at", NEVER))
    return expires != NEVER and expires <= int(now().timestamp())


def usable(record: Json) -> bool:
    """A robot that may log in: not disabled and not expired (Harbor's robot security context)."""
    return not record.get("disable") and not expired(record)
