"""The GitLab fake's records and errors: configuration, identities, the persisted state (token secrets only
as SHA-256 digests) and GitLab's error bodies. Test double only; see ``devstack/fakes/gitlab/__init__.py``."""

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

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
ROLES = {"maintainer": MAINTAINER, "owner": OWNER}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def today() -> dt.date:
    return now().date()


def midnight(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(0), tzinfo=dt.UTC)


class GitLabError(Exception):
    """An answer other than success: status, JSON (or text) body, extra headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def message(status: int, text: Any) -> GitLabError:
    return GitLabError(status, {"message": text})


def param_error(text: str) -> GitLabError:
    """What Grape answers for a parameter it rejects."""
    return GitLabError(400, {"error": text})


def bad_request(reason: str) -> GitLabError:
    return message(400, f"400 Bad request - {reason}")


def unauthorized() -> GitLabError:
    return message(401, "401 Unauthorized")


def forbidden() -> GitLabError:
    return message(403, "403 Forbidden")


def insufficient_scope() -> GitLabError:
    return GitLabError(
        403,
        {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": "api read_api",
        },
    )


@dataclass
class Config:
    state_dir: Path
    admin_user: str
    admin_secret: str
    key_path: Path
    cert_path: Path
    projects: list[str] = field(default_factory=lambda: ["acme/app"])
    public_projects: list[str] = field(default_factory=list)
    service: str = "container_registry"
    issuer: str = "gitlab-issuer"
    admin_role: str = "owner"  # the admin's role on every top-level group: owner or maintainer
    max_lifetime_days: int = 365
    web_host: str = "gitlab.example.com"


@dataclass
class Who:
    """An identity: the admin user (its PAT), a bot user (an access token), a deploy token, or anonymous."""

    kind: str
    username: str = ""
    user_id: int = 0
    scopes: list[str] = field(default_factory=list)
    token: Json | None = None

    def label(self) -> str:
        if self.kind == "anonymous":
            return "anonymous"
        suffix = f":token:{self.token['id']}" if self.token and self.kind != "deploy_token" else ""
        return f"{self.kind}:{self.username}{suffix}"


class State:
    """Every record, persisted as JSON (token secrets only as SHA-256 digests)."""

    TABLES = ("users", "groups", "projects", "members", "deploy_tokens", "access_tokens")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: Json = {"seq": {}, **{t: {} for t in self.TABLES}}
        if path.exists():
            self.data.update(json.loads(path.read_text()))

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)

    def table(self, name: str) -> dict[str, Json]:
        return self.data[name]  # type: ignore[no-any-return]

    def insert(self, name: str, record: Json) -> Json:
        seq = self.data["seq"]
        seq[name] = int(seq.get(name, 0)) + 1
        record["id"] = seq[name]
        self.table(name)[str(record["id"])] = record
        return record


def rfc3339_ms(moment: dt.datetime) -> str:
    """GitLab's timestamps: ``2021-01-01T00:00:00.000Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
