"""The local stack: moto_server, and for every provider a vendor fake beside its own real registry.

- Docker Hub, GitLab, Harbor, Artifactory and GHCR: the vendor's fake (``devstack/fakes/<vendor>``: its API
  and the registry token realm) and a distribution registry whose token realm is that fake;
- static: a distribution registry with htpasswd (Basic) auth, whose credentials the stack creates
  (``python -m devstack.stack credential static``), as an operator would at any registry.

    python -m devstack.stack credential ghcr|static [--dir .stack]   # a new credential to `regcred import`

    python -m devstack.stack up [--dir .stack]     # start, seed images, write DIR/env; refused if running
    python -m devstack.stack down [--dir .stack]   # stop what `up` started (by pid), remove the pid files
    python -m devstack.stack env [--dir .stack]    # print DIR/env (shell-sourceable `export K=V` lines)
    python -m devstack.stack status [--dir .stack]

or, from Python: ``stack = Stack.up(path)``, ``stack.env``, ``stack.down()``.

Everything binds to 127.0.0.1 on free ports.  The registry (``/usr/bin/docker-registry serve``, 2.8) runs
with its own config in DIR: filesystem storage, token auth whose realm is the fake's ``/token``, trusting
a self-signed certificate generated here.  ``up`` pushes three images without Docker (blob POST/PUT,
config blob, manifest PUT) using a push token the fake issues to the admin identity:
``<admin>/app:1.0`` (private), ``<org>/tool:2.0`` (org, private) and ``library/public:latest`` (public).

``up`` on a directory whose stack is still running is refused (it does not reuse it): run ``down`` first.
State (registry storage, the fake's tokens, the key and the admin secret) is kept across down/up.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.fakes.profile import VendorProfile

REPO_ROOT = Path(__file__).resolve().parents[1]
REGISTRY_BIN = "/usr/bin/docker-registry"
HOST = "127.0.0.1"
ADMIN_USER = "acme"
ORG = "acmecorp"
SERVICE = "registry.docker.io"
ISSUER = "auth.docker.io"
PUBLIC_REPO = "library/public"
SEED_IMAGES = (f"{ADMIN_USER}/app:1.0", f"{ORG}/tool:2.0", f"{PUBLIC_REPO}:latest")
BASE_PROCESSES = ("moto", "registry", "dockerhub")
# The vendor fakes that follow devstack/fakes/profile.py (Docker Hub predates it and is started on its own).
PROFILE_MODULES = (
    "devstack.fakes.gitlab",
    "devstack.fakes.harbor",
    "devstack.fakes.artifactory",
    "devstack.fakes.github",
)
STATIC_USER_PREFIX = "static-puller-"


def profiles() -> list[VendorProfile]:
    """The profiles of the vendor fakes, in PROFILE_MODULES order."""
    import importlib

    return [importlib.import_module(name).PROFILE for name in PROFILE_MODULES]


def process_names() -> tuple[str, ...]:
    names = list(BASE_PROCESSES)
    for profile in profiles():
        names += [profile.provider, f"{profile.provider}-registry"]
    names.append("static-registry")
    return tuple(names)


PROCESSES = process_names()
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_TGZ = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says what to do."""


# ------------------------------------------------------------------------------------ processes


def _token() -> str:
    return secrets.token_urlsafe(24).replace("-", "A").replace("_", "b")


def _start_ticks(pid: int) -> int | None:
    """Start time of a live (non-zombie) process in clock ticks since boot, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int, ticks: int | None) -> bool:
    """Is ``pid`` still the process we started (same start time when we know it)?"""
    _reap(pid)
    now_ticks = _start_ticks(pid)
    if now_ticks is None:
        return False
    return ticks is None or now_ticks == ticks


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def _dir_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ---------------------------------------------------------------------------------------- seeding


def _www_authenticate(header: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def _layer(text: str) -> tuple[bytes, str]:
    """A deterministic gzipped tar with one file; returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(tar_bytes)
    return out.getvalue(), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(registry: str, image: str, username: str, secret: str, http: requests.Session) -> str:
    """Push a one-layer image ``repo:tag`` to ``registry`` (host:port) with plain HTTP calls, getting a
    push token from the realm the registry names. Returns the manifest digest."""
    repo, tag = image.rsplit(":", 1)
    base = f"http://{registry}"
    challenge = http.get(f"{base}/v2/", timeout=5)
    header = challenge.headers.get("WWW-Authenticate", "")
    params = _www_authenticate(header)
    if challenge.status_code != 401 or "realm" not in params:
        raise StackError(f"registry /v2/ gave {challenge.status_code} without a challenge")
    if header.lower().startswith("basic"):
        headers = {"Authorization": requests.auth._basic_auth_str(username, secret)}
    else:
        tok = http.get(
            params["realm"],
            params={"service": params.get("service", ""), "scope": f"repository:{repo}:pull,push"},
            auth=(username, secret),
            timeout=5,
        )
        if tok.status_code != 200:
            raise StackError(f"push token for {repo}: realm answered {tok.status_code} {tok.text[:200]}")
        body = tok.json()
        headers = {"Authorization": f"Bearer {body.get('token') or body.get('access_token')}"}

    layer, diff_id = _layer(f"regcred stack seed image {image}\n")
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello.txt"], "Labels": {"regcred.seed": image}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "devstack.stack seed"}],
        },
        sort_keys=True,
    ).encode()
    for blob in (layer, config):
        digest = _sha(blob)
        if http.head(f"{base}/v2/{repo}/blobs/{digest}", headers=headers, timeout=5).status_code == 200:
            continue
        start = http.post(f"{base}/v2/{repo}/blobs/uploads/", headers=headers, timeout=5)
        if start.status_code != 202:
            raise StackError(f"blob upload start for {repo}: {start.status_code} {start.text[:300]}")
        location = requests.compat.urljoin(base + "/", start.headers["Location"])
        sep = "&" if "?" in location else "?"
        put = http.put(
            f"{location}{sep}digest={digest}",
            data=blob,
            headers={**headers, "Content-Type": "application/octet-stream"},
            timeout=10,
        )
        if put.status_code != 201:
            raise StackError(f"blob upload for {repo}: {put.status_code} {put.text[:300]}")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": _sha(config)},
            "layers": [{"mediaType": LAYER_TGZ, "size": len(layer), "digest": _sha(layer)}],
        },
        indent=3,
    ).encode()
    put = http.put(
        f"{base}/v2/{repo}/manifests/{tag}",
        data=manifest,
        headers={**headers, "Content-Type": MANIFEST_V2},
        timeout=10,
    )
    if put.status_code != 201:
        raise StackError(f"manifest put for {image}: {put.status_code} {put.text[:300]}")
    return put.headers.get("Docker-Content-Digest", _sha(manifest))


# ------------------------------------------------------------------------------------------ stack

STATIC_SEED_IMAGE = "team/app:1.0"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _registry_config(
    root: Path,
    port: int,
    realm: str,
    http_secret: str,
    *,
    service: str = SERVICE,
    issuer: str = ISSUER,
    data: str = "registry-data",
    htpasswd: Path | None = None,
) -> str:
    if htpasswd is not None:
        auth = f"""\
  htpasswd:
    realm: {realm}
    path: {htpasswd}
"""
    else:
        auth = f"""\
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {root / "signing.crt"}
"""
    return f"""\
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root / data}
  delete:
    enabled: true
http:
  addr: {HOST}:{port}
  secret: {http_secret}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
{auth}"""


def write_htpasswd(path: Path, users: dict[str, str]) -> None:
    """The static registry's users, as bcrypt entries (the only kind distribution's htpasswd accepts). The
    registry reads the file again when it changes."""
    import bcrypt

    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}\n" for u, p in users.items()
    ]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(lines)
    os.replace(tmp, path)


@dataclass
class Stack:
    """A running local stack rooted at ``root``."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    _children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # ---- paths

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    def pid_file(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    @property
    def procs_file(self) -> Path:
        return self.root / "procs.json"

    def log_file(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    # ---- pids

    def pids(self) -> dict[str, int]:
        """Pids recorded in the pid files (whether or not they still run)."""
        out = {}
        for name in PROCESSES:
            with contextlib.suppress(FileNotFoundError, ValueError):
                out[name] = int(self.pid_file(name).read_text().strip())
        return out

    def _ticks(self) -> dict[str, int]:
        try:
            return {k: int(v["start_ticks"]) for k, v in json.loads(self.procs_file.read_text()).items()}
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}

    def running(self) -> dict[str, int]:
        """The recorded processes that are still alive (and are still the processes we started)."""
        ticks = self._ticks()
        return {n: p for n, p in self.pids().items() if _alive(p, ticks.get(n))}

    # ---- up

    @classmethod
    def up(cls, root: Path) -> Stack:
        root = Path(root).resolve()
        if not Path(REGISTRY_BIN).exists():
            raise StackError(f"{REGISTRY_BIN} is missing (Debian package docker-registry): run `make setup`")
        stack = cls(root)
        with _dir_lock(root):
            alive = stack.running()
            if alive:
                raise StackError(
                    f"a stack is already running in {root} (pids {alive}); "
                    f"run `python -m devstack.stack down --dir {root}` first"
                )
            stack._clear_run_files()
            try:
                stack._start()
            except BaseException:
                stack._stop()
                raise
        return stack

    def _secrets(self) -> dict[str, str]:
        path = self.root / "secrets.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        values = {
            "admin_secret": "dckr_pat_" + _token(),
            "http_secret": secrets.token_hex(16),
        }
        self._write_secrets(values)
        return values

    def _secret(self, key: str, prefix: str = "") -> str:
        """A stack secret by name, made (and kept across down/up) on first use."""
        values = self._secrets()
        if key not in values:
            values[key] = prefix + _token()
            self._write_secrets(values)
        return values[key]

    def _write_secrets(self, values: dict[str, str]) -> None:
        path = self.root / "secrets.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)

    def _start(self) -> None:
        from devstack.fakes.registry_tokens import ensure_signing_material

        t0 = time.monotonic()
        root = self.root
        (root / "logs").mkdir(parents=True, exist_ok=True)
        (root / "registry-data").mkdir(exist_ok=True)
        hub_dir = root / "dockerhub"
        hub_dir.mkdir(exist_ok=True)
        key, cert = root / "signing.key", root / "signing.crt"
        ensure_signing_material(key, cert)
        sec = self._secrets()
        vendors = profiles()
        ports = iter(_free_ports(4 + 2 * len(vendors)))
        moto_port, reg_port, hub_port, static_port = next(ports), next(ports), next(ports), next(ports)
        hub_url = f"http://{HOST}:{hub_port}"
        registry_yml = root / "registry.yml"
        registry_yml.write_text(_registry_config(root, reg_port, f"{hub_url}/token", sec["http_secret"]))
        pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))

        # moto_server with its RotationEnabled corrected (devstack/moto_server.py).
        self._spawn(
            "moto", [sys.executable, "-m", "devstack.moto_server", "-H", HOST, "-p", str(moto_port)], {}
        )
        self._spawn("registry", [REGISTRY_BIN, "serve", str(registry_yml)], {})
        hub_cmd = [
            sys.executable, "-m", "devstack.fakes.dockerhub",
            "--host", HOST, "--port", str(hub_port), "--state-dir", str(hub_dir),
            "--admin-user", ADMIN_USER, "--org", ORG, "--public", PUBLIC_REPO,
            "--service", SERVICE, "--issuer", ISSUER,
            "--key", str(key), "--cert", str(cert),
        ]  # fmt: skip
        self._spawn(
            "dockerhub",
            hub_cmd,
            {"FAKE_DOCKERHUB_ADMIN_SECRET": sec["admin_secret"], "PYTHONPATH": pythonpath},
        )

        # Every other vendor: its fake, and a registry whose token realm it is.
        started: list[tuple[VendorProfile, str, str, str]] = []
        for profile in vendors:
            fake_port, vendor_reg_port = next(ports), next(ports)
            state_dir = root / profile.provider
            state_dir.mkdir(exist_ok=True)
            (root / f"registry-data-{profile.provider}").mkdir(exist_ok=True)
            url = f"http://{HOST}:{fake_port}"
            admin_secret = self._secret(f"{profile.provider}_admin_secret", profile.admin_secret_prefix)
            config_path = root / f"registry-{profile.provider}.yml"
            config_path.write_text(
                _registry_config(
                    root,
                    vendor_reg_port,
                    url + profile.realm_path,
                    sec["http_secret"],
                    service=profile.service,
                    issuer=profile.issuer,
                    data=f"registry-data-{profile.provider}",
                )
            )
            argv = [
                sys.executable, "-m", profile.module,
                "--host", HOST, "--port", str(fake_port), "--state-dir", str(state_dir),
                "--key", str(key), "--cert", str(cert),
                "--service", profile.service, "--issuer", profile.issuer,
                "--admin-user", profile.admin_user, *profile.extra_args,
            ]  # fmt: skip
            self._spawn(profile.provider, argv, {profile.secret_env: admin_secret, "PYTHONPATH": pythonpath})
            self._spawn(f"{profile.provider}-registry", [REGISTRY_BIN, "serve", str(config_path)], {})
            started.append((profile, url, f"{HOST}:{vendor_reg_port}", admin_secret))

        # The static registry: htpasswd users that the stack creates, as an operator would at any registry.
        static_dir = root / "static"
        static_dir.mkdir(exist_ok=True)
        (root / "registry-data-static").mkdir(exist_ok=True)
        htpasswd = static_dir / "htpasswd"
        static_users = self._static_users()
        write_htpasswd(htpasswd, static_users)
        static_yml = root / "registry-static.yml"
        static_yml.write_text(
            _registry_config(
                root,
                static_port,
                "regcred-static",
                sec["http_secret"],
                data="registry-data-static",
                htpasswd=htpasswd,
            )
        )
        self._spawn("static-registry", [REGISTRY_BIN, "serve", str(static_yml)], {})
        static_registry = f"{HOST}:{static_port}"

        with requests.Session() as http:
            self._wait("moto", f"http://{HOST}:{moto_port}/moto-api/", http, t0)
            self._wait("registry", f"http://{HOST}:{reg_port}/v2/", http, t0)
            self._wait("dockerhub", f"{hub_url}/token?service={SERVICE}", http, t0)
            registry = f"{HOST}:{reg_port}"
            for image in SEED_IMAGES:
                push_image(registry, image, ADMIN_USER, sec["admin_secret"], http)
            for profile, url, vendor_registry, admin_secret in started:
                self._wait(profile.provider, url + profile.ready_path, http, t0)
                self._wait(f"{profile.provider}-registry", f"http://{vendor_registry}/v2/", http, t0)
                for image in profile.seed_images:
                    push_image(vendor_registry, image, profile.admin_user, admin_secret, http)
            self._wait("static-registry", f"http://{static_registry}/v2/", http, t0)
            admin_user, admin_password = next(iter(static_users.items()))
            push_image(static_registry, STATIC_SEED_IMAGE, admin_user, admin_password, http)

        self.env = {
            "AWS_ENDPOINT_URL": f"http://{HOST}:{moto_port}",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "REGCRED_REGISTRY": registry,
            "REGCRED_REGISTRY_SERVICE": SERVICE,
            "REGCRED_DOCKERHUB_API": hub_url,
            "REGCRED_DOCKERHUB_REALM": f"{hub_url}/token",
            "REGCRED_DOCKERHUB_ADMIN_USER": ADMIN_USER,
            "REGCRED_DOCKERHUB_ADMIN_TOKEN": sec["admin_secret"],
            "REGCRED_DOCKERHUB_ORG": ORG,
            "REGCRED_SEED_IMAGE": SEED_IMAGES[0],
            "REGCRED_SEED_ORG_IMAGE": SEED_IMAGES[1],
            "REGCRED_SEED_PUBLIC_IMAGE": SEED_IMAGES[2],
            "REGCRED_STACK_DIR": str(root),
            "REGCRED_DOCKERHUB_LOG": str(hub_dir / "requests.jsonl"),
            # Test-only record of every token the fake minted, in clear, so that tests can prove none of
            # them leaked into any output (the fake's state keeps only digests).
            "REGCRED_DOCKERHUB_MINTED": str(hub_dir / "minted-secrets.jsonl"),
            # What `regcred onboard --provider dockerhub` uses when --registry / --api are not given.
            "REGCRED_DOCKERHUB_REGISTRY": registry,
            "REGCRED_DOCKERHUB_SEED_IMAGE": SEED_IMAGES[0],
            "REGCRED_DOCKERHUB_ONBOARD_ARGS": "",
        }
        registry_hosts = [f"http://{registry}", hub_url, f"http://{static_registry}"]
        api_hosts = [hub_url]
        for profile, url, vendor_registry, admin_secret in started:
            prefix = f"REGCRED_{profile.provider.upper()}_"
            self.env.update(
                {
                    prefix + "API": url,
                    prefix + "REGISTRY": vendor_registry,
                    prefix + "ADMIN_USER": profile.admin_user,
                    prefix + "ADMIN_TOKEN": admin_secret,
                    prefix + "SEED_IMAGE": profile.seed_images[0] if profile.seed_images else "",
                    prefix + "ONBOARD_ARGS": profile.onboard_args,
                    prefix + "LOG": str(root / profile.provider / "requests.jsonl"),
                    prefix + "MINTED": str(root / profile.provider / "minted-secrets.jsonl"),
                }
            )
            for key_name, template in profile.extra_env.items():
                self.env[key_name] = template.format(api=url, registry=vendor_registry)
            registry_hosts += [f"http://{vendor_registry}", url]
            api_hosts.append(url)
        (first_user, first_token), (next_user, next_token) = list(static_users.items())[1:3]
        self.env.update(
            {
                # No vendor API: the credentials are created at the registry (`stack credential static`).
                "REGCRED_STATIC_API": "",
                "REGCRED_STATIC_REGISTRY": static_registry,
                "REGCRED_STATIC_ADMIN_USER": first_user,
                "REGCRED_STATIC_ADMIN_TOKEN": first_token,
                "REGCRED_STATIC_IMPORT_USER": next_user,
                "REGCRED_STATIC_IMPORT_TOKEN": next_token,
                "REGCRED_STATIC_SEED_IMAGE": STATIC_SEED_IMAGE,
                "REGCRED_STATIC_ONBOARD_ARGS": f"--username {first_user}",
                "REGCRED_STATIC_HTPASSWD": str(htpasswd),
            }
        )
        self.env.update(
            {
                # The deployment allow-lists of the local stack: its registries and the fakes (token realms
                # and vendor APIs). Only these loopback destinations may be reached, over http.
                "REGCRED_ALLOWED_REGISTRY_HOSTS": " ".join(registry_hosts),
                "REGCRED_ALLOWED_API_HOSTS": " ".join(api_hosts),
                # Nothing but loopback hosts: with this file sourced, the CLI refuses the real hosts.
                "REGCRED_LOCAL_ONLY": "1",
            }
        )
        self._extra_credentials()
        text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.env.items())
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)

    def _static_users(self) -> dict[str, str]:
        """The static registry's users: a seeding identity, then pull credentials (kept across down/up)."""
        path = self.root / "static" / "users.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        users = {"static-admin": _token()}
        for n in (1, 2):
            users[f"{STATIC_USER_PREFIX}{n}"] = _token()
        _write_private(path, json.dumps(users))
        return users

    def new_static_credential(self) -> tuple[str, str]:
        """Create a static registry user (an operator making a credential at the registry)."""
        users = self._static_users()
        username = f"{STATIC_USER_PREFIX}{len(users)}"
        users[username] = _token()
        _write_private(self.root / "static" / "users.json", json.dumps(users))
        write_htpasswd(self.root / "static" / "htpasswd", users)
        return username, users[username]

    def _extra_credentials(self) -> None:
        """Exports for the import providers: a second credential, ready for `regcred import`."""
        if "REGCRED_GHCR_API" in self.env:
            login, token = self.new_ghcr_credential()
            self.env["REGCRED_GHCR_IMPORT_USER"] = login
            self.env["REGCRED_GHCR_IMPORT_TOKEN"] = token
            # The first credential the stack hands out for onboarding (the admin PAT seeds the images).
            first_login, first = self.new_ghcr_credential()
            self.env["REGCRED_GHCR_ADMIN_USER"] = first_login
            self.env["REGCRED_GHCR_ADMIN_TOKEN"] = first

    def new_ghcr_credential(self) -> tuple[str, str]:
        """A new classic PAT with read:packages from the GitHub fake (standing in for GitHub's settings page,
        where a user creates one)."""
        admin = self._secret("ghcr_admin_secret")
        login = self.env.get("REGCRED_GHCR_ADMIN_USER") or next(
            p.admin_user for p in profiles() if p.provider == "ghcr"
        )
        reply = requests.post(
            f"{self.env['REGCRED_GHCR_API']}/_fake/tokens",
            json={"scopes": ["read:packages"], "expires_at": None},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=5,
        )
        if reply.status_code != 201:
            raise StackError(f"the GitHub fake did not create a token: HTTP {reply.status_code}")
        return login, str(reply.json()["token"])

    def _spawn(self, name: str, argv: list[str], extra_env: dict[str, str]) -> None:
        log = self.log_file(name).open("ab")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env={**os.environ, **extra_env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the `up` command; stopped only by `down`, by pid
            )
        finally:
            log.close()
        self._children[proc.pid] = proc
        self.pid_file(name).write_text(f"{proc.pid}\n")
        procs = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            procs = json.loads(self.procs_file.read_text())
        procs[name] = {"pid": proc.pid, "start_ticks": _start_ticks(proc.pid) or 0, "argv0": argv[0]}
        self.procs_file.write_text(json.dumps(procs, indent=1))

    def _wait(self, name: str, url: str, http: requests.Session, t0: float) -> None:
        pid = self.pids()[name]
        proc = self._children.get(pid)
        while True:
            try:
                http.get(url, timeout=1)
                return  # any HTTP answer means it is serving
            except requests.RequestException:
                pass
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"{name} exited with {proc.returncode} while starting; {self.log_file(name)}:\n"
                    + _tail(self.log_file(name))
                )
            if time.monotonic() - t0 > READY_TIMEOUT:
                raise StackError(
                    f"{name} did not answer at {url} within {READY_TIMEOUT:.0f}s; {self.log_file(name)}:\n"
                    + _tail(self.log_file(name))
                )
            time.sleep(0.05)

    # ---- down

    @classmethod
    def attach(cls, root: Path) -> Stack:
        """The stack recorded in ``root`` (env read from ``root/env`` when present)."""
        stack = cls(Path(root).resolve())
        with contextlib.suppress(FileNotFoundError):
            for line in stack.env_file.read_text().splitlines():
                if line.startswith("export "):
                    key, _, value = line[len("export ") :].partition("=")
                    parsed = shlex.split(value)
                    stack.env[key] = parsed[0] if parsed else ""
        return stack

    def down(self, timeout: float = STOP_TIMEOUT) -> dict[str, int]:
        """Stop every recorded process (SIGTERM, SIGKILL after ``timeout``), tolerate dead pids, remove the
        pid files and the env file. Returns the pids that were still running."""
        if not self.root.is_dir():
            return {}
        with _dir_lock(self.root):
            return self._stop(timeout)

    def _stop(self, timeout: float = STOP_TIMEOUT) -> dict[str, int]:
        ticks = self._ticks()
        alive = {n: p for n, p in self.pids().items() if _alive(p, ticks.get(n))}
        for pid in alive.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(p, ticks.get(n)) for n, p in alive.items()):
            time.sleep(0.05)
        for name, pid in alive.items():
            if _alive(pid, ticks.get(name)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(_alive(p, ticks.get(n)) for n, p in alive.items()):
            time.sleep(0.05)
        for proc in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
        self._children.clear()
        self._clear_run_files()
        with contextlib.suppress(FileNotFoundError):
            self.env_file.unlink()
        return alive

    def _clear_run_files(self) -> None:
        for name in PROCESSES:
            with contextlib.suppress(FileNotFoundError):
                self.pid_file(name).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.procs_file.unlink()


# -------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devstack.stack", description="regcred's local stack")
    p.add_argument("command", choices=("up", "down", "env", "status", "credential"))
    p.add_argument("provider", nargs="?", choices=("ghcr", "static"), help="credential: for which provider")
    p.add_argument("--dir", type=Path, default=Path(".stack"), help="stack directory (default .stack)")
    args = p.parse_args(argv)
    try:
        if args.command == "up":
            t0 = time.monotonic()
            stack = Stack.up(args.dir)
            print(f"stack up in {stack.root} ({time.monotonic() - t0:.1f}s): pids {stack.running()}")
            print(f"source {stack.env_file}")
        elif args.command == "down":
            stack = Stack.attach(args.dir)
            stopped = stack.down()
            print(f"stack down in {stack.root}: stopped {stopped or 'nothing (not running)'}")
        elif args.command == "env":
            stack = Stack.attach(args.dir)
            if not stack.running() or not stack.env_file.exists():
                raise StackError(
                    f"no running stack in {stack.root}: run `python -m devstack.stack up --dir {args.dir}`"
                )
            sys.stdout.write(stack.env_file.read_text())
        elif args.command == "credential":
            # A new credential for `regcred import`: JSON {"username", "password"} on stdout.
            stack = Stack.attach(args.dir)
            if not stack.running() or not args.provider:
                raise StackError(
                    "usage: python -m devstack.stack credential ghcr|static (on a running stack)"
                )
            with _dir_lock(stack.root):
                user, token = (
                    stack.new_static_credential()
                    if args.provider == "static"
                    else stack.new_ghcr_credential()
                )
            print(json.dumps({"username": user, "password": token}))
        else:
            stack = Stack.attach(args.dir)
            recorded, alive = stack.pids(), stack.running()
            for name in PROCESSES:
                state = "running" if name in alive else ("dead" if name in recorded else "not started")
                print(f"{name:20} {recorded.get(name, '-')!s:>8}  {state}")
            return 0 if alive and len(alive) == len(PROCESSES) else 1
    except StackError as err:
        print(f"devstack.stack {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
