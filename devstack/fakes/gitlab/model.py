"""The GitLab fake's logic, independent of HTTP: users, groups, projects, memberships, deploy tokens,
project and group access tokens, and the registry tokens of its ``/jwt/auth`` realm. Test double only; see
``devstack/fakes/gitlab/__init__.py`` for the documented behaviour it follows."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from functools import partial
from typing import Any

from devstack.fakes.registry_tokens import now, parse_time
from devstack.fakes.state_base import digest

from .access import AccessTokens
from .state import (
    DEVELOPER,
    MAINTAINER,
    OWNER,
    REPORTER,
    ROLES,
    Config,
    Json,
    State,
    Who,
    forbidden,
    insufficient_scope,
    message,
    midnight,
    param_error,
    required,
    rfc3339_ms,
    today,
)

DEPLOY_SCOPES = (
    "read_repository",
    "read_registry",
    "write_registry",
    "read_package_registry",
    "write_package_registry",
    "read_virtual_registry",
    "write_virtual_registry",
)
REGISTRY_TOKEN_TTL = 300  # container_registry_token_expire_delay: 5 minutes by default


def _deploy_username_ok(username: str) -> bool:
    return 0 < len(username) <= 255 and all(c.isascii() and (c.isalnum() or c in "._+-") for c in username)


class GitLab(AccessTokens):
    """The fake instance: one admin user who holds a role on every configured group."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config = config
        self.state = State(config.state_dir / "state.json")
        with self.state.lock:
            users = self.state.table("users")
            if "1" not in users:
                self.state.insert(
                    "users", {"username": config.admin_user, "name": "GitLab Admin", "bot": False}
                )
            self.admin = users["1"]
            for path in config.projects:
                self._ensure_project(path, "private")
            for path in config.public_projects:
                self._ensure_project(path, "public")
            self.state.save()

    # ---- groups, projects, roles

    def _ensure_group(self, full_path: str) -> Json:
        found = self._by_path("groups", "full_path", full_path)
        if found is not None:
            return found
        parent_path, _, name = full_path.rpartition("/")
        parent = self._ensure_group(parent_path) if parent_path else None
        group = self.state.insert(
            "groups",
            {
                "name": name,
                "path": name,
                "full_path": full_path,
                "parent_id": parent["id"] if parent else None,
                "visibility": "private",
            },
        )
        if parent is None:
            level = ROLES[self.config.admin_role]
            self.state.insert(
                "members", {"user_id": 1, "source": "group", "source_id": group["id"], "level": level}
            )
        return group

    def _ensure_project(self, path: str, visibility: str) -> Json:
        found = self._by_path("projects", "path_with_namespace", path)
        if found is not None:
            return found
        namespace, _, name = path.rpartition("/")
        if not namespace:
            raise ValueError(f"project {path!r} needs a group: GROUP/PROJECT")
        group = self._ensure_group(namespace)
        return self.state.insert(
            "projects",
            {
                "name": name,
                "path": name,
                "path_with_namespace": path,
                "namespace_id": group["id"],
                "visibility": visibility,
            },
        )

    def _by_path(self, table: str, key: str, value: str) -> Json | None:
        wanted = value.lower()
        return next((r for r in self.state.table(table).values() if str(r[key]).lower() == wanted), None)

    def find(self, kind: str, ident: str) -> Json | None:
        """A project or group by numeric id or full path (case-insensitive)."""
        table, key = ("projects", "path_with_namespace") if kind == "project" else ("groups", "full_path")
        if ident.isdigit():
            return self.state.table(table).get(str(int(ident)))
        return self._by_path(table, key, ident)

    def ancestors(self, group: Json) -> list[Json]:
        chain = [group]
        while chain[-1]["parent_id"] is not None:
            chain.append(self.state.table("groups")[str(chain[-1]["parent_id"])])
        return chain

    def group_of(self, project: Json) -> Json:
        return self.state.table("groups")[str(project["namespace_id"])]

    def role(self, user_id: int, kind: str, record: Json) -> int:
        """The user's highest role on a project or group, inherited from every ancestor group."""
        sources = [
            ("group", g["id"]) for g in self.ancestors(record if kind == "group" else self.group_of(record))
        ]
        if kind == "project":
            sources.append(("project", record["id"]))
        levels = [
            m["level"]
            for m in self.state.table("members").values()
            if m["user_id"] == user_id and (m["source"], m["source_id"]) in sources
        ]
        return max(levels, default=0)

    def projects_under(self, group: Json) -> list[Json]:
        return [p for p in self.state.table("projects").values() if group in self.ancestors(self.group_of(p))]

    def holder(self, kind: str, ident: str, who: Who | None) -> Json:
        """The project or group a path names, as the caller may see it (404 otherwise)."""
        record = self.find(kind, ident)
        visible = record is not None and (
            record["visibility"] == "public" or (who is not None and self.role(who.user_id, kind, record) > 0)
        )
        if record is None or not visible:
            raise message(404, f"404 {kind.capitalize()} Not Found")
        return record

    def project_view(self, project: Json) -> Json:
        group = self.group_of(project)
        return {
            "id": project["id"],
            "name": project["name"],
            "path": project["path"],
            "path_with_namespace": project["path_with_namespace"],
            "name_with_namespace": project["path_with_namespace"].replace("/", " / "),
            "visibility": project["visibility"],
            "web_url": f"https://{self.config.web_host}/{project['path_with_namespace']}",
            "container_registry_enabled": True,
            "namespace": {
                "id": group["id"],
                "name": group["name"],
                "path": group["path"],
                "kind": "group",
                "full_path": group["full_path"],
            },
        }

    def group_view(self, group: Json) -> Json:
        keys = ("id", "name", "path", "full_path", "parent_id", "visibility")
        return {
            **{k: group[k] for k in keys},
            "web_url": f"https://{self.config.web_host}/groups/{group['full_path']}",
        }

    def user_view(self, user: Json) -> Json:
        return {
            "id": user["id"],
            "username": user["username"],
            "name": user["name"],
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"https://{self.config.web_host}/{user['username']}",
            "bot": bool(user.get("bot")),
        }

    # ---- API authentication

    def api_identity(self, token: str) -> Who | None:
        """Who a PRIVATE-TOKEN (or Bearer) is: the admin's PAT, or an active access token; None otherwise
        (deploy tokens do not authenticate the API)."""
        if secrets.compare_digest(token.encode(), self.config.admin_secret.encode()):
            return Who("admin", self.admin["username"], 1, ["api"])
        rec = self._token_by_secret("access_tokens", token)
        if rec is None or not self.access_active(rec):
            return None
        bot = self.state.table("users")[str(rec["user_id"])]
        return Who("bot", bot["username"], bot["id"], list(rec["scopes"]), rec)

    @staticmethod
    def require_scope(who: Who, method: str) -> None:
        allowed = {"api", "read_api"} if method == "GET" else {"api"}
        if not allowed & set(who.scopes):
            raise insufficient_scope()

    def _token_by_secret(self, table: str, secret: str) -> Json | None:
        want = digest(secret)
        return next(
            (r for r in self.state.table(table).values() if secrets.compare_digest(r["digest"], want)), None
        )

    # ---- deploy tokens

    @staticmethod
    def deploy_active(rec: Json) -> bool:
        """DeployToken.active: not revoked and ``expires_at >= NOW()`` (no expiry: forever)."""
        return not rec["revoked"] and (rec["expires_at"] is None or parse_time(rec["expires_at"]) >= now())

    def _deploy_permission(self, kind: str, holder: Json, who: Who, write: bool) -> None:
        needed = OWNER if kind == "group" and write else MAINTAINER
        if self.role(who.user_id, kind, holder) < needed:
            raise forbidden()

    def deploy_view(self, rec: Json, shown: str | None = None) -> Json:
        expires = rec["expires_at"]
        view = {
            "id": rec["id"],
            "name": rec["name"],
            "username": rec["username"] or f"gitlab+deploy-token-{rec['id']}",
            "expires_at": expires,
            "revoked": rec["revoked"],
            "expired": expires is not None and parse_time(expires).date() < today(),
            "scopes": list(rec["scopes"]),
        }
        if shown is not None:
            view["token"] = shown
        return view

    def create_deploy_token(self, kind: str, holder: Json, who: Who, body: Any) -> Json:
        self._deploy_permission(kind, holder, who, write=True)
        body, (name, scopes) = required(body, "name", "scopes")
        if isinstance(scopes, str):
            scopes = [s.strip() for s in scopes.split(",") if s.strip()]  # CommaSeparatedToArray
        if not isinstance(name, str) or not isinstance(scopes, list):
            raise param_error("name is invalid, scopes is invalid")
        if any(s not in DEPLOY_SCOPES for s in scopes):
            raise param_error("scopes does not have a valid value")
        problems = []
        if len(name) > 255:
            problems.append("Name is too long (maximum is 255 characters)")
        username = body.get("username") or None
        if username is not None and (not isinstance(username, str) or not _deploy_username_ok(username)):
            problems.append("Username can contain only letters, digits, '_', '-', '+', and '.'")
        if not scopes:
            problems.append("Scopes can't be blank")
        expires = body.get("expires_at") or None
        if expires is not None:
            try:
                expires = rfc3339_ms(parse_time(expires) if "T" in str(expires) else midnight(str(expires)))
            except (ValueError, TypeError):
                raise param_error("expires_at is invalid") from None
        if problems:
            raise message(400, " and ".join(problems))
        token = "gldt-" + secrets.token_urlsafe(15)
        self.record_minted(token)
        with self.state.lock:
            rec = self.state.insert(
                "deploy_tokens",
                {
                    "name": name,
                    "username": username,
                    "expires_at": expires,
                    "revoked": False,
                    "scopes": list(dict.fromkeys(scopes)),
                    "holder": [kind, holder["id"]],
                    "creator_id": who.user_id,
                    "digest": digest(token),
                },
            )
            self.state.save()
        return self.deploy_view(rec, shown=token)

    def deploy_tokens(self, kind: str, holder: Json, who: Who, active_only: bool) -> list[Json]:
        self._deploy_permission(kind, holder, who, write=False)
        with self.state.lock:
            recs = [
                r
                for r in self.state.table("deploy_tokens").values()
                if r["holder"] == [kind, holder["id"]] and (not active_only or self.deploy_active(r))
            ]
            return [self.deploy_view(r) for r in sorted(recs, key=lambda r: int(r["id"]))]

    def _deploy_token(self, kind: str, holder: Json, token_id: str) -> Json:
        rec = self.state.table("deploy_tokens").get(token_id) if token_id.isdigit() else None
        if rec is None or rec["holder"] != [kind, holder["id"]]:
            raise message(404, "404 Not found")
        return rec

    def get_deploy_token(self, kind: str, holder: Json, who: Who, token_id: str) -> Json:
        self._deploy_permission(kind, holder, who, write=False)
        return self.deploy_view(self._deploy_token(kind, holder, token_id))

    def delete_deploy_token(self, kind: str, holder: Json, who: Who, token_id: str) -> None:
        self._deploy_permission(kind, holder, who, write=True)
        with self.state.lock:
            rec = self._deploy_token(kind, holder, token_id)
            del self.state.table("deploy_tokens")[str(rec["id"])]
            self.state.save()

    # ---- registry realm

    def registry_identity(self, login: str, password: str) -> Who | None:
        """Who HTTP Basic credentials are at /jwt/auth: the admin's PAT or an access token (any non-blank
        username), or a deploy token (username must equal the token's exactly)."""
        if not password:
            return None
        if secrets.compare_digest(password.encode(), self.config.admin_secret.encode()):
            return Who("admin", self.admin["username"], 1, ["api"]) if login.strip() else None
        with self.state.lock:
            rec = self._token_by_secret("access_tokens", password)
            if rec is not None and self.access_active(rec) and login.strip():
                bot = self.state.table("users")[str(rec["user_id"])]
                rec["last_used_at"] = rfc3339_ms(now())
                self.state.save()
                return Who("access_token", bot["username"], bot["id"], list(rec["scopes"]), rec)
            rec = self._token_by_secret("deploy_tokens", password)
            if rec is not None and self.deploy_active(rec):
                username = self.deploy_view(rec)["username"]
                if login == username:
                    return Who("deploy_token", username, 0, list(rec["scopes"]), rec)
        return None

    def project_of(self, repository: str) -> Json | None:
        """The project a registry repository belongs to: the longest project path it starts with."""
        repo = repository.lower()
        best = None
        for project in self.state.table("projects").values():
            path = project["path_with_namespace"].lower()
            if (repo == path or repo.startswith(path + "/")) and (
                best is None or len(path) > len(best["path_with_namespace"])
            ):
                best = project
        return best

    def allowed_actions(self, who: Who, repository: str) -> set[str]:
        project = self.project_of(repository)
        if project is None:
            return set()
        public = {"pull"} if project["visibility"] == "public" else set()
        if who.kind == "anonymous":
            return public
        scopes = set(who.scopes)
        can_read = bool(scopes & {"api", "read_registry"})
        can_write = bool(scopes & {"api", "write_registry"})
        if who.kind == "deploy_token":
            kind, holder_id = who.token["holder"] if who.token else ("", 0)
            if kind == "project":
                covered = project["id"] == holder_id
            else:
                covered = any(g["id"] == holder_id for g in self.ancestors(self.group_of(project)))
            acts = ({"pull"} if can_read else set()) | ({"push"} if can_write else set())
            return (acts if covered else set()) | (public if can_read else set())
        level = self.role(who.user_id, "project", project)
        acts = set(public) if can_read else set()
        if can_read and level >= REPORTER:
            acts.add("pull")
        if can_write and level >= DEVELOPER:
            acts.add("push")
        if who.kind == "admin" and level >= MAINTAINER:
            acts.add("delete")
        return acts

    def registry_token(self, who: Who, service: str, scopes: Iterable[str]) -> tuple[Json, list[Json]]:
        """Narrowed silently."""
        allowed = partial(self.allowed_actions, who)
        return self.grant_registry_token(who.username, service, scopes, allowed, REGISTRY_TOKEN_TTL)
