"""The Harbor fake's logic, independent of HTTP: users, projects, robot accounts, who may do what, and the
registry tokens its realm issues. Test double only; see ``devstack/fakes/harbor/__init__.py``."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from devstack.fakes.registry_tokens import now
from devstack.fakes.state_base import BaseConfig, FakeBackend, digest

from .query import ROBOT_SORT_FIELDS, page_params, parse_q, robot_matches, sort_items
from .state import NEVER, HarborError, Identity, State, go_time, usable

Json = dict[str, Any]

ROBOT_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # handler/robot.go validateName
MAX_DURATION = 2**31 - 1  # handler/robot.go isValidDuration: -1, or 0 < d < MaxInt32
DESCRIPTION_MAX = 1024  # robot.description is varchar(1024) (make/migrations 0004_1.8.0_schema.up.sql)
ROLE_IDS = {"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4, "limitedGuest": 5}
# common/rbac/project/rbac_role.go: what each project role may do with robot accounts and repositories.
ROBOT_ACTIONS = {
    "projectAdmin": {"create", "read", "update", "delete", "list"},
    "maintainer": {"read", "list"},
    "developer": {"read", "list"},
    "guest": {"read", "list"},
    "limitedGuest": set(),
}
REPO_ACTIONS = {
    "projectAdmin": {"pull", "push", "delete"},
    "maintainer": {"pull", "push", "delete"},
    "developer": {"pull", "push"},
    "guest": {"pull"},
    "limitedGuest": {"pull"},
}
SECRET_CHARS = string.ascii_letters + string.digits


@dataclass
class Config(BaseConfig):
    projects: list[str] = field(default_factory=lambda: ["acme"])  # private; ids 1, 2, ...
    public_projects: list[str] = field(default_factory=list)  # ids after the private ones
    members: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (password, project role)
    robot_prefix: str = "robot$"
    service: str = "harbor-registry"
    issuer: str = "harbor-token-issuer"
    token_minutes: int = 30  # token_expiration, in minutes (lib/config/metadata/metadatalist.go)


def bad_request(message: str) -> HarborError:
    return HarborError(400, "BAD_REQUEST", message)


def unauthorized() -> HarborError:
    return HarborError(401, "UNAUTHORIZED", "unauthorized")


def forbidden(message: str = "forbidden") -> HarborError:
    return HarborError(403, "FORBIDDEN", message)


def new_secret() -> str:
    """32 letters and digits with at least one upper-case letter, one lower-case letter and one digit (as
    controller/robot CreateSec retries until utils.GenerateRandomString gives one)."""
    while True:
        value = "".join(secrets.choice(SECRET_CHARS) for _ in range(32))
        if valid_secret(value):
            return value


def valid_secret(value: str) -> bool:
    """handler/robot.go isValidSec: at least 8 characters, an upper-case letter, a lower-case one, a digit."""
    return (
        len(value) >= 8
        and re.search("[a-z]", value) is not None
        and re.search("[A-Z]", value) is not None
        and re.search("[0-9]", value) is not None
    )


class Harbor(FakeBackend):
    """The fake's logic, independent of HTTP plumbing (request log and minted secrets: `FakeBackend`)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config = config
        self.state = State(config.state_dir / "state.json")
        created = go_time(now())
        self.projects: list[Json] = [
            {"project_id": i, "name": name, "public": public, "creation_time": created}
            for i, (name, public) in enumerate(
                [(p, False) for p in config.projects] + [(p, True) for p in config.public_projects], start=1
            )
        ]
        self.users: dict[str, tuple[int, str, str]] = {
            config.admin_user: (1, config.admin_secret, "projectAdmin")
        }
        for i, (user, (password, role)) in enumerate(sorted(config.members.items()), start=2):
            if role not in ROLE_IDS:
                raise ValueError(f"unknown project role {role!r}; one of {', '.join(ROLE_IDS)}")
            self.users[user] = (i, password, role)

    # ---- identities

    def authenticate(self, username: str, password: str) -> Identity | None:
        """HTTP Basic credentials as Harbor's security middleware reads them: a name with the robot prefix is
        a robot (its secret must match and it must be enabled and unexpired), anything else a local user.
        None: the request goes on as anonymous."""
        prefix = self.config.robot_prefix
        if username.startswith(prefix):
            stored = username[len(prefix) :]
            with self.state.lock:
                for rec in self.state.robots.values():
                    if rec["name"] == stored:
                        if secrets.compare_digest(rec["digest"], digest(password)) and usable(rec):
                            return Identity("robot", username, robot=dict(rec))
                        return None
            return None
        found = self.users.get(username)
        if found is None or not secrets.compare_digest(found[1].encode(), password.encode()):
            return None
        return Identity("user", username, found[0], found[2])

    def current_user(self, who: Identity) -> Json:
        if who.kind == "anonymous":
            raise unauthorized()
        if who.kind != "user":
            raise HarborError(412, "PRECONDITION", "the current user is not a local user (a robot account)")
        created = self.projects[0]["creation_time"] if self.projects else go_time(now())
        return {
            "user_id": who.user_id,
            "username": who.username,
            "email": f"{who.username}@example.invalid",
            "realname": who.username,
            "comment": "",
            "sysadmin_flag": False,
            "admin_role_in_auth": False,
            "creation_time": created,
            "update_time": created,
        }

    # ---- projects

    def find_project(self, name_or_id: Any, is_name: bool = True) -> Json | None:
        text = str(name_or_id)
        if not is_name and text.isdigit():
            return next((p for p in self.projects if p["project_id"] == int(text)), None)
        return next((p for p in self.projects if p["name"] == text), None)

    def role(self, who: Identity, project: Json | None) -> str | None:
        """A user's role in a project: every user of the fake is a member of every project."""
        return who.role if who.kind == "user" and project is not None else None

    def require(self, who: Identity, allowed: bool) -> None:
        """RequireProjectAccess: 401 for an anonymous caller, 403 for anyone else."""
        if not allowed:
            raise unauthorized() if who.kind == "anonymous" else forbidden()

    def project_view(self, who: Identity, name_or_id: str, is_name: bool) -> Json:
        project = self.find_project(name_or_id, is_name)
        # A project that does not exist is a project without permission (handler/base.go
        # HasProjectPermission): 401/403 for a caller who is not a system administrator, never 404.
        self.require(who, project is not None and (project["public"] or self.role(who, project) is not None))
        assert project is not None
        role = self.role(who, project)
        return {
            "project_id": project["project_id"],
            "owner_id": 1,
            "name": project["name"],
            "registry_id": 0,
            "creation_time": project["creation_time"],
            "update_time": project["creation_time"],
            "deleted": False,
            "owner_name": self.config.admin_user,
            "togglable": role == "projectAdmin",
            "current_user_role_id": ROLE_IDS.get(role or "", 0),
            "current_user_role_ids": [ROLE_IDS[role]] if role else [],
            "repo_count": 0,
            "metadata": {"public": "true" if project["public"] else "false"},
        }

    # ---- who may manage robots

    def may_manage(self, who: Identity, project: Json | None, action: str) -> bool:
        """Robot-account permission ``action`` in ``project``: a user's project role, or (Harbor v2.12+) a
        robot account whose own permissions on its project include resource ``robot`` with that action."""
        if project is None:
            return False
        if who.kind == "user":
            return action in ROBOT_ACTIONS.get(self.role(who, project) or "", set())
        if who.kind == "robot" and who.robot.get("project_id") == project["project_id"]:
            return any(
                acc.get("resource") == "robot" and acc.get("action") in (action, "*")
                for perm in who.robot.get("permissions", [])
                for acc in perm.get("access", [])
            )
        return False

    def _require_robot_access(self, who: Identity, level: str, project: Json | None, action: str) -> None:
        if who.kind == "anonymous":
            raise unauthorized()
        if level != "project":
            raise forbidden(who.username)  # system level: system administrators only, and the fake has none
        self.require(who, self.may_manage(who, project, action))

    # ---- robots

    def full_name(self, rec: Json) -> str:
        return self.config.robot_prefix + str(rec["name"])

    def robot_view(self, rec: Json) -> Json:
        """A robot as GET /robots and GET /robots/{id} show it (models.Robot; never its secret)."""
        project = self.find_project(rec["project_id"], is_name=False)
        namespace = project["name"] if project else ""
        return {
            "id": rec["id"],
            "name": self.full_name(rec),
            "description": rec["description"],
            "level": rec["level"],
            "duration": rec["duration"],
            "editable": True,
            "disable": bool(rec["disable"]),
            "expires_at": rec["expires_at"],
            "permissions": [
                {"kind": p["kind"], "namespace": namespace, "access": p["access"]} for p in rec["permissions"]
            ],
            "creator_type": rec.get("creator_type", "local"),
            "creator_ref": rec.get("creator_ref", 0),
            "creation_time": rec["creation_time"],
            "update_time": rec["update_time"],
        }

    @staticmethod
    def _check_robot_body(body: Any) -> tuple[int, str, list[Json]]:
        """handler/robot.go validate: duration, level, permissions (400 for each)."""
        if not isinstance(body, dict):
            raise bad_request("the robot must be a JSON object")
        duration = body.get("duration", 0)
        if isinstance(duration, bool) or not isinstance(duration, int):
            raise bad_request("duration must be an integer")
        if not (duration == NEVER or 0 < duration < MAX_DURATION):
            raise bad_request(
                f"bad request error duration input: {duration}, duration must be either -1(Never) or a "
                "positive integer"
            )
        level = body.get("level", "")
        if level not in ("system", "project"):
            raise bad_request(f"bad request error level input: {level}")
        permissions = body.get("permissions")
        if not isinstance(permissions, list) or not permissions:
            raise bad_request("bad request empty permission")
        for perm in permissions:
            if not isinstance(perm, dict) or not isinstance(perm.get("access"), list) or not perm["access"]:
                raise bad_request("bad request empty access")
            for acc in perm["access"]:
                if not isinstance(acc, dict) or not all(
                    isinstance(acc.get(k), str) and acc[k] for k in ("resource", "action")
                ):
                    raise bad_request("bad request empty access")
        if level == "project" and (len(permissions) > 1 or permissions[0].get("kind") != "project"):
            raise bad_request("bad request permission")
        return duration, level, permissions

    @staticmethod
    def _access(permissions: list[Json]) -> list[Json]:
        return [
            {k: acc[k] for k in ("resource", "action", "effect") if isinstance(acc.get(k), str)}
            for acc in permissions[0]["access"]
        ]

    def create_robot(self, who: Identity, body: Any) -> tuple[Json, str]:
        """POST /robots: (RobotCreated, Location). The order of checks is handler/robot.go CreateRobot's."""
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or ROBOT_NAME_RE.fullmatch(name) is None:
            raise bad_request("robot name is not in lower case or contains illegal characters")
        duration, level, permissions = self._check_robot_body(body)
        namespace = permissions[0].get("namespace")
        project = self.find_project(namespace) if isinstance(namespace, str) else None
        self._require_robot_access(who, level, project, "create")
        assert project is not None
        access = self._access(permissions)
        if who.kind == "robot":
            mine = {
                (a.get("resource"), a.get("action")) for p in who.robot["permissions"] for a in p["access"]
            }
            if not all((a["resource"], a["action"]) in mine for a in access):
                raise HarborError(
                    403,
                    "DENIED",
                    "permission scope is invalid. It must be equal to or more restrictive than the creator "
                    f"robot's permissions: {who.username}",
                )
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise bad_request("description must be a string")
        if len(description) > DESCRIPTION_MAX:
            # The column is varchar(1024): the database refuses the row, which Harbor reports as a 500.
            raise HarborError(500, "UNKNOWN", "internal server error")
        stored = f"{project['name']}+{name}"
        secret = new_secret()
        created = now()
        with self.state.lock:
            for rec in self.state.robots.values():
                if rec["name"] == stored and rec["project_id"] == project["project_id"]:
                    raise HarborError(
                        409, "CONFLICT", f"robot account {project['project_id']}:{stored} already exists"
                    )
            robot_id = self.state.next_seq()
            rec = {
                "id": robot_id,
                "name": stored,
                "description": description,
                "level": "project",
                "project_id": project["project_id"],
                "duration": duration,
                "expires_at": NEVER
                if duration == NEVER
                else int((created + dt.timedelta(days=duration)).timestamp()),
                "disable": False,
                "permissions": [{"kind": "project", "namespace": project["name"], "access": access}],
                "creator_type": "robot" if who.kind == "robot" else "local",
                "creator_ref": int(who.robot["id"]) if who.kind == "robot" else who.user_id,
                "creation_time": go_time(created),
                "update_time": go_time(created),
                "digest": digest(secret),
            }
            self.record_minted(secret)
            self.state.robots[str(robot_id)] = rec
            self.state.save()
        view = {
            "id": robot_id,
            "name": self.full_name(rec),
            "secret": secret,
            "creation_time": rec["creation_time"],
            "expires_at": rec["expires_at"],
        }
        return view, f"/api/v2.0/robots/{robot_id}"

    def list_robots(self, who: Identity, query: dict[str, list[str]]) -> tuple[list[Json], int, int, int]:
        """GET /robots: (page of robots, total, page, page_size); handler/robot.go ListRobot."""
        if who.kind == "anonymous":
            raise unauthorized()
        page, size = page_params(query)
        terms = parse_q((query.get("q") or [""])[-1])
        level_term = terms.pop("Level", None)
        project_term = terms.pop("ProjectID", None)
        if level_term is None:
            level = "system"
        elif level_term.kind != "exact" or level_term.values[0] not in ("system", "project"):
            raise bad_request("bad request error level input")
        else:
            level = level_term.values[0]
        project = None
        if level == "project":
            if project_term is None:
                raise bad_request("must with project ID when to query project robots")
            raw = project_term.values[0] if project_term.kind == "exact" else ""
            if not raw.isdigit() or int(raw) <= 0:
                raise bad_request("ProjectID must be a positive integer")
            project = self.find_project(raw, is_name=False)
        self._require_robot_access(who, level, project, "list")
        assert project is not None
        with self.state.lock:
            found = [
                dict(r)
                for r in self.state.robots.values()
                if r["project_id"] == project["project_id"] and robot_matches(r, terms.values())
            ]
        sort_items(found, (query.get("sort") or [""])[-1], ROBOT_SORT_FIELDS, "name")
        start = (page - 1) * size
        return [self.robot_view(r) for r in found[start : start + size]], len(found), page, size

    def _robot(self, who: Identity, robot_id: str) -> Json:
        if who.kind == "anonymous":
            raise unauthorized()
        if not re.fullmatch(r"-?[0-9]{1,19}", robot_id):
            raise HarborError(
                422, "UNPROCESSABLE_ENTITY", f"robot_id in path must be of type int64: {robot_id!r}"
            )
        rec = self.state.robots.get(str(int(robot_id)))
        if rec is None:
            raise HarborError(404, "NOT_FOUND", f"robot {int(robot_id)} not found")
        return rec

    def get_robot(self, who: Identity, robot_id: str) -> Json:
        with self.state.lock:
            rec = self._robot(who, robot_id)
            project = self.find_project(rec["project_id"], is_name=False)
            self._require_robot_access(who, rec["level"], project, "read")
            return self.robot_view(rec)

    def update_robot(self, who: Identity, robot_id: str, body: Any) -> None:
        """PUT /robots/{id}: the full Robot; name and level cannot change (handler/robot.go updateV2Robot)."""
        with self.state.lock:
            rec = self._robot(who, robot_id)
            duration, level, permissions = self._check_robot_body(body)
            namespace = permissions[0].get("namespace")
            project = self.find_project(namespace) if isinstance(namespace, str) else None
            self._require_robot_access(who, level, project, "update")
            if level != rec["level"] or body.get("name") != self.full_name(rec):
                raise bad_request("cannot update the level or name of robot")
            if project is None or project["project_id"] != rec["project_id"]:
                raise bad_request("bad request permission")
            description = body.get("description") or ""
            if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
                raise bad_request("description must be a string of at most 1024 characters")
            if duration != rec["duration"]:
                rec["duration"] = duration
                created = dt.datetime.fromisoformat(rec["creation_time"].replace("Z", "+00:00"))
                rec["expires_at"] = (
                    NEVER if duration == NEVER else int((created + dt.timedelta(days=duration)).timestamp())
                )
            rec["description"] = description
            rec["disable"] = bool(body.get("disable", False))
            rec["permissions"] = [
                {"kind": "project", "namespace": project["name"], "access": self._access(permissions)}
            ]
            rec["update_time"] = go_time(now())
            self.state.save()

    def refresh_secret(self, who: Identity, robot_id: str, body: Any) -> Json:
        """PATCH /robots/{id} {"secret": ""}: a new secret, returned once; a supplied one is stored and the
        answer's secret is empty (handler/robot.go RefreshSec). The old secret stops working at once."""
        with self.state.lock:
            rec = self._robot(who, robot_id)
            project = self.find_project(rec["project_id"], is_name=False)
            self._require_robot_access(who, rec["level"], project, "update")
            given = body.get("secret", "") if isinstance(body, dict) else None
            if not isinstance(given, str):
                raise bad_request("the robot secret must be a JSON object with a string secret")
            if given and not valid_secret(given):
                raise bad_request(
                    "the secret must longer than 8 chars with at least 1 uppercase letter, 1 lowercase "
                    "letter and 1 number"
                )
            secret = given or new_secret()
            if not given:
                self.record_minted(secret)
            rec["digest"] = digest(secret)
            rec["update_time"] = go_time(now())
            self.state.save()
        return {} if given else {"secret": secret}

    def delete_robot(self, who: Identity, robot_id: str) -> None:
        with self.state.lock:
            rec = self._robot(who, robot_id)
            project = self.find_project(rec["project_id"], is_name=False)
            self._require_robot_access(who, rec["level"], project, "delete")
            del self.state.robots[str(rec["id"])]
            self.state.save()

    # ---- registry authorization (core/service/token)

    def allowed_actions(self, who: Identity, repo: str) -> set[str]:
        project = self.find_project(repo.split("/", 1)[0]) if "/" in repo else None
        if project is None:
            return set()
        acts = {"pull"} if project["public"] else set()
        if who.kind == "user":
            acts |= REPO_ACTIONS.get(self.role(who, project) or "", set())
        elif who.kind == "robot" and who.robot.get("project_id") == project["project_id"]:
            for perm in who.robot.get("permissions", []):
                for acc in perm.get("access", []):
                    if acc.get("resource") == "repository":
                        action = acc.get("action")
                        acts |= {"pull", "push", "delete"} if action == "*" else {str(action)}
        return acts & {"pull", "push", "delete"}

    def registry_token(self, who: Identity, service: str, scopes: Iterable[str]) -> tuple[Json, list[Json]]:
        """Harbor keeps a requested resource with the actions it may not have removed (authutils.go)."""
        subject = who.username if who.kind != "anonymous" else ""
        allowed = partial(self.allowed_actions, who)
        ttl = self.config.token_minutes * 60
        return self.grant_registry_token(subject, service, scopes, allowed, ttl, keep_denied=True)
