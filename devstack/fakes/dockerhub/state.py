"""The Docker Hub fake's persisted state: the admin user's PATs and its org's OATs (secrets only as
SHA-256 digests), and who a credential is. Test double only; see ``devstack/fakes/dockerhub/__init__.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.fakes.registry_tokens import now, parse_time
from devstack.fakes.state_base import JsonState, Table

Json = dict[str, Any]


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


class State(JsonState):
    """Tokens of the one user and its org, persisted as JSON (secrets only as SHA-256 digests)."""

    pats = Table("pats")
    oats = Table("oats")

    def __init__(self, path: Path) -> None:
        super().__init__(path, {"seq": 0, "pats": {}, "oats": {}})


def usable(record: Json) -> bool:
    """Active and not expired."""
    if not record.get("is_active"):
        return False
    expires = record.get("expires_at")
    return not (expires and parse_time(expires) <= now())
