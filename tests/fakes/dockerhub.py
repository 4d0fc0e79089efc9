"""A Docker Hub fake for the local stack: the Hub API for access tokens, and the registry's token realm.

Test double only (it lives under tests/ and is never shipped). It is a real HTTP server on 127.0.0.1:

    python -m tests.fakes.dockerhub --port P --state-dir D --admin-user acme --org acmecorp \\
        --public library/public --key signing.key --cert signing.crt

The admin secret comes from ``--admin-secret`` or, to keep it out of ``ps``, from the environment
variable ``FAKE_DOCKERHUB_ADMIN_SECRET``.

Docker Hub API (https://hub.docker.com), as documented at docs.docker.com/reference/api/hub/latest:

- ``POST /v2/auth/token`` {"identifier","secret"} -> 200 {"access_token"} (a JWT that lives 10 minutes),
  401 otherwise.  operations/AuthCreateAccessToken, schemas/AuthCreateTokenResponse.
  The identifier is the username for the admin secret or a PAT, the organization name for an OAT.
- ``POST /v2/access-tokens`` -> 201 accessToken (``token`` shown only here); 400, 401.
  operations/postV2AccessTokens, schemas/createAccessTokenRequest (token_label 1..100 chars; scopes
  repo:admin|repo:write|repo:read|repo:public_read; optional expires_at), schemas/accessToken.
- ``GET /v2/access-tokens?page=&page_size=`` -> {"count","active_count","next","previous","results"},
  tokens redacted as "***"; page defaults to 1, page_size to 10.  operations/getV2AccessTokens,
  schemas/getAccessTokensResponse.
- ``GET|PATCH|DELETE /v2/access-tokens/{uuid}`` -> 200 / 200 / 204; 404 for an unknown uuid.
  operations/getV2AccessTokensByUuid, patchV2AccessTokensByUuid (token_label, is_active),
  deleteV2AccessTokensByUuid.
- ``POST|GET /v2/orgs/{name}/access-tokens`` and ``GET|PATCH|DELETE /v2/orgs/{name}/access-tokens/{id}``
  -> 201 createOrgAccessTokenResponse (``token`` = "dckr_oat_..." only here), list {"total","next",
  "previous","results"}, getOrgAccessTokenResponse, updateOrgAccessTokenResponse, 204; 400, 401, 403, 404.
  operations/postV2OrgsByNameAccessTokens, getV2OrgsByNameAccessTokens, and the
  ``/v2/orgs/{org_name}/access-tokens/{access_token_id}`` operations; schemas/createOrgAccessTokenRequest,
  orgAccessTokenResource (TYPE_REPO paths "org/repo", globs like "org/*", "*/*/public" for every public
  repository; this fake also takes "*" for every repository of the org), orgAccessToken.
  Organization access tokens are managed by organization owners (security/access-tokens/
  organization-access-tokens); here the admin user is the only owner of the configured org.
- Error bodies follow schemas/error: {"message", "errinfo", "detail"}.  Every call needs
  ``Authorization: Bearer <access_token>`` except /v2/auth/token (401 without).
- PAT permissions per security/access-tokens/reference: public_read pulls public repositories only;
  read adds private repositories the account can access; write adds push; admin adds delete.

Registry token realm (as auth.docker.io does; docs.docker.com/reference/api/registry/auth):

- ``GET /token?service=..&scope=repository:NAME:pull&scope=..&account=..`` with HTTP Basic
  (username + admin secret, PAT, or org name + OAT) or no credentials (anonymous) ->
  200 {"token","access_token","expires_in":300,"issued_at"}; a bad, revoked, inactive or expired
  credential -> 401 {"details":"incorrect username or password"}.  Scopes the identity may not have are
  dropped silently (the token is narrowed), so a 200 here proves nothing by itself.
- The token is what the CNCF distribution registry 2.8 accepts: RS256, header ``x5c`` (standard base64
  DER of the stack's self-signed certificate, which is the registry's rootcertbundle) and ``kid`` (libtrust
  fingerprint), claims iss, sub, aud (a string: the service), exp, nbf, iat, jti, access.

Pages followed (https://docs.docker.com/...):

- reference/api/hub/latest/ (overview: authentication types, PAT scope implication) and its OpenAPI
  source reference/api/hub/latest.yaml
- reference/api/hub/latest/operations/AuthCreateAccessToken, postV2AccessTokens, getV2AccessTokens,
  getV2AccessTokensByUuid, patchV2AccessTokensByUuid, deleteV2AccessTokensByUuid,
  postV2OrgsByNameAccessTokens, getV2OrgsByNameAccessTokens (and the get/patch/delete operations of
  /v2/orgs/{org_name}/access-tokens/{access_token_id})
- reference/api/hub/latest/schemas/AuthCreateTokenResponse, accessToken, createAccessTokenRequest,
  createAccessTokensResponse, getAccessTokensResponse, createOrgAccessTokenRequest, orgAccessToken,
  orgAccessTokenResource, getOrgAccessTokensResponse, getOrgAccessTokenResponse, error
- security/access-tokens/reference, security/access-tokens/organization-access-tokens
- reference/api/registry/auth (token realm request and response)

Fake-only conventions (not Docker Hub behaviour):

- One user (the admin, given on the command line) who owns one org.  The admin secret is a bootstrap
  credential (password-like): it is not listed under /v2/access-tokens.
- Repositories named with ``--public`` are public; every other repository is private.  The admin secret
  may push to them (a stand-in for their publisher), so the stack can seed them.
- Whether a bearer obtained with a PAT may manage access tokens is not documented; ``--pat-bearer``
  ``allow`` (default) lets it, ``deny`` answers 403.  Bearers from OATs may not manage tokens (403).
- An OAT pulls only what its resources name; public repositories only through "*/*/public".
- A Hub bearer obtained with a PAT or OAT stops working as soon as that token is deleted or disabled.
- State (tokens stored as SHA-256 digests, never in clear) is ``<state-dir>/state.json``; every request
  is appended to ``<state-dir>/requests.jsonl`` with method, path, query keys, whether an Authorization
  header came, its scheme, the authenticated identity (``admin:USER``, ``pat:USER:UUID``,
  ``oat:ORG:ID``, ``anonymous``; ``auth_failed`` when a credential was refused) and the status, plus for
  /token the scopes asked for and granted -- never a secret.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime as dt
import fnmatch
import hashlib
import json
import os
import re
import secrets
import signal
import sys
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

HUB_AUDIENCE = "hub.docker.com"
HUB_BEARER_TTL = 600  # "This expires in 10 minutes." (AuthCreateTokenResponse)
REGISTRY_TOKEN_TTL = 300
PAT_SCOPES = ("repo:admin", "repo:write", "repo:read", "repo:public_read")
OAT_REPO_SCOPES = ("scope-image-pull", "scope-image-push")
MAX_PAGE_SIZE = 100
SECRET_ENV = "FAKE_DOCKERHUB_ADMIN_SECRET"

Json = dict[str, Any]


# --------------------------------------------------------------------------------------------- time


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> dt.datetime:
    """Parse an RFC 3339 date-time; raise ValueError when it is not one (a timezone is required)."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timezone required")
    return parsed


# ------------------------------------------------------------------------------------------ signing


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key ID the distribution registry computes: SHA-256 of the DER SubjectPublicKeyInfo, first 30
    bytes, base32 without padding, in 12 groups of 4 joined by ':'."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def ensure_signing_material(key_path: Path, cert_path: Path, common_name: str = "regcred-stack") -> None:
    """Create an RSA key and a self-signed certificate (the registry's rootcertbundle) unless both exist."""
    if key_path.exists() and cert_path.exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = now() - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Signer:
    """Signs and verifies RS256 JWTs with the stack's key."""

    def __init__(self, key_path: Path, cert_path: Path) -> None:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path}: not an RSA private key")
        self._key = key
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        self.kid = libtrust_key_id(key.public_key())

    def sign(self, claims: Json) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5c": [self.x5c]}
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def verify(self, token: str, audience: str) -> Json | None:
        """Return the claims of a token this signer issued for ``audience`` and still valid, else None."""
        try:
            head_b64, claims_b64, sig_b64 = token.split(".")
            header = json.loads(b64url_decode(head_b64))
            if header.get("alg") != "RS256":
                return None
            self._key.public_key().verify(
                b64url_decode(sig_b64),
                f"{head_b64}.{claims_b64}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(b64url_decode(claims_b64))
        except Exception:  # malformed or forged: the caller answers 401
            return None
        t = int(now().timestamp())
        if not isinstance(claims, dict) or claims.get("aud") != audience:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= t:
            return None
        if isinstance(claims.get("nbf"), int) and claims["nbf"] > t + 60:
            return None
        return claims


# -------------------------------------------------------------------------------------------- state


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Identity:
    """Who a credential is: ``kind`` is admin, pat, oat or anonymous."""

    kind: str
    username: str = ""
    token_id: str = ""
    scopes: list[str] = field(default_factory=list)  # PAT scopes
    resources: list[Json] = field(default_factory=list)  # OAT resources

    def label(self) -> str:
        if self.kind == "anonymous":
            return "anonymous"
        return f"{self.kind}:{self.username}" + (f":{self.token_id}" if self.token_id else "")


class State:
    """Tokens of the one user and its org, persisted as JSON (secrets only as SHA-256 digests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: Json = {"seq": 0, "pats": {}, "oats": {}}
        if path.exists():
            self.data.update(json.loads(path.read_text()))

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)

    def next_seq(self) -> int:
        self.data["seq"] += 1
        return int(self.data["seq"])

    @property
    def pats(self) -> dict[str, Json]:
        return self.data["pats"]  # type: ignore[no-any-return]

    @property
    def oats(self) -> dict[str, Json]:
        return self.data["oats"]  # type: ignore[no-any-return]


def usable(record: Json) -> bool:
    """Active and not expired."""
    if not record.get("is_active"):
        return False
    expires = record.get("expires_at")
    return not (expires and parse_time(expires) <= now())


# ------------------------------------------------------------------------------------------- server


@dataclass
class Config:
    state_dir: Path
    admin_user: str
    admin_secret: str
    org: str
    key_path: Path
    cert_path: Path
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


class Hub:
    """The fake's logic, independent of HTTP plumbing."""

    def __init__(self, config: Config) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        ensure_signing_material(config.key_path, config.cert_path)
        self.signer = Signer(config.key_path, config.cert_path)
        self.state = State(config.state_dir / "state.json")
        self.log_path = config.state_dir / "requests.jsonl"
        self._log_lock = threading.Lock()
        self.public = {r.lower() for r in config.public_repos}

    # ---- request log

    def log(self, entry: Json) -> None:
        line = json.dumps(entry, sort_keys=True)
        with self._log_lock, self.log_path.open("a") as fh:
            fh.write(line + "\n")

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
                        rec["last_used"] = rfc3339(now())
                        self.state.save()
                        return Identity("pat", cfg.admin_user, rec["uuid"], scopes=list(rec["scopes"]))
        elif ident == cfg.org.lower():
            with self.state.lock:
                for rec in self.state.oats.values():
                    if secrets.compare_digest(rec["digest"], want) and usable(rec):
                        rec["last_used_at"] = rfc3339(now())
                        self.state.save()
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
        access: list[Json] = []
        for raw in scopes:
            for item in raw.split():
                parsed = parse_scope(item)
                if parsed is None:
                    continue
                rtype, name, actions = parsed
                if rtype != "repository":
                    continue  # registry:catalog:* and friends: Docker Hub grants none
                allowed = self.allowed_actions(who, name)
                wanted = allowed if "*" in actions else set(actions)
                granted = sorted(wanted & allowed)
                if not granted:
                    continue  # narrowed silently, like a real token server
                merged = next((a for a in access if a["name"] == name), None)
                if merged:
                    merged["actions"] = sorted(set(merged["actions"]) | set(granted))
                else:
                    access.append({"type": "repository", "name": name, "actions": granted})
        issued = now()
        t = int(issued.timestamp())
        claims = {
            "iss": self.config.issuer,
            "sub": who.username,
            "aud": service,
            "exp": t + REGISTRY_TOKEN_TTL,
            "nbf": t,
            "iat": t,
            "jti": secrets.token_urlsafe(16),
            "access": access,
        }
        token = self.signer.sign(claims)
        body = {
            "token": token,
            "access_token": token,
            "expires_in": REGISTRY_TOKEN_TTL,
            "issued_at": rfc3339(issued),
        }
        return body, access

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


_SCOPE_RE = re.compile(r"^(?P<type>[a-z0-9]+)(?:\([a-z0-9]+\))?:(?P<name>.+):(?P<actions>[a-z*,]*)$")


def parse_scope(item: str) -> tuple[str, str, list[str]] | None:
    """``repository:foo/bar:pull,push`` -> ("repository", "foo/bar", ["pull", "push"])."""
    m = _SCOPE_RE.match(item)
    if not m:
        return None
    actions = [a for a in m.group("actions").split(",") if a]
    return m.group("type"), m.group("name"), actions


def paginate(
    items: list[Json], query: dict[str, list[str]], base_url: str
) -> tuple[list[Json], str | None, str | None]:
    def number(name: str, default: int) -> int:
        raw = query.get(name, [str(default)])[-1]
        try:
            value = int(float(raw))
        except (ValueError, OverflowError):
            raise HubError(400, f"{name} must be a number", {"field": name}) from None
        if value < 1 or float(raw) != value:
            raise HubError(400, f"{name} must be a positive integer", {"field": name})
        return value

    page = number("page", 1)
    size = number("page_size", 10)
    if size > MAX_PAGE_SIZE:
        raise HubError(400, f"page_size must be at most {MAX_PAGE_SIZE}", {"field": "page_size"})
    start = (page - 1) * size
    chunk = items[start : start + size]
    nxt = (
        f"{base_url}?{urlencode({'page': page + 1, 'page_size': size})}"
        if start + size < len(items)
        else None
    )
    prev = None
    if page > 1:
        last = max(1, -(-len(items) // size))
        prev = f"{base_url}?{urlencode({'page': min(page - 1, last), 'page_size': size})}"
    return chunk, nxt, prev


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-dockerhub/1"
    protocol_version = "HTTP/1.1"
    hub: Hub  # set on the subclass made by make_server

    # quiet default stderr access log: the JSONL log is the record
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    # ---- plumbing

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self._query = parse_qs(split.query, keep_blank_values=True)
        # read the body before anything can fail, so a kept-alive connection stays in sync
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length > 0 else b""
        auth = self.headers.get("Authorization")
        self._entry: Json = {
            "ts": rfc3339(now()),
            "method": method,
            "path": split.path,
            "query_keys": sorted(self._query),
            "authorization": auth is not None,
            "auth_scheme": auth.split(" ", 1)[0].lower() if auth else None,
            "identity": None,
        }
        try:
            status, body, headers = self._route(method, split.path)
        except HubError as err:
            status, headers = err.status, {}
            body = {"message": err.message, "errinfo": err.errinfo, "detail": err.message}
        except Exception as err:  # keep serving; report as 500 in Hub's error shape
            status, headers = 500, {}
            body = {
                "message": "internal error",
                "errinfo": {"type": type(err).__name__},
                "detail": "internal error",
            }
        self._entry["status"] = status
        self.hub.log(self._entry)
        self._send(status, body, headers, head=(method == "HEAD"))

    def _send(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)

    def _json_body(self) -> Any:
        raw = self._raw_body
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise HubError(400, "request body is not valid JSON") from None

    def _base_url(self, path: str) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}{path}"

    def _bearer(self) -> Identity:
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HubError(401, "authentication required")
        who = self.hub.bearer_identity(token.strip())
        if who is None:
            self._entry["auth_failed"] = True
            raise HubError(401, "invalid or expired bearer token")
        self._entry["identity"] = who.label()
        return who

    def _token_manager(self) -> Identity:
        who = self._bearer()
        if who.kind == "oat" or (who.kind == "pat" and not self.hub.config.pat_bearer_may_manage):
            raise HubError(403, "this credential may not manage access tokens")
        return who

    # ---- routes

    def _route(self, method: str, path: str) -> tuple[int, Any, dict[str, str]]:
        path = path.rstrip("/") or "/"
        hub = self.hub
        if path == "/token":
            if method != "GET":
                return 405, {"details": "method not allowed"}, {"Allow": "GET"}
            return self._realm()
        if path == "/v2/auth/token":
            if method != "POST":
                raise HubError(405, "method not allowed")
            return self._auth_token()
        if path == "/v2/access-tokens":
            self._token_manager()
            if method == "POST":
                rec = hub.create_pat(
                    self._json_body(), self.client_address[0], self.headers.get("User-Agent", "")
                )
                return 201, rec, {}
            if method == "GET":
                return 200, self._list_pats(path), {}
            raise HubError(405, "method not allowed")
        m = re.fullmatch(r"/v2/access-tokens/([^/]+)", path)
        if m:
            self._token_manager()
            token_uuid = m.group(1)
            if method == "GET":
                return 200, hub.pat_view(hub.get_pat(token_uuid)), {}
            if method == "PATCH":
                return 200, hub.patch_pat(token_uuid, self._json_body()), {}
            if method == "DELETE":
                hub.delete_pat(token_uuid)
                return 204, None, {}
            raise HubError(405, "method not allowed")
        m = re.fullmatch(r"/v2/orgs/([^/]+)/access-tokens(?:/([^/]+))?", path)
        if m:
            who = self._token_manager()
            org, token_id = m.group(1), m.group(2)
            if who.kind != "admin" and who.kind != "pat":
                raise HubError(403, "only organization owners may manage organization access tokens")
            hub.check_org(org)
            if token_id is None:
                if method == "POST":
                    return 201, hub.create_oat(org, self._json_body(), who), {}
                if method == "GET":
                    return 200, self._list_oats(path), {}
                raise HubError(405, "method not allowed")
            if method == "GET":
                return 200, hub.oat_view(hub.get_oat(org, token_id), resources=True), {}
            if method == "PATCH":
                return 200, hub.patch_oat(org, token_id, self._json_body()), {}
            if method == "DELETE":
                hub.delete_oat(org, token_id)
                return 204, None, {}
            raise HubError(405, "method not allowed")
        raise HubError(404, "not found")

    def _auth_token(self) -> tuple[int, Any, dict[str, str]]:
        body = self._json_body()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("identifier"), str)
            or not isinstance(body.get("secret"), str)
        ):
            raise HubError(400, "identifier and secret are required")
        who = self.hub.check_secret(body["identifier"], body["secret"])
        if who is None:
            self._entry["auth_failed"] = True
            raise HubError(401, "incorrect username or password")
        self._entry["identity"] = who.label()
        return 200, {"access_token": self.hub.issue_hub_bearer(who)}, {}

    def _realm(self) -> tuple[int, Any, dict[str, str]]:
        hub = self.hub
        services = self._query.get("service", [])
        service = services[-1] if services else hub.config.service
        if service != hub.config.service:
            return 400, {"details": f"unknown service {service!r}"}, {}
        auth = self.headers.get("Authorization")
        if auth is None:
            who = Identity("anonymous")
        else:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "basic":
                return 401, {"details": "incorrect username or password"}, {}
            try:
                user, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, sep, secret = "", "", ""
            found = hub.check_secret(user, secret) if sep else None
            if found is None:
                self._entry["auth_failed"] = True
                return 401, {"details": "incorrect username or password"}, {}
            who = found
        self._entry["identity"] = who.label()
        requested = self._query.get("scope", [])
        body, access = hub.registry_token(who, service, requested)
        self._entry["scopes_requested"] = [s for raw in requested for s in raw.split()]
        self._entry["access_granted"] = [f"{a['name']}:{','.join(a['actions'])}" for a in access]
        return 200, body, {}

    def _list_pats(self, path: str) -> Json:
        with self.hub.state.lock:
            recs = sorted(self.hub.state.pats.values(), key=lambda r: -int(r.get("seq", 0)))
            chunk, nxt, prev = paginate(recs, self._query, self._base_url(path))
            return {
                "count": len(recs),
                "active_count": sum(1 for r in recs if usable(r)),
                "next": nxt,
                "previous": prev,
                "results": [self.hub.pat_view(r) for r in chunk],
            }

    def _list_oats(self, path: str) -> Json:
        with self.hub.state.lock:
            recs = sorted(self.hub.state.oats.values(), key=lambda r: -int(r.get("seq", 0)))
            chunk, nxt, prev = paginate(recs, self._query, self._base_url(path))
            return {
                "total": len(recs),
                "next": nxt,
                "previous": prev,
                "results": [self.hub.oat_view(r, resources=False) for r in chunk],
            }


def make_server(config: Config, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build (not start) the fake's server; ``port=0`` picks a free port (see ``server.server_address``)."""
    hub = Hub(config)
    handler = type("BoundHandler", (Handler,), {"hub": hub})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.dockerhub", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--admin-user", default="acme")
    p.add_argument("--admin-secret", default=None, help=f"default: ${SECRET_ENV}")
    p.add_argument("--org", default="acmecorp")
    p.add_argument(
        "--public", action="append", default=[], metavar="REPO", help="a public repository (repeat)"
    )
    p.add_argument("--service", default="registry.docker.io")
    p.add_argument("--issuer", default="auth.docker.io")
    p.add_argument("--key", type=Path, default=None, help="RSA key PEM (default: STATE_DIR/signing.key)")
    p.add_argument("--cert", type=Path, default=None, help="certificate PEM (default: STATE_DIR/signing.crt)")
    p.add_argument(
        "--pat-bearer",
        choices=("allow", "deny"),
        default="allow",
        help="may a bearer obtained with a PAT manage access tokens",
    )
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host != "localhost":
        p.error("the fake binds to loopback only")
    secret = args.admin_secret or os.environ.get(SECRET_ENV)
    if not secret:
        p.error(f"give --admin-secret or set {SECRET_ENV}")
    config = Config(
        state_dir=args.state_dir,
        admin_user=args.admin_user,
        admin_secret=secret,
        org=args.org,
        key_path=args.key or args.state_dir / "signing.key",
        cert_path=args.cert or args.state_dir / "signing.crt",
        public_repos=list(args.public),
        service=args.service,
        issuer=args.issuer,
        pat_bearer_may_manage=args.pat_bearer == "allow",
    )
    server = make_server(config, args.host, args.port)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake dockerhub listening on http://{args.host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
