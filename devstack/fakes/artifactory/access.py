"""The Artifactory fake's logic, independent of HTTP: users, access tokens and their thresholds, and the
registry tokens its Docker realm issues. Test double only; see ``devstack/fakes/artifactory/__init__.py``."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

from devstack.fakes.state_base import FakeBackend, JsonState, Table, digest

Json = dict[str, Any]
REGISTRY_TOKEN_TTL = 3600  # Artifactory's Docker realm answers {"token", "expires_in": 3600}
ACCESS_AUDIENCE = "*@*"  # the documented default audience of an access token
USERNAME_MAX = 255
SCOPE_MAX = 500
DESCRIPTION_MAX = 1024
AUDIENCE_MAX = 255
# the code of each status the fake answers: its name (BAD_REQUEST, ..., GATEWAY_TIMEOUT)
ERROR_CODES = {s: HTTPStatus(s).name for s in (400, 401, 403, 404, 405, 409, 415, 429, 500, 502, 503, 504)}


def error_body(status: int, message: str) -> Json:
    """The Access service's error shape: ``{"errors": [{"code", "message"}]}``."""
    return {"errors": [{"code": ERROR_CODES.get(status, f"HTTP_{status}"), "message": message}]}


class AccessError(Exception):
    """An error answer; ``body`` overrides the usual shape (the refused revocation's flat shape)."""

    def __init__(self, status: int, message: str, body: Json | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body if body is not None else error_body(status, message)


@dataclass
class Config:
    state_dir: Path
    admin_user: str
    admin_token: str
    key_path: Path
    cert_path: Path
    repo_keys: list[str] = field(default_factory=lambda: ["docker-local"])
    pull_users: list[str] = field(default_factory=list)  # users with read on every Docker repository
    service: str = "artifactory"
    issuer: str = "jfrog-access"
    instance_id: str = "01fakeaccess0000000000000000"
    max_expiry: int = 0  # token.max-expiry: 0 = no cap; binds non-admins
    default_expiry: int = 365 * 24 * 3600  # token.default-expiry
    revocable_threshold: int = 6 * 3600  # revocable-expiry-threshold
    persistent_threshold: int = 3 * 3600  # persistent-expiry-threshold


@dataclass(frozen=True)
class Identity:
    """Who a credential is: a user (through one of its tokens) or anonymous."""

    username: str = ""
    token_id: str = ""
    admin: bool = False

    def label(self) -> str:
        return f"user:{self.username}:{self.token_id}" if self.username else "anonymous"


class State(JsonState):
    """Token records, persisted as JSON (secrets only as SHA-256 digests)."""

    tokens = Table("tokens")

    def __init__(self, path: Path) -> None:
        super().__init__(path, {"tokens": {}})


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise AccessError(400, f"{name} must be true or false")


def _text(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise AccessError(400, f"{name} must be a string of at most {limit} characters")
    return value


class Access(FakeBackend):
    """The fake Access service and Docker realm (request log and minted secrets: `FakeBackend`)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config = config
        self.state = State(config.state_dir / "state.json")
        self.admins = {config.admin_user.lower()}
        self.users = self.admins | {u.lower() for u in config.pull_users}
        self.readers = {u.lower() for u in config.pull_users}
        self._bootstrap()

    # ---- records

    @property
    def issuer(self) -> str:
        return f"jfac@{self.config.instance_id}"

    def subject(self, username: str) -> str:
        return f"{self.issuer}/users/{username}"

    def _bootstrap(self) -> None:
        """The admin secret is the admin user's own non-expiring access token, listed like any other."""
        cfg = self.config
        token_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-artifactory:" + digest(cfg.admin_token)))
        with self.state.lock:
            if token_id not in self.state.tokens:
                self.state.tokens[token_id] = {
                    "token_id": token_id,
                    "username": cfg.admin_user.lower(),
                    "scope": "applied-permissions/admin",
                    "audience": ACCESS_AUDIENCE,
                    "issued_at": int(time.time()),
                    "created_ms": int(time.time() * 1000),
                    "expiry": None,
                    "description": "fake bootstrap admin token (the admin secret)",
                    "refreshable": False,
                    "revocable": True,
                    "persisted": True,
                    "digest": digest(cfg.admin_token),
                }
                self.state.save()

    def purge_expired(self) -> None:
        """Access's revoke-expired-tokens job; here it runs before every request."""
        t = int(time.time())
        with self.state.lock:
            gone = [i for i, r in self.state.tokens.items() if r["expiry"] is not None and r["expiry"] <= t]
            for token_id in gone:
                del self.state.tokens[token_id]
            if gone:
                self.state.save()

    def view(self, rec: Json) -> Json:
        """A token as Get Tokens and Get Token by ID show it (optional fields omitted when unset)."""
        out: Json = {"token_id": rec["token_id"], "subject": self.subject(rec["username"])}
        if rec["expiry"] is not None:
            out["expiry"] = rec["expiry"]
        out.update({"issued_at": rec["issued_at"], "issuer": self.issuer})
        if rec.get("description") is not None:
            out["description"] = rec["description"]
        out["refreshable"] = rec["refreshable"]
        return out

    def visible(self, rec: Json, who: Identity) -> bool:
        return bool(rec["persisted"]) and (who.admin or rec["username"] == who.username)

    # ---- authentication

    def identity_of(self, secret: str) -> Identity | None:
        """The identity of an access token (or reference token) value; None when it is unknown, revoked or
        expired."""
        want = digest(secret)
        t = int(time.time())
        with self.state.lock:
            for rec in self.state.tokens.values():
                if not (
                    secrets.compare_digest(rec["digest"], want)
                    or secrets.compare_digest(rec.get("reference_digest") or "", want)
                ):
                    continue
                if rec["expiry"] is not None and rec["expiry"] <= t:
                    return None
                return Identity(rec["username"], rec["token_id"], self.token_is_admin(rec))
        return None

    def token_is_admin(self, rec: Json) -> bool:
        scopes = rec["scope"].split()
        return "applied-permissions/admin" in scopes or (
            "applied-permissions/user" in scopes and rec["username"] in self.admins
        )

    # ---- tokens

    def _scope(self, value: Any, who: Identity) -> str:
        scope = _text(value, "scope", SCOPE_MAX) or "applied-permissions/user"
        parts = scope.split()
        if not parts:
            raise AccessError(400, "scope must not be empty")
        for part in parts:
            if part == "applied-permissions/user":
                continue
            if part == "applied-permissions/admin" or part.startswith("applied-permissions/groups:"):
                if not who.admin:
                    raise AccessError(403, f"a non-admin may not request the scope {part}")
                continue
            raise AccessError(400, f"unsupported scope {part!r}")
        return scope

    def _expires_in(self, value: Any, who: Identity) -> int:
        cfg = self.config
        if value is None:
            default = cfg.default_expiry
            return min(default, cfg.max_expiry) if cfg.max_expiry and not who.admin else default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AccessError(400, "expires_in must be a non-negative number of seconds")
        if not who.admin:
            if value == 0:
                raise AccessError(403, "only an admin may create a token that never expires (expires_in 0)")
            if cfg.max_expiry and value > cfg.max_expiry:
                raise AccessError(
                    403, f"expires_in {value} is higher than the limit the admin set ({cfg.max_expiry})"
                )
        return value

    def create(self, body: Mapping[str, Any], who: Identity) -> Json:
        """Create Token (or refresh one, with grant_type refresh_token)."""
        grant = _text(body.get("grant_type"), "grant_type", 64) or "client_credentials"
        if grant == "refresh_token":
            return self._refresh(body, who)
        if grant != "client_credentials":
            raise AccessError(400, "grant_type must be client_credentials or refresh_token")
        username = (_text(body.get("username"), "username", USERNAME_MAX) or who.username).lower()
        if username != who.username and not who.admin:
            raise AccessError(403, "a non-admin user may create tokens only for itself")
        if username not in self.users:
            raise AccessError(400, f"user {username!r} does not exist")
        return self._mint(
            username=username,
            scope=self._scope(body.get("scope"), who),
            expires_in=self._expires_in(body.get("expires_in"), who),
            description=_text(body.get("description"), "description", DESCRIPTION_MAX),
            audience=_text(body.get("audience"), "audience", AUDIENCE_MAX) or ACCESS_AUDIENCE,
            refreshable=_flag(body.get("refreshable"), "refreshable"),
            reference=_flag(body.get("include_reference_token"), "include_reference_token"),
            force_revocable=_flag(body.get("force_revocable"), "force_revocable"),
            project_key=_text(body.get("project_key"), "project_key", 64),
        )

    def _refresh(self, body: Mapping[str, Any], who: Identity) -> Json:
        refresh = _text(body.get("refresh_token"), "refresh_token", 4096)
        if not refresh:
            raise AccessError(400, "refresh_token is required with grant_type refresh_token")
        with self.state.lock:
            old = next(
                (r for r in self.state.tokens.values() if r.get("refresh_digest") == digest(refresh)), None
            )
            if old is None:
                raise AccessError(400, "unknown or used refresh token")
            if old["username"] != who.username:
                raise AccessError(403, "only the token's user may refresh it")
            lifetime = (old["expiry"] - old["issued_at"]) if old["expiry"] is not None else 0
            expires_in = self._expires_in(body.get("expires_in", lifetime), who)
            del self.state.tokens[old["token_id"]]
            return self._mint(
                username=old["username"],
                scope=old["scope"],
                expires_in=expires_in,
                description=old.get("description"),
                audience=old["audience"],
                refreshable=True,
                reference=bool(old.get("reference_digest")),
                force_revocable=bool(old.get("force_revocable")),
                project_key=old.get("project_key"),
            )

    def _mint(
        self,
        *,
        username: str,
        scope: str,
        expires_in: int,
        description: str | None,
        audience: str,
        refreshable: bool,
        reference: bool,
        force_revocable: bool,
        project_key: str | None,
    ) -> Json:
        cfg = self.config
        t = int(time.time())
        token_id = str(uuid.uuid4())
        expiry = t + expires_in if expires_in else None
        claims: Json = {"sub": self.subject(username), "scp": scope, "aud": audience, "iss": self.issuer}
        claims.update({"iat": t, "jti": token_id, **({"exp": expiry} if expiry else {})})
        access_token = self.signer.sign(claims)
        refresh_token = secrets.token_urlsafe(32) if refreshable else None
        reference_token = secrets.token_urlsafe(48)[:64] if reference else None
        self.record_minted(access_token, refresh_token, reference_token)
        rec = {
            "token_id": token_id,
            "username": username,
            "scope": scope,
            "audience": audience,
            "issued_at": t,
            "created_ms": int(time.time() * 1000),
            "expiry": expiry,
            "description": description,
            "refreshable": refreshable,
            "force_revocable": force_revocable,
            "project_key": project_key,
            # Thresholds compare the lifetime (expiry - issued_at); a token that never expires is both.
            # Fake-only: a force_revocable or reference token is stored whatever its lifetime.
            "revocable": expiry is None or force_revocable or expires_in >= cfg.revocable_threshold,
            "persisted": expiry is None
            or force_revocable
            or reference
            or expires_in >= cfg.persistent_threshold,
            "digest": digest(access_token),
            "refresh_digest": digest(refresh_token) if refresh_token else None,
            "reference_digest": digest(reference_token) if reference_token else None,
        }
        with self.state.lock:
            self.state.tokens[token_id] = rec
            self.state.save()
        reply: Json = {"token_id": token_id, "access_token": access_token}
        if expiry is not None:
            reply["expires_in"] = expires_in
        reply.update({"scope": scope, "token_type": "access_token"})
        if refresh_token:
            reply["refresh_token"] = refresh_token
        if reference_token:
            reply["reference_token"] = reference_token
        return reply

    def listing(self, query: Mapping[str, list[str]], who: Identity) -> Json:
        """Get Tokens with its filters: description (trailing wildcard), username, refreshable, token_id,
        order_by, descending_order."""

        def last(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        description, username, token_id = last("description"), last("username"), last("token_id")
        refreshable = last("refreshable")
        if refreshable is not None and refreshable not in ("true", "false"):
            raise AccessError(400, "refreshable must be true or false")
        order = last("order_by") or "created"
        keys = {"created": "created_ms", "token_id": "token_id", "owner": "username", "subject": "username"}
        if order not in (*keys, "expiry"):
            raise AccessError(400, "order_by must be created, token_id, owner, subject or expiry")
        with self.state.lock:
            found = [r for r in self.state.tokens.values() if self.visible(r, who)]
        if description is not None:
            if description.endswith("*"):
                found = [r for r in found if (r.get("description") or "").startswith(description[:-1])]
            else:
                found = [r for r in found if r.get("description") == description]
        if username is not None:
            found = [r for r in found if r["username"] == username.lower()]
        if refreshable is not None:
            found = [r for r in found if r["refreshable"] is (refreshable == "true")]
        if token_id is not None:
            found = [r for r in found if r["token_id"] == token_id]
        if order == "expiry":
            found.sort(key=lambda r: (r["expiry"] is None, r["expiry"] or 0))
        else:
            found.sort(key=lambda r: r[keys[order]])
        if (last("descending_order") or "false") == "true":
            found.reverse()
        return {"tokens": [self.view(r) for r in found]}

    def _resolve(self, token_id: str, who: Identity) -> Json | None:
        with self.state.lock:
            rec = self.state.tokens.get(who.token_id if token_id == "me" else token_id)
        if rec is None or not rec["persisted"]:
            return None
        if not self.visible(rec, who):
            raise AccessError(403, "the authenticated principal has no permissions to get the token")
        return rec

    def get(self, token_id: str, who: Identity) -> Json:
        rec = self._resolve(token_id, who)
        if rec is None:
            raise AccessError(404, "token not found")
        return self.view(rec)

    def revoke(self, token_id: str, who: Identity) -> bool:
        """Revoke Token by ID: True when revoked, False when not found (204)."""
        with self.state.lock:
            rec = self._resolve(token_id, who)
            if rec is None:
                return False
            if not rec["revocable"]:
                detail = (
                    f"Token not revocable. Token expirationTimeMillis: {rec['expiry'] * 1000}, "
                    f"issuedAtMillis: {rec['issued_at'] * 1000}, revocableExpiryThresholdMillis: "
                    f"{self.config.revocable_threshold * 1000}"
                )
                flat = {"code": "BAD_REQUEST", "message": "Token not revocable", "detail": detail}
                raise AccessError(400, "Token not revocable", flat)
            del self.state.tokens[rec["token_id"]]
            self.state.save()
            return True

    # ---- Docker realm

    def allowed_actions(self, who: Identity, repo_key: str, name: str) -> set[str]:
        """Pull for users with read on the repository (a permission target), everything for admins. A name
        is ``<repo-key>/<image>`` (repository path method: how the registry names it) when its first segment
        is a configured repository key, else an image of the realm's own repository (the form Artifactory's
        own challenges use); only names in the realm's repository are granted."""
        first, sep, _ = name.partition("/")
        repository = first if sep and first in self.config.repo_keys else repo_key
        if not who.username or repository != repo_key:
            return set()
        if who.admin:
            return {"pull", "push", "delete"}
        return {"pull"} if who.username in self.readers else set()

    def registry_token(
        self, who: Identity, repo_key: str, service: str, scopes: Iterable[str]
    ) -> tuple[Json, list[Json]]:
        """Narrowed silently, like a real token server."""
        allowed = partial(self.allowed_actions, who, repo_key)
        return self.grant_registry_token(
            who.username or "anonymous", service, scopes, allowed, REGISTRY_TOKEN_TTL
        )
