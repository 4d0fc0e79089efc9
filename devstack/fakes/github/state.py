"""The GitHub fake's persisted state: the admin user's personal access tokens (classic), as SHA-256
digests, never in clear. Test double only; see ``devstack/fakes/github/__init__.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.fakes.registry_tokens import now, parse_time
from devstack.fakes.state_base import JsonState, Table, digest

Json = dict[str, Any]


@dataclass
class Identity:
    """Who a request is: a token of the admin user (``token_id``, ``scopes``), or anonymous."""

    login: str = ""
    token_id: int = 0
    scopes: list[str] = field(default_factory=list)
    admin: bool = False  # the token the fake was started with (its seeding credential)

    @property
    def anonymous(self) -> bool:
        return not self.login

    def label(self) -> str:
        return "anonymous" if self.anonymous else f"pat:{self.login}:{self.token_id}"


class State(JsonState):
    """Tokens, persisted as JSON in ``state.json`` (secrets only as SHA-256 digests)."""

    tokens = Table("tokens")  # token records by id

    def __init__(self, path: Path) -> None:
        super().__init__(path, {"seq": 0, "tokens": {}})

    def by_digest(self, value: str) -> Json | None:
        want = digest(value)
        with self.lock:
            for record in self.tokens.values():
                if record["digest"] == want:
                    return record
        return None


def live(record: Json) -> bool:
    """Not revoked and not expired."""
    if record.get("revoked"):
        return False
    expires = record.get("expires_at")
    return not (expires and parse_time(expires) <= now())
