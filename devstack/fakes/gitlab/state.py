"""The GitLab fake's records and errors: configuration, identities, the persisted state (token secrets only
as SHA-256 digests) and GitLab's error bodies. Test double only; see ``devstack/fakes/gitlab/__init__.py``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.fakes.registry_tokens import now
from devstack.fakes.state_base import BaseConfig, JsonState

Json = dict[str, Any]

GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
ROLES = {"maintainer": MAINTAINER, "owner": OWNER}


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


def required(body: Any, *names: str) -> tuple[Json, list[Any]]:
    """Grape's ``requires``: the parameters (none unless ``body`` is an object) and the values of ``names``;
    the first one missing is ``400 {"error": "<name> is missing"}``."""
    params = body if isinstance(body, dict) else {}
    for name in names:
        if params.get(name) is None:
            raise param_error(f"{name} is missing")
    return params, [params[name] for name in names]


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
class Config(BaseConfig):
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


class State(JsonState):
    """Every record, persisted as JSON (token secrets only as SHA-256 digests); ``seq`` holds one counter per
    table."""

    TABLES = ("users", "groups", "projects", "members", "deploy_tokens", "access_tokens")

    def __init__(self, path: Path) -> None:
        super().__init__(path, {"seq": {}, **{t: {} for t in self.TABLES}})

    def insert(self, name: str, record: Json) -> Json:
        seq = self.data["seq"]
        seq[name] = int(seq.get(name, 0)) + 1
        record["id"] = seq[name]
        self.table(name)[str(record["id"])] = record
        return record


def rfc3339_ms(moment: dt.datetime) -> str:
    """GitLab's timestamps: ``2021-01-01T00:00:00.000Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
