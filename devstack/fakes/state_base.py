"""What every vendor fake keeps under its ``--state-dir``, shared: the persisted records (``state.json``,
secrets only as SHA-256 `digest`s: `JsonState`), the signing material of its registry tokens, the JSONL
request log (``requests.jsonl``) and the test-only ``minted-secrets.jsonl`` (`FakeBackend`, the base of each
fake's logic, which also grants the realm's registry tokens), and the fields every Config starts with
(`BaseConfig`). Test double only.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from devstack.fakes.registry_tokens import (
    Signer,
    ensure_signing_material,
    registry_token_body,
    requested_scopes,
)

Json = dict[str, Any]


def digest(secret: str) -> str:
    """How the fakes store a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


class JsonState:
    """Records persisted as one JSON document, saved whole and atomically (a temporary file, then
    ``os.replace``); ``lock`` (re-entrant) guards them. ``initial`` is the document of a new state; the
    keys of a saved one replace its keys."""

    def __init__(self, path: Path, initial: Json) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: Json = initial
        if path.exists():
            self.data.update(json.loads(path.read_text()))

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)

    def next_seq(self) -> int:
        """The next number of the document's ``seq`` counter."""
        self.data["seq"] += 1
        return int(self.data["seq"])

    def table(self, name: str) -> dict[str, Json]:
        """A top-level object of the document: records by id (a string: JSON object keys)."""
        return self.data[name]  # type: ignore[no-any-return]


class Table:
    """`JsonState.table` as an attribute of a state class: ``robots = Table("robots")``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, state: JsonState, owner: type | None = None) -> dict[str, Json]:
        return state.table(self.name)


@dataclass
class BaseConfig:
    """The fields a fake's Config starts with (the vendor's own follow): where it keeps its state, its admin
    user and that user's secret (the bootstrap credential), and its registry tokens' signing material."""

    state_dir: Path
    admin_user: str
    admin_secret: str
    key_path: Path
    cert_path: Path


class BackendConfig(Protocol):
    """What `FakeBackend` reads from a fake's Config: its state directory, signing material and registry
    token issuer."""

    state_dir: Path
    key_path: Path
    cert_path: Path
    issuer: str


class FakeBackend:
    """Base of a fake's logic (independent of HTTP): its state directory (created), the signer of its
    registry tokens (the key and certificate created unless both exist), the request log and the record of
    minted secrets."""

    def __init__(self, config: BackendConfig) -> None:
        config.state_dir.mkdir(parents=True, exist_ok=True)
        ensure_signing_material(config.key_path, config.cert_path)
        self.signer = Signer(config.key_path, config.cert_path)
        self.state_dir = config.state_dir
        self.registry_issuer = config.issuer
        self.log_path = config.state_dir / "requests.jsonl"
        self._log_lock = threading.Lock()

    def log(self, entry: Json) -> None:
        """Append one request to ``requests.jsonl`` (never a secret)."""
        line = json.dumps(entry, sort_keys=True)
        with self._log_lock, self.log_path.open("a") as fh:
            fh.write(line + "\n")

    def record_minted(self, *tokens: str | None) -> None:
        """Test-only: the clear text of minted secrets, for the tests' leak checks (never read by regcred)."""
        with self._log_lock, (self.state_dir / "minted-secrets.jsonl").open("a") as fh:
            for token in tokens:
                if token:
                    fh.write(json.dumps({"token": token}) + "\n")

    def grant_registry_token(
        self,
        subject: str,
        service: str,
        scopes: Iterable[str],
        allowed: Callable[[str], set[str]],
        ttl: int,
        *,
        keep_denied: bool = False,
    ) -> tuple[Json, list[Json]]:
        """The realm's 200 body (a registry token of ``registry_issuer`` for ``subject``, living ``ttl``
        seconds) and the ``access`` it grants for the ``scope`` parameters: per repository, the
        actions asked for that ``allowed(name)`` permits (``*``: all of them), merged by name. Other actions
        are dropped silently, as a token server does; a repository granted nothing is left out, unless
        ``keep_denied`` (it is then listed with no actions)."""
        access: list[Json] = []
        for name, actions in requested_scopes(scopes):
            permitted = allowed(name)
            granted = sorted((permitted if "*" in actions else set(actions)) & permitted)
            if not granted and not keep_denied:
                continue
            merged = next((a for a in access if a["name"] == name), None)
            if merged:
                merged["actions"] = sorted(set(merged["actions"]) | set(granted))
            else:
                access.append({"type": "repository", "name": name, "actions": granted})
        body = registry_token_body(
            self.signer, issuer=self.registry_issuer, subject=subject, service=service, access=access, ttl=ttl
        )
        return body, access
