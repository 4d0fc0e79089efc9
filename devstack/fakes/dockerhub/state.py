"""The Docker Hub fake's persisted state: the admin user's PATs and its org's OATs (secrets only as
SHA-256 digests), and who a credential is. Test double only; see ``devstack/fakes/dockerhub/__init__.py``."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.fakes.registry_tokens import now, parse_time

Json = dict[str, Any]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Identity:
    """Who a credential is: ``kind`` is admin, pat, oat or anonymous."""

    kind: str
    username: str = ""
    token_id: str = ""
    scopes: list[str] = field(default_factory=list)  # PAT scopes
    resources: list[Json] = field(default_factory=list)  # OAT resources

    def label(self) -> str:
        if self.kind == "anonymous":
            return "anonymous"
        return f"{self.kind}:{self.username}" + (f":{self.token_id}" if self.token_id else "")


class State:
    """Tokens of the one user and its org, persisted as JSON (secrets only as SHA-256 digests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: Json = {"seq": 0, "pats": {}, "oats": {}}
        if path.exists():
            self.data.update(json.loads(path.read_text()))

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)

    def next_seq(self) -> int:
        self.data["seq"] += 1
        return int(self.data["seq"])

    @property
    def pats(self) -> dict[str, Json]:
        return self.data["pats"]  # type: ignore[no-any-return]

    @property
    def oats(self) -> dict[str, Json]:
        return self.data["oats"]  # type: ignore[no-any-return]


def usable(record: Json) -> bool:
    """Active and not expired."""
    if not record.get("is_active"):
        return False
    expires = record.get("expires_at")
    return not (expires and parse_time(expires) <= now())
