"""The Docker Hub fake's logic, independent of HTTP: credentials, access rules, PAT and OAT records, and the
registry tokens its realm issues. Test double only; see ``devstack/fakes/dockerhub/__init__.py``."""

from __future__ import annotations

import fnmatch
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from devstack.fakes.faults import Faults
from devstack.fakes.registry_tokens import now, parse_time, rfc3339
from devstack.fakes.state_base import BaseConfig, FakeBackend, digest

from .state import Identity, State, usable

HUB_AUDIENCE = "hub.docker.com"
HUB_BEARER_TTL = 600  # "This expires in 10 minutes." (AuthCreateTokenResponse)
REGISTRY_TOKEN_TTL = 300
PAT_SCOPES = ("repo:admin", "repo:write", "repo:read", "repo:public_read")
OAT_REPO_SCOPES = ("scope-image-pull", "scope-image-push")

Json = dict[str, Any]


@dataclass
class Config(BaseConfig):
    org: str
    public_repos: list[str] = field(default_factory=list)
    service: str = "registry.docker.io"
    issuer: str = "auth.docker.io"
    pat_bearer_may_manage: bool = True


class HubError(Exception):
    def __init__(self, status: int, message: str, errinfo: Json | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errinfo = errinfo


class Hub(FakeBackend):
    """The fake's logic, independent of HTTP plumbing (request log and minted secrets: `FakeBackend`)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config = config
        self.state = State(config.state_dir / "state.json")
        self.public = {r.lower() for r in config.public_repos}
        self.faults = Faults()  # fault injection (devstack/fakes/faults.py): test-only

    # ---- credentials

    def check_secret(self, identifier: str, secret: str) -> Identity | None:
        """Resolve (identifier, secret) to an identity: the admin secret, an active PAT of the admin user
        (identifier = username) or an active OAT of the org (identifier = org name)."""
        ident = identifier.strip().lower()
        cfg = self.config
        want = digest(secret)
        if ident == cfg.admin_user.lower():
            if secrets.compare_digest(secret.encode(), cfg.admin_secret.encode()):
                return Identity("admin", cfg.admin_user)
            with self.state.lock:
                for rec in self.state.pats.values():
                    if secrets.compare_digest(rec["digest"], want) and usable(rec):
                        # In memory only; the next change of the state saves it. Writing the whole
                        # state file on every login serialised every token request of the sweep benchmark.
                        rec["last_used"] = rfc3339(now())
                        return Identity("pat", cfg.admin_user, rec["uuid"], scopes=list(rec["scopes"]))
        elif ident == cfg.org.lower():
            with self.state.lock:
                for rec in self.state.oats.values():
                    if secrets.compare_digest(rec["digest"], want) and usable(rec):
                        rec["last_used_at"] = rfc3339(now())  # in memory only, as for a PAT
                        return Identity("oat", cfg.org, rec["id"], resources=list(rec["resources"]))
        return None

    def bearer_identity(self, token: str) -> Identity | None:
        claims = self.signer.verify(token, HUB_AUDIENCE)
        if claims is None:
            return None
        src = claims.get("https://hub.docker.com") or {}
        kind, token_id = src.get("source_type"), src.get("source_id", "")
        with self.state.lock:
            if kind == "admin":
                return Identity("admin", self.config.admin_user)
            if kind == "pat":
                rec = self.state.pats.get(token_id)
                if rec and usable(rec):
                    return Identity("pat", self.config.admin_user, token_id, scopes=list(rec["scopes"]))
            if kind == "oat":
                rec = self.state.oats.get(token_id)
                if rec and usable(rec):
                    return Identity("oat", self.config.org, token_id, resources=list(rec["resources"]))
        return None

    def issue_hub_bearer(self, who: Identity) -> str:
        t = int(now().timestamp())
        claims = {
            "iss": "https://fake-login.docker.com/",
            "sub": who.username,
            "aud": HUB_AUDIENCE,
            "iat": t,
            "nbf": t,
            "exp": t + HUB_BEARER_TTL,
            "jti": secrets.token_hex(16),
            "https://hub.docker.com": {
                "username": who.username,
                "source_type": who.kind,
                "source_id": who.token_id,
            },
        }
        return self.signer.sign(claims)

    # ---- registry authorization

    def namespace_of(self, repo: str) -> str:
        return repo.split("/", 1)[0] if "/" in repo else "library"

    def allowed_actions(self, who: Identity, repo: str) -> set[str]:
        repo = repo.lower()
        public = repo in self.public
        ns = self.namespace_of(repo)
        owned = ns in (self.config.admin_user.lower(), self.config.org.lower())
        if who.kind == "anonymous":
            return {"pull"} if public else set()
        if who.kind == "admin":
            if owned:
                return {"pull", "push", "delete"}
            return {"pull", "push"} if public else set()
        if who.kind == "pat":
            level = pat_level(who.scopes)
            acts: set[str] = set()
            if public and level >= 0:
                acts.add("pull")
            if owned and level >= 1:
                acts.add("pull")
            if owned and level >= 2:
                acts.add("push")
            if owned and level >= 3:
                acts.add("delete")
            return acts
        if who.kind == "oat":
            acts = set()
            for res in who.resources:
                if res.get("type") != "TYPE_REPO" or not self.oat_path_matches(
                    res.get("path", ""), repo, public
                ):
                    continue
                for scope in res.get("scopes", []):
                    if scope == "scope-image-pull":
                        acts.add("pull")
                    elif scope == "scope-image-push":
                        acts.update({"pull", "push"})
            return acts
        return set()

    def oat_path_matches(self, path: str, repo: str, public: bool) -> bool:
        path = path.lower()
        org = self.config.org.lower()
        if path == "*/*/public":
            return public
        if path == "*":
            return self.namespace_of(repo) == org
        return fnmatch.fnmatchcase(repo, path) and self.namespace_of(repo) == org

    def registry_token(self, who: Identity, service: str, scopes: Iterable[str]) -> tuple[Json, list[Json]]:
        """Narrowed silently, like a real token server."""
        allowed = partial(self.allowed_actions, who)
        return self.grant_registry_token(who.username, service, scopes, allowed, REGISTRY_TOKEN_TTL)

    # ---- personal access tokens

    def create_pat(self, body: Any, client_ip: str, user_agent: str) -> Json:
        if not isinstance(body, dict):
            raise HubError(400, "request body must be a JSON object")
        label = body.get("token_label")
        if not isinstance(label, str) or not 1 <= len(label) <= 100:
            raise HubError(
                400, "token_label must be a string of 1 to 100 characters", {"field": "token_label"}
            )
        scopes = body.get("scopes")
        if (
            not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) and s in PAT_SCOPES for s in scopes)
        ):
            raise HubError(
                400, f"scopes must be a non-empty list of {', '.join(PAT_SCOPES)}", {"field": "scopes"}
            )
        expires_at = self._expiry(body.get("expires_at"))
        token = "dckr_pat_" + secrets.token_urlsafe(20).replace("-", "A").replace("_", "b")
        rec = {
            "uuid": str(uuid.uuid4()),
            "client_id": "HUB",
            "creator_ip": client_ip,
            "creator_ua": user_agent,
            "created_at": rfc3339(now()),
            "last_used": None,
            "generated_by": "manual",
            "is_active": True,
            "token_label": label,
            "scopes": list(dict.fromkeys(scopes)),
            "expires_at": expires_at,
            "digest": digest(token),
        }
        self.record_minted(token)
        with self.state.lock:
            rec["seq"] = self.state.next_seq()
            self.state.pats[rec["uuid"]] = rec
            self.state.save()
        return self.pat_view(rec, shown=token)

    @staticmethod
    def _expiry(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise HubError(400, "expires_at must be an RFC 3339 date-time", {"field": "expires_at"})
        try:
            when = parse_time(value)
        except ValueError:
            raise HubError(400, "expires_at must be an RFC 3339 date-time", {"field": "expires_at"}) from None
        if when <= now():
            raise HubError(400, "expires_at must be in the future", {"field": "expires_at"})
        return rfc3339(when)

    @staticmethod
    def pat_view(rec: Json, shown: str = "***") -> Json:
        keys = (
            "uuid",
            "client_id",
            "creator_ip",
            "creator_ua",
            "created_at",
            "last_used",
            "generated_by",
            "is_active",
            "token_label",
            "scopes",
            "expires_at",
        )
        view = {k: rec.get(k) for k in keys}
        view["token"] = shown
        return view

    def get_pat(self, token_uuid: str) -> Json:
        rec = self.state.pats.get(token_uuid)
        if rec is None:
            raise HubError(404, "access token not found")
        return rec

    def patch_pat(self, token_uuid: str, body: Any) -> Json:
        if not isinstance(body, dict) or not ({"token_label", "is_active"} & body.keys()):
            raise HubError(400, "body must set token_label and/or is_active")
        with self.state.lock:
            rec = self.get_pat(token_uuid)
            if "token_label" in body:
                label = body["token_label"]
                if not isinstance(label, str) or not 1 <= len(label) <= 100:
                    raise HubError(
                        400, "token_label must be a string of 1 to 100 characters", {"field": "token_label"}
                    )
            if "is_active" in body and not isinstance(body["is_active"], bool):
                raise HubError(400, "is_active must be a boolean", {"field": "is_active"})
            for k in ("token_label", "is_active"):
                if k in body:
                    rec[k] = body[k]
            self.state.save()
            return self.pat_view(rec)

    def delete_pat(self, token_uuid: str) -> None:
        with self.state.lock:
            self.get_pat(token_uuid)
            del self.state.pats[token_uuid]
            self.state.save()

    # ---- organization access tokens

    def check_org(self, name: str) -> None:
        if name.lower() != self.config.org.lower():
            raise HubError(404, f"organization {name!r} not found")

    def _resources(self, value: Any) -> list[Json]:
        if not isinstance(value, list) or not value:
            raise HubError(400, "resources must be a non-empty list", {"field": "resources"})
        org = self.config.org.lower()
        out = []
        for i, res in enumerate(value):
            where = {"field": f"resources[{i}]"}
            if not isinstance(res, dict):
                raise HubError(400, "each resource must be an object", where)
            rtype, path, scopes = res.get("type"), res.get("path"), res.get("scopes")
            if rtype not in ("TYPE_REPO", "TYPE_ORG"):
                raise HubError(400, "type must be TYPE_REPO or TYPE_ORG", where)
            if not isinstance(path, str) or not path:
                raise HubError(400, "path is required", where)
            if (
                not isinstance(scopes, list)
                or not scopes
                or not all(isinstance(s, str) and s for s in scopes)
            ):
                raise HubError(400, "scopes must be a non-empty list of strings", where)
            if rtype == "TYPE_REPO":
                if path not in ("*", "*/*/public") and not path.lower().startswith(org + "/"):
                    raise HubError(400, f"path must name a repository of {self.config.org}", where)
                bad = [s for s in scopes if s not in OAT_REPO_SCOPES]
                if bad:
                    raise HubError(400, f"unknown repository scopes {bad}", where)
            out.append({"type": rtype, "path": path, "scopes": list(dict.fromkeys(scopes))})
        return out

    def create_oat(self, org: str, body: Any, who: Identity) -> Json:
        self.check_org(org)
        if not isinstance(body, dict):
            raise HubError(400, "request body must be a JSON object")
        label = body.get("label")
        if not isinstance(label, str) or not 1 <= len(label) <= 100:
            raise HubError(400, "label must be a string of 1 to 100 characters", {"field": "label"})
        description = body.get("description", "")
        if not isinstance(description, str):
            raise HubError(400, "description must be a string", {"field": "description"})
        resources = self._resources(body.get("resources"))
        expires_at = self._expiry(body.get("expires_at"))
        token = "dckr_oat_" + secrets.token_urlsafe(20).replace("-", "A").replace("_", "b")
        rec = {
            "id": str(uuid.uuid4()),
            "label": label,
            "description": description,
            "created_by": who.username,
            "is_active": True,
            "created_at": rfc3339(now()),
            "expires_at": expires_at,
            "last_used_at": None,
            "resources": resources,
            "digest": digest(token),
        }
        self.record_minted(token)
        with self.state.lock:
            rec["seq"] = self.state.next_seq()
            self.state.oats[rec["id"]] = rec
            self.state.save()
        return {**self.oat_view(rec, resources=True), "token": token}

    @staticmethod
    def oat_view(rec: Json, resources: bool) -> Json:
        keys = [
            "id",
            "label",
            "description",
            "created_by",
            "is_active",
            "created_at",
            "expires_at",
            "last_used_at",
        ]
        if resources:
            keys.append("resources")
        return {k: rec.get(k) for k in keys}

    def get_oat(self, org: str, token_id: str) -> Json:
        self.check_org(org)
        rec = self.state.oats.get(token_id)
        if rec is None:
            raise HubError(404, "access token not found")
        return rec

    def patch_oat(self, org: str, token_id: str, body: Any) -> Json:
        fields = {"label", "description", "resources", "is_active"}
        with self.state.lock:
            rec = self.get_oat(org, token_id)
            if not isinstance(body, dict) or not (fields & body.keys()):
                raise HubError(400, "body must set label, description, resources and/or is_active")
            update: Json = {}
            if "label" in body:
                if not isinstance(body["label"], str) or not 1 <= len(body["label"]) <= 100:
                    raise HubError(400, "label must be a string of 1 to 100 characters", {"field": "label"})
                update["label"] = body["label"]
            if "description" in body:
                if not isinstance(body["description"], str):
                    raise HubError(400, "description must be a string", {"field": "description"})
                update["description"] = body["description"]
            if "resources" in body:
                update["resources"] = self._resources(body["resources"])
            if "is_active" in body:
                if not isinstance(body["is_active"], bool):
                    raise HubError(400, "is_active must be a boolean", {"field": "is_active"})
                update["is_active"] = body["is_active"]
            rec.update(update)
            self.state.save()
            return self.oat_view(rec, resources=True)

    def delete_oat(self, org: str, token_id: str) -> None:
        with self.state.lock:
            self.get_oat(org, token_id)
            del self.state.oats[token_id]
            self.state.save()


def pat_level(scopes: Iterable[str]) -> int:
    """Highest PAT scope as a number: public_read 0, read 1, write 2, admin 3 (-1 for none). Lower scopes
    are implied by higher ones (Hub API, "access-tokens" tag)."""
    order = {"repo:public_read": 0, "repo:read": 1, "repo:write": 2, "repo:admin": 3}
    return max((order.get(s, -1) for s in scopes), default=-1)
