"""Project and group access tokens of the GitLab fake: create, list, get, revoke and ``/rotate`` (with
automatic reuse detection). Test double only; see ``devstack/fakes/gitlab/__init__.py``."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

from devstack.fakes.registry_tokens import now
from devstack.fakes.state_base import FakeBackend, digest

from .state import (
    MAINTAINER,
    OWNER,
    Config,
    Json,
    State,
    Who,
    bad_request,
    message,
    midnight,
    param_error,
    required,
    rfc3339_ms,
    today,
    unauthorized,
)

ACCESS_LEVELS = (10, 15, 20, 30, 40, 50)
BOT_SCOPES = (
    "api",
    "read_api",
    "read_repository",
    "write_repository",
    "read_registry",
    "write_registry",
    "create_runner",
    "manage_runner",
    "ai_features",
    "k8s_proxy",
    "self_rotate",
)
ROTATE_DEFAULT_DAYS = 7  # /rotate without expires_at, when expiry is enforced: one week


class AccessTokens(FakeBackend):
    """The access token endpoints' logic, the base of `GitLab` (which provides the state and roles)."""

    config: Config
    state: State

    def role(self, user_id: int, kind: str, record: Json) -> int:
        raise NotImplementedError

    @staticmethod
    def access_active(rec: Json) -> bool:
        """Not revoked and not expired: the token dies at 00:00 UTC on its expires_at date."""
        return not rec["revoked"] and (rec["expires_at"] is None or now() < midnight(rec["expires_at"]))

    def _manage_level(self, kind: str) -> int:
        return OWNER if kind == "group" else MAINTAINER

    def access_view(self, rec: Json, shown: str | None = None) -> Json:
        view = {
            "id": rec["id"],
            "name": rec["name"],
            "revoked": rec["revoked"],
            "created_at": rec["created_at"],
            "description": rec["description"],
            "scopes": list(rec["scopes"]),
            "user_id": rec["user_id"],
            "last_used_at": rec.get("last_used_at"),
            "active": self.access_active(rec),
            "expires_at": rec["expires_at"],
            "access_level": rec["access_level"],
            "resource_type": rec["holder"][0],
            "resource_id": rec["holder"][1],
            "last_used_ips": [],
        }
        if shown is not None:
            view["token"] = shown
        return view

    def _expiry_date(self, value: Any, *, default_days: int | None) -> str:
        limit = today() + dt.timedelta(days=self.config.max_lifetime_days)
        if value in (None, ""):
            days = self.config.max_lifetime_days if default_days is None else default_days
            return (today() + dt.timedelta(days=days)).isoformat()
        try:
            day = dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise param_error("expires_at is invalid") from None
        if day < today():
            raise bad_request("Expires at cannot be in the past")
        if day > limit:
            raise bad_request(f"Expires at must be before {limit.isoformat()}")
        return day.isoformat()

    def create_access_token(self, kind: str, holder: Json, who: Who, body: Any) -> Json:
        body, (name, scopes) = required(body, "name", "scopes")
        if not isinstance(name, str) or not name.strip():
            raise param_error("name is empty")
        if not isinstance(scopes, list) or any(s not in BOT_SCOPES for s in scopes):
            raise param_error("scopes does not have a valid value")
        level = body.get("access_level", MAINTAINER)
        if isinstance(level, bool) or not isinstance(level, int) or level not in ACCESS_LEVELS:
            raise param_error("access_level does not have a valid value")
        if who.kind != "admin" or self.role(who.user_id, kind, holder) < self._manage_level(kind):
            raise bad_request(f"User does not have permission to create {kind} access token")
        if level > self.role(who.user_id, kind, holder):
            raise bad_request("Access level of the token contains permissions not held by the creating user")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise param_error("description is invalid")
        expires = self._expiry_date(body.get("expires_at"), default_days=None)
        if not scopes:
            raise bad_request("Scopes can't be blank")
        with self.state.lock:
            bot = self.state.insert(
                "users",
                {"username": f"{kind}_{holder['id']}_bot_{secrets.token_hex(16)}", "name": name, "bot": True},
            )
            self.state.insert(
                "members", {"user_id": bot["id"], "source": kind, "source_id": holder["id"], "level": level}
            )
            rec, token = self._new_access_token(
                kind, holder, bot["id"], name, description, scopes, level, expires, family=None
            )
            self.state.save()
        return self.access_view(rec, shown=token)

    def _new_access_token(
        self,
        kind: str,
        holder: Json,
        user_id: int,
        name: str,
        description: str | None,
        scopes: Iterable[str],
        level: int,
        expires: str,
        *,
        family: int | None,
        previous: int | None = None,
    ) -> tuple[Json, str]:
        token = "glpat-" + secrets.token_urlsafe(15)
        self.record_minted(token)
        rec = self.state.insert(
            "access_tokens",
            {
                "name": name,
                "description": description,
                "scopes": list(dict.fromkeys(scopes)),
                "access_level": level,
                "expires_at": expires,
                "revoked": False,
                "created_at": rfc3339_ms(now()),
                "user_id": user_id,
                "holder": [kind, holder["id"]],
                "previous_id": previous,
                "digest": digest(token),
            },
        )
        rec["family"] = family if family is not None else rec["id"]
        return rec, token

    def _may_read_access_tokens(self, kind: str, holder: Json, who: Who) -> None:
        if self.role(who.user_id, kind, holder) < self._manage_level(kind):
            raise unauthorized()  # the endpoint answers unauthorized! without read_resource_access_tokens

    def access_tokens(self, kind: str, holder: Json, who: Who, query: dict[str, list[str]]) -> list[Json]:
        self._may_read_access_tokens(kind, holder, who)
        state = (query.get("state") or [""])[-1]
        if state not in ("", "active", "inactive"):
            raise param_error("state does not have a valid value")
        revoked = (query.get("revoked") or [""])[-1].lower()
        search = (query.get("search") or [""])[-1].lower()
        out = []
        with self.state.lock:
            for rec in sorted(self.state.table("access_tokens").values(), key=lambda r: int(r["id"])):
                active = self.access_active(rec)
                if rec["holder"] != [kind, holder["id"]] or (state == "active" and not active):
                    continue
                if (state == "inactive" and active) or (revoked == "true" and not rec["revoked"]):
                    continue
                if search and search not in rec["name"].lower():
                    continue
                out.append(self.access_view(rec))
        return out

    def _access_token(self, kind: str, holder: Json, token_id: str) -> Json | None:
        rec = self.state.table("access_tokens").get(token_id) if token_id.isdigit() else None
        return rec if rec is not None and rec["holder"] == [kind, holder["id"]] else None

    def get_access_token(self, kind: str, holder: Json, who: Who, token_id: str) -> Json:
        self._may_read_access_tokens(kind, holder, who)
        rec = self._access_token(kind, holder, token_id)
        if rec is None:
            raise message(404, f"404 {kind} Access Token Not Found")
        return self.access_view(rec)

    def revoke_access_token(self, kind: str, holder: Json, who: Who, token_id: str) -> None:
        with self.state.lock:
            rec = self._access_token(kind, holder, token_id)
            if rec is None:
                raise message(404, f"404 {kind} Access Token Not Found")
            if self.role(who.user_id, kind, holder) < self._manage_level(kind):
                bot = self.state.table("users")[str(rec["user_id"])]
                raise bad_request(f"{who.username} cannot delete {bot['name']}")
            rec["revoked"] = True
            self.state.save()

    def rotate_access_token(self, kind: str, holder: Json, who: Who, token_id: str, body: Any) -> Json:
        """``/rotate``: revoke the token at once and create its successor (a new id, same name, scopes, role
        and bot user). Rotating a revoked token revokes every active token of its family."""
        body = body if isinstance(body, dict) else {}
        with self.state.lock:
            rec = self._access_token(kind, holder, token_id)
            if rec is None or self.role(who.user_id, kind, holder) < self._manage_level(kind):
                raise unauthorized()
            if rec["revoked"]:
                for other in self.state.table("access_tokens").values():
                    if other["family"] == rec["family"]:
                        other["revoked"] = True
                self.state.save()
                raise bad_request("Token already revoked")
            expires = self._expiry_date(body.get("expires_at"), default_days=ROTATE_DEFAULT_DAYS)
            rec["revoked"] = True
            new, token = self._new_access_token(
                kind,
                holder,
                rec["user_id"],
                rec["name"],
                rec["description"],
                rec["scopes"],
                rec["access_level"],
                expires,
                family=rec["family"],
                previous=rec["id"],
            )
            self.state.save()
        return self.access_view(new, shown=token)
