"""Registry bearer tokens that the CNCF distribution registry 2.8 accepts, for every vendor fake.

Test double only. RS256 JWTs whose header carries ``x5c`` (standard base64 DER of the stack's self-signed
certificate, which is the registry's ``rootcertbundle``) and ``kid`` (the libtrust fingerprint the registry
computes), with claims iss, sub, aud (a JSON string: the registry rejects a list), exp, nbf, iat, jti,
access. Facts checked against the real registry on these machines: see docs/ARCHITECTURE.md, "The local
stack".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

Json = dict[str, Any]


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


_SCOPE_RE = re.compile(r"^(?P<type>[a-z0-9]+)(?:\([a-z0-9]+\))?:(?P<name>.+):(?P<actions>[a-z*,]*)$")


def parse_scope(item: str) -> tuple[str, str, list[str]] | None:
    """``repository:foo/bar:pull,push`` -> ("repository", "foo/bar", ["pull", "push"])."""
    m = _SCOPE_RE.match(item)
    if not m:
        return None
    actions = [a for a in m.group("actions").split(",") if a]
    return m.group("type"), m.group("name"), actions


def requested_scopes(raw_scopes: Iterable[str]) -> list[tuple[str, list[str]]]:
    """(repository name, actions) of every ``repository:`` scope in the realm's ``scope`` parameters
    (each parameter may hold several scopes separated by spaces)."""
    out: list[tuple[str, list[str]]] = []
    for raw in raw_scopes:
        for item in raw.split():
            parsed = parse_scope(item)
            if parsed is not None and parsed[0] == "repository":
                out.append((parsed[1], parsed[2]))
    return out


def registry_token_body(
    signer: Signer, *, issuer: str, subject: str, service: str, access: list[Json], ttl: int
) -> Json:
    """The realm's 200 body: ``token`` and ``access_token`` (the same JWT), ``expires_in``, ``issued_at``."""
    issued = now()
    t = int(issued.timestamp())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": service,
        "exp": t + ttl,
        "nbf": t,
        "iat": t,
        "jti": secrets.token_urlsafe(16),
        "access": access,
    }
    token = signer.sign(claims)
    return {"token": token, "access_token": token, "expires_in": ttl, "issued_at": rfc3339(issued)}
