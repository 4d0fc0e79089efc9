"""The GitHub fake's logic, independent of HTTP: personal access tokens (classic) and their scopes, rate
limits, credential revocation, and what the ghcr.io token realm grants. Test double only; see
``devstack/fakes/github/__init__.py``."""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from devstack.fakes.registry_tokens import now, parse_time, rfc3339
from devstack.fakes.state_base import BaseConfig, FakeBackend, digest

from .state import Identity, State, live

REGISTRY_TOKEN_TTL = 300
RATE_WINDOW_S = 3600
REVOKE_MAX_CREDENTIALS = 1000  # "up to 1000 per request"
# The scopes of a personal access token (classic), and the ones each implies ("Available scopes";
# "Normalized scopes": a token is saved without the scopes another of its scopes includes).
IMPLIED_SCOPES: dict[str, tuple[str, ...]] = {
    "repo": ("repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events"),
    "admin:repo_hook": ("write:repo_hook", "read:repo_hook"),
    "write:repo_hook": ("read:repo_hook",),
    "admin:org": ("write:org", "read:org"),
    "write:org": ("read:org",),
    "admin:public_key": ("write:public_key", "read:public_key"),
    "write:public_key": ("read:public_key",),
    "user": ("read:user", "user:email", "user:follow"),
    "project": ("read:project",),
    "admin:gpg_key": ("write:gpg_key", "read:gpg_key"),
    "write:gpg_key": ("read:gpg_key",),
    # The docs: write:packages downloads and uploads container images (fake-only: treated as implying
    # read:packages, so a token created with both lists only write:packages).
    "write:packages": ("read:packages",),
}
CLASSIC_SCOPES = frozenset(
    {
        *IMPLIED_SCOPES,
        *(s for implied in IMPLIED_SCOPES.values() for s in implied),
        "admin:org_hook",
        "gist",
        "notifications",
        "delete_repo",
        "delete:packages",
        "codespace",
        "workflow",
        "read:audit_log",
    }
)
_TOKEN_CHARS = string.ascii_letters + string.digits

Json = dict[str, Any]


@dataclass
class Config(BaseConfig):
    public_repos: list[str] = field(default_factory=list)
    service: str = "ghcr.io"
    issuer: str = "ghcr-issuer"
    rate_limit: int = 5000  # authenticated requests an hour per user
    anonymous_rate_limit: int = 60  # unauthenticated requests an hour per address
    revoke_limit: int = 60  # POST /credentials/revoke requests an hour per address


class GitHubError(Exception):
    """An answer in GitHub's error shape: {"message", "documentation_url", "status"} (+ "errors")."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        documentation_url: str = "https://docs.github.com/rest",
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> Json:
        out: Json = {"message": self.message, "documentation_url": self.documentation_url}
        if self.errors is not None:
            out["errors"] = self.errors
        out["status"] = str(self.status)
        return out


def normalize_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes as GitHub saves them: each one that another of them includes is dropped."""
    wanted = set(scopes)
    implied = {s for parent in wanted for s in IMPLIED_SCOPES.get(parent, ())}
    return sorted(wanted - implied)


def has_scope(scopes: Iterable[str], scope: str) -> bool:
    """Whether ``scope`` is among ``scopes`` or implied by one of them."""
    held = set(scopes)
    return scope in held or any(scope in IMPLIED_SCOPES.get(s, ()) for s in held)


def expiration_header(expires_at: str) -> str:
    """GitHub-Authentication-Token-Expiration: ``2027-01-01 00:00:00 UTC``."""
    return parse_time(expires_at).strftime("%Y-%m-%d %H:%M:%S UTC")


class Window:
    """One rate-limit window: ``limit`` requests an hour from its first request."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.start = time.time()
        self.used = 0

    def take(self) -> bool:
        """Count one request; False when the window has none left (nothing counted then)."""
        if time.time() >= self.start + RATE_WINDOW_S:
            self.start, self.used = time.time(), 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self, resource: str = "core") -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(0, self.limit - self.used)),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-reset": str(int(self.start + RATE_WINDOW_S)),
            "x-ratelimit-resource": resource,
        }


class GitHub(FakeBackend):
    """The fake's logic, independent of HTTP plumbing (request log and minted secrets: `FakeBackend`)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config = config
        self.state = State(config.state_dir / "state.json")
        self._rate_lock = threading.Lock()
        self._windows: dict[tuple[str, str], Window] = {}
        self.public = {r.lower() for r in config.public_repos}
        self._ensure_admin_token()

    # ---- tokens

    def _ensure_admin_token(self) -> None:
        """The admin secret is a classic PAT of the admin user with write:packages (which pushes the seed
        images); it is kept as a token record, so it can be revoked like any other."""
        with self.state.lock:
            if self.state.by_digest(self.config.admin_secret) is None:
                self._store(self.config.admin_secret, ["write:packages", "read:packages"], None, "admin")
                self.state.save()

    def _store(self, token: str, scopes: list[str], expires_at: str | None, note: str) -> Json:
        record = {
            "id": self.state.next_seq(),
            "digest": digest(token),
            "scopes": normalize_scopes(scopes),
            "expires_at": expires_at,
            "note": note,
            "revoked": False,
            "created_at": rfc3339(now()),
            "last_used_at": None,
            "admin": note == "admin",
        }
        self.state.tokens[str(record["id"])] = record
        return record

    def create_token(self, body: Any) -> Json:
        """Fake-only (GitHub's settings page): a new classic PAT of the admin user."""
        if not isinstance(body, dict):
            raise GitHubError(400, "Body should be a JSON object")
        scopes = body.get("scopes", [])
        if not isinstance(scopes, list) or not all(
            isinstance(s, str) and s in CLASSIC_SCOPES for s in scopes
        ):
            raise GitHubError(
                422, "Validation Failed", errors=[{"resource": "Token", "field": "scopes", "code": "invalid"}]
            )
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > 200:
            raise GitHubError(
                422, "Validation Failed", errors=[{"resource": "Token", "field": "note", "code": "invalid"}]
            )
        expires_at = body.get("expires_at")
        if expires_at is not None:
            try:
                when = parse_time(expires_at) if isinstance(expires_at, str) else None
            except ValueError:
                when = None
            if when is None or when <= now():
                raise GitHubError(
                    422,
                    "Validation Failed",
                    errors=[{"resource": "Token", "field": "expires_at", "code": "invalid"}],
                )
            expires_at = rfc3339(when)
        token = "ghp_" + "".join(secrets.choice(_TOKEN_CHARS) for _ in range(36))
        self.record_minted(token)
        with self.state.lock:
            record = self._store(token, scopes, expires_at, note or "regcred test")
            self.state.save()
        return {**self.view(record), "token": token}

    @staticmethod
    def view(record: Json) -> Json:
        keys = ("id", "scopes", "expires_at", "note", "revoked", "created_at", "last_used_at")
        return {k: record.get(k) for k in keys}

    def identity(self, token: str) -> Identity | None:
        """The admin user's identity for a live token; None for an unknown, revoked or expired one."""
        with self.state.lock:
            record = self.state.by_digest(token)
            if record is None or not live(record):
                return None
            record["last_used_at"] = rfc3339(now())
            self.state.save()
            return Identity(
                self.config.admin_user, int(record["id"]), list(record["scopes"]), bool(record.get("admin"))
            )

    def revoke(self, body: Any) -> int:
        """POST /credentials/revoke: revoke every listed token this fake knows; how many were live."""
        if not isinstance(body, dict):
            raise GitHubError(400, "Body should be a JSON object")
        credentials = body.get("credentials")
        problem = None
        if not isinstance(credentials, list) or not credentials:
            problem = "credentials must be a non-empty array"
        elif len(credentials) > REVOKE_MAX_CREDENTIALS:
            problem = f"credentials may list at most {REVOKE_MAX_CREDENTIALS} tokens"
        elif not all(isinstance(c, str) and c for c in credentials):
            problem = "credentials must be strings"
        if problem is not None:
            raise GitHubError(
                422,
                "Invalid request.",
                errors=[problem],
                documentation_url="https://docs.github.com/rest/credentials/revoke#revoke-a-list-of-credentials",
            )
        assert isinstance(credentials, list)
        revoked = 0
        with self.state.lock:
            for value in credentials:
                record = self.state.by_digest(value)
                if record is not None and live(record):
                    record["revoked"] = True
                    revoked += 1
            self.state.save()
        return revoked

    # ---- rate limits

    def window(self, kind: str, key: str, limit: int) -> Window:
        with self._rate_lock:
            found = self._windows.get((kind, key))
            if found is None:
                found = self._windows[(kind, key)] = Window(limit)
            return found

    def take_rate(self, kind: str, key: str, limit: int) -> tuple[bool, Window]:
        window = self.window(kind, key, limit)
        with self._rate_lock:
            return window.take(), window

    # ---- the ghcr.io token realm

    def namespace_of(self, repo: str) -> str:
        return repo.split("/", 1)[0].lower()

    def allowed_actions(self, who: Identity, repo: str) -> set[str]:
        """Public packages pull for everyone; the admin user's own packages pull with read:packages (or
        write:packages), push with write:packages, delete with delete:packages and read."""
        repo = repo.lower()
        actions = {"pull"} if repo in self.public else set()
        if who.anonymous or self.namespace_of(repo) != self.config.admin_user.lower():
            return actions
        if has_scope(who.scopes, "read:packages"):
            actions.add("pull")
        if has_scope(who.scopes, "write:packages"):
            actions.add("push")
        if "delete:packages" in who.scopes and has_scope(who.scopes, "read:packages"):
            actions.add("delete")
        return actions

    def realm_identity(self, username: str, token: str) -> Identity | None:
        """HTTP Basic at the realm: the token must be live and the username its owner's login."""
        if username.strip().lower() != self.config.admin_user.lower():
            return None
        return self.identity(token)

    def registry_token(self, who: Identity, service: str, scopes: Iterable[str]) -> tuple[Json, list[Json]]:
        """Narrowed silently, as a token server does."""
        allowed = partial(self.allowed_actions, who)
        return self.grant_registry_token(
            who.login or "anonymous", service, scopes, allowed, REGISTRY_TOKEN_TTL
        )

    def user(self, base_url: str) -> Json:
        """The authenticated user, as GET /user shows it (a subset of its fields)."""
        login = self.config.admin_user
        return {
            "login": login,
            "id": 1,
            "node_id": "U_fake1",
            "avatar_url": f"{base_url}/avatars/{login}",
            "url": f"{base_url}/users/{login}",
            "html_url": f"{base_url}/{login}",
            "type": "User",
            "site_admin": False,
            "name": login,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "bio": None,
            "public_repos": 0,
            "followers": 0,
            "following": 0,
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
        }
