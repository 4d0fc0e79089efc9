"""A minimal, independent /v2/ pull check for tests: a second opinion on regcred.registry."""

from __future__ import annotations

import re

import requests

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def manifest_status(registry: str, username: str, password: str, repository: str, reference: str) -> int:
    """HTTP status of HEAD /v2/<repository>/manifests/<reference> after the Bearer token dance (a fresh
    login every time: registry bearer tokens outlive a revocation); 401 from the token endpoint is returned
    as is."""
    base = f"http://{registry}"
    challenge = requests.get(f"{base}/v2/", timeout=5).headers.get("WWW-Authenticate", "")
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if challenge.lower().startswith("basic"):
        # A registry with Basic auth (htpasswd): the credential goes with the request itself.
        return requests.head(
            f"{base}/v2/{repository}/manifests/{reference}",
            auth=(username, password),
            headers={"Accept": MANIFEST_TYPES},
            timeout=5,
        ).status_code
    token = requests.get(
        params["realm"],
        params={"service": params["service"], "scope": f"repository:{repository}:pull", "account": username},
        auth=(username, password),
        timeout=5,
    )
    if token.status_code != 200:
        return token.status_code
    body = token.json()
    bearer = body.get("token") or body.get("access_token")
    head = requests.head(
        f"{base}/v2/{repository}/manifests/{reference}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": MANIFEST_TYPES},
        timeout=5,
    )
    return head.status_code
