"""The GitHub fake's persisted state: the admin user's personal access tokens (classic), as SHA-256
digests, never in clear. Test double only; see ``devstack/fakes/github/__init__.py``."""

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


class State:
    """Tokens, persisted as JSON in ``state.json`` (secrets only as SHA-256 digests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: Json = {"seq": 0, "tokens": {}}
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
    def tokens(self) -> dict[str, Json]:
        """Token records by id (a string: JSON object keys)."""
        return self.data["tokens"]  # type: ignore[no-any-return]

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
