"""Docker Registry v2 / OCI distribution: image references, auth challenges, and the pull check.

One module per concern: `reference` (image names as Docker parses them), `challenge`
(WWW-Authenticate), `results` (what a check proved) and `client` (the check flow over regcred's one
transport). The public names are re-exported here.
"""

from .challenge import MAX_CHALLENGE_HEADER_LENGTH, Challenge, parse_www_authenticate
from .credential import Credential
from .reference import DOCKER_HUB, ImageRef, normalise_registry, valid_digest
from .results import ImageCheck, PullCheck, PullStatus

__all__ = [
    "DOCKER_HUB",
    "MANIFEST_MEDIA_TYPES",
    "MAX_CHALLENGE_HEADER_LENGTH",
    "Challenge",
    "Credential",
    "ImageCheck",
    "ImageRef",
    "PullCheck",
    "PullStatus",
    "RegistryClient",
    "normalise_registry",
    "parse_www_authenticate",
    "registry_name",
    "valid_digest",
]


def __getattr__(name: str) -> object:
    # The client loads urllib3: only on first use, so that a function that never probes does not pay it.
    if name in ("RegistryClient", "MANIFEST_MEDIA_TYPES", "registry_name"):
        from . import client

        return getattr(client, name)
    raise AttributeError(name)
