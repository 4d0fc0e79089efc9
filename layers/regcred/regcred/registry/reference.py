"""Image references, parsed as Docker parses them (distribution/reference ``ParseDockerRef``).

Docker's daemon parses an image name with github.com/distribution/reference (v0.6.0, the version moby
vendors) and validates its digest with github.com/opencontainers/go-digest (v1.0.0). regcred follows the
same grammar and normalisation, so that a reference regcred accepts is one Docker pulls, from the same
registry host and repository path, and one Docker refuses is refused here with a `RegistryError`:

- ``name[:tag][@digest]``; path components ``[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*``, lower case only;
  tags ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``; at most 255 characters in the repository path (after
  Docker adds ``library/``; the registry host does not count).
- The first of several components is a registry host when it contains ``.`` or ``:``, is ``localhost``,
  or has upper-case letters; otherwise the name is on Docker Hub. A name of one component is always on
  Docker Hub (``localhost:5000`` is ``library/localhost`` with tag ``5000``). IPv6 hosts are bracketed,
  without zone ids and without dotted (IPv4-mapped) forms.
- Docker Hub: ``docker.io`` and ``index.docker.io`` are its names (exactly those, case-sensitively);
  ``library/`` is added to a one-component path on Docker Hub only. Docker Hub's registry endpoint,
  ``registry-1.docker.io``, is what `ImageRef.registry` holds for it; an explicit
  ``registry-1.docker.io/foo`` is left as Docker leaves it (``foo``, no ``library/``).
- Digests: a registered algorithm with its exact length of lower-case hex (sha256/64, sha384/96,
  sha512/128); a tag next to a digest is informational (the digest is pulled).
- A bare 64-hex string is refused (Docker reads it as an image id, not a name); ``<64 hex>:tag`` and
  ``docker.io/<64 hex>`` are names.

Where Docker's *grammar* accepts a host no pull can reach (a port outside 1-65535, a DNS label over 63
characters, bracketed hex that is no IPv6 address, or a first component with a '.' that fails the domain
grammar, which Docker then keeps as a name with an empty domain), regcred refuses the reference: Docker
fails too, only later, when it connects. Registry hosts are spelled as regcred talks to them: lower case,
IPv6 compressed, the port without leading zeros.

regcred's one extension: where a *regcred* setting (the ``regcred:images`` tag, ``--image``) names an image
without a registry host, the caller may pass the secret's registry as ``default_registry``. Job
definitions are always parsed with Docker's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RegistryError
from ..hosts import ipv6_text, split_host_port

__all__ = [
    "DIGEST_HEX_LENGTHS",
    "DOCKER_HUB",
    "DOCKER_HUB_NAMES",
    "ImageRef",
    "normalise_registry",
    "valid_digest",
]

# moby daemon/pkg/registry/config.go DefaultRegistryHost: where Docker pulls "docker.io" names from.
DOCKER_HUB = "registry-1.docker.io"
# The names Docker itself maps to Docker Hub: distribution/reference normalize.go defaultDomain and
# legacyDefaultDomain; moby config.go IndexName, IndexHostname (normalizeIndexName, lookupV2Endpoints).
DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io"})
_DOCKER_DOMAIN = "docker.io"
# go-digest v1.0.0 algorithm.go: the registered algorithms and their lengths of lower-case hex.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
# distribution/reference v0.6.0 reference.go RepositoryNameTotalLengthMax, checked on the path only
# (reference.go Parse; "Exclude domain from name length check", v0.6.0).
REPOSITORY_LENGTH_MAX = 255
# Longer text cannot be a reference regcred accepts (host <= 260, path 255, tag 128, digest 135).
_INPUT_LENGTH_MAX = 1024

# distribution/reference regexp.go: alphanumeric, separator, pathComponent, remoteName.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
# regexp.go tag: [\w][\w.-]{0,127} (Go's \w is ASCII).
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# regexp.go domainNameComponent, domainName, ipv6address, optionalPort, domainAndPort.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
# regexp.go digestPat (the syntax), then go-digest Validate (algorithm and length).
_DIGEST_SYNTAX_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}")
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")
# regexp.go identifier; normalize.go ParseNormalizedNamed refuses it as a name.
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_IMAGE_FORM = (
    "expected [registry[:port]/]repository[:tag][@sha256:<64 hex>], "
    "e.g. 'acme/app:1.2' or 'ghcr.io/acme/app@sha256:...'"
)
_REDACTED = "<redacted>"
_MESSAGE_LENGTH_MAX = 200


def valid_digest(text: str) -> bool:
    """A digest Docker accepts: registered algorithm, exact length, lower-case hex (go-digest Validate)."""
    if not isinstance(text, str) or _DIGEST_SYNTAX_RE.fullmatch(text) is None:
        return False
    algorithm, _, encoded = text.partition(":")
    want = DIGEST_HEX_LENGTHS.get(algorithm)
    return want is not None and len(encoded) == want and _LOWER_HEX_RE.fullmatch(encoded) is not None


def normalise_registry(text: str) -> str | None:
    """A registry host from *configuration* (a tag, a flag) as `ImageRef.registry` spells it.

    ``docker.io``, ``index.docker.io`` and ``registry-1.docker.io`` (any case, port 443 or none) are Docker
    Hub. None when ``text`` is not a valid host[:port]."""
    hp = split_host_port(text.strip()) if isinstance(text, str) else None
    if hp is None:
        return None
    host, port = hp
    if host in DOCKER_HUB_NAMES | {DOCKER_HUB} and port in (None, 443):
        return DOCKER_HUB
    return _netloc(host, port)


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{ipv6_text(host)}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _for_message(ref: str) -> str:
    """``ref`` quoted for an error message, never with anything that precedes a non-digest '@'.

    "user:password@host/repo" is a plausible slip: only an '@' followed by a valid digest (the last '@')
    keeps what is before it, and then only after any earlier '@'. Redaction comes before truncation, so
    that a cut can never drop the '@' and keep the secret."""
    text, suffix = ref, ""
    head, at, tail = ref.rpartition("@")
    if at and valid_digest(tail):
        text, suffix = head, at + tail
    if "@" in text:
        text = _REDACTED + "@" + text.rpartition("@")[2]
    shown = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text + suffix)
    if len(shown) > _MESSAGE_LENGTH_MAX:
        shown = shown[:_MESSAGE_LENGTH_MAX] + "..."
    return repr(shown)


def _is_domain(first: str) -> bool:
    # normalize.go splitDockerDomain: localhost, or a '.' or ':' in it, or any upper case. (Its exact
    # "index.docker.io" case is a domain by the '.' rule too.)
    return first == "localhost" or "." in first or ":" in first or first.lower() != first


def _registry_host(domain: str) -> str | None:
    """The host regcred talks to for Docker's domain of a reference (already matching _DOMAIN_RE)."""
    if domain in DOCKER_HUB_NAMES:
        # normalize.go splitDockerDomain maps index.docker.io to docker.io; moby pulls docker.io names
        # from DefaultRegistryHost (service_v2.go lookupV2Endpoints).
        return DOCKER_HUB
    # hosts.split_host_port: ports 1-65535, DNS labels of at most 63 characters, real IPv6 addresses.
    hp = split_host_port(domain)
    return None if hp is None else _netloc(*hp)


@dataclass(frozen=True)
class ImageRef:
    """A validated image reference: the registry host regcred talks to, the repository path, and the
    tag or digest to pull."""

    registry: str
    repository: str
    reference: str

    def __post_init__(self) -> None:
        # Validated here too, so that a directly constructed ImageRef cannot smuggle a path into a URL.
        if not isinstance(self.registry, str) or split_host_port(self.registry) is None:
            raise RegistryError(f"invalid registry {str(self.registry)[:100]!r}: expected host[:port]")
        if (
            not isinstance(self.repository, str)
            or len(self.repository) > REPOSITORY_LENGTH_MAX
            or _REPOSITORY_RE.fullmatch(self.repository) is None
        ):
            raise RegistryError(
                f"invalid repository {str(self.repository)[:100]!r}: expected lower-case path components "
                "like 'acme/app'"
            )
        if not isinstance(self.reference, str) or (
            _TAG_RE.fullmatch(self.reference) is None and not valid_digest(self.reference)
        ):
            raise RegistryError(
                f"invalid tag or digest {str(self.reference)[:100]!r}: expected a tag like '1.2' or "
                "sha256:<64 hex>"
            )

    @property
    def is_digest(self) -> bool:
        """Whether the reference pins a digest rather than naming a tag."""
        return ":" in self.reference

    @classmethod
    def parse(cls, ref: str, default_registry: str | None = None) -> ImageRef:
        """Parse ``[registry[:port]/]repository[:tag][@digest]`` as Docker does.

        ``default_registry`` (regcred settings only) is where a name without a registry host lives;
        None means Docker Hub, as for every image a job definition names. Raises `RegistryError`, whose
        message never quotes what precedes a non-digest '@'."""
        if not isinstance(ref, str):
            shown = type(ref).__name__
            raise RegistryError(f"invalid image reference of type {shown} (not a string): {_IMAGE_FORM}")

        def invalid(why: str) -> RegistryError:
            return RegistryError(f"invalid image reference {_for_message(ref)} ({why}): {_IMAGE_FORM}")

        if not ref:
            raise invalid("empty")
        if len(ref) > _INPUT_LENGTH_MAX:
            raise invalid(f"longer than {_INPUT_LENGTH_MAX} characters")
        # The grammar is printable ASCII without blanks (regexp.go; Go's classes are ASCII-only).
        if any(not 0x21 <= ord(c) < 0x7F for c in ref):
            raise invalid("blank, control or non-ASCII character")
        # normalize.go ParseNormalizedNamed: "cannot specify 64-byte hexadecimal strings".
        if _IDENTIFIER_RE.fullmatch(ref):
            raise invalid("a 64-hex image id, not a name")
        if default_registry is not None and not isinstance(default_registry, str):
            raise invalid("default registry is not a string")

        name, at, digest = ref.partition("@")
        # reference.go Parse: digestPat, then go-digest Parse (registered algorithm, length, lower-case hex).
        if at and not valid_digest(digest):
            if ":" not in digest or "/" in digest or "@" in digest:
                raise invalid("'@' must be followed by a digest; credentials belong in the secret")
            raise invalid("digest must be sha256, sha384 or sha512 with its length of lower-case hex")

        # normalize.go splitDockerDomain: only a name of several components can start with a registry host.
        first, slash, rest = name.partition("/")
        domain, remainder = (first, rest) if slash and _is_domain(first) else ("", name)

        # reference.go referencePat: ":" tag after the path; the path itself has no ':'.
        path, colon, tag = remainder.partition(":")
        if colon and _TAG_RE.fullmatch(tag) is None:
            raise invalid("bad tag")
        # normalize.go ParseNormalizedNamed: "repository name must be lowercase".
        if path.lower() != path:
            raise invalid("repository name must be lower case")

        if domain:
            if _DOMAIN_RE.fullmatch(domain) is None:
                raise invalid("bad registry host")
            registry = _registry_host(domain)
            if registry is None:
                raise invalid("bad registry host: a port, DNS label or IPv6 address no pull can use")
            on_docker_hub = domain in DOCKER_HUB_NAMES
        elif default_registry is None:
            registry, on_docker_hub = DOCKER_HUB, True
        else:
            normalised = normalise_registry(default_registry.split("://", 1)[-1].rstrip("/"))
            if normalised is None:
                raise invalid("bad default registry")
            registry, on_docker_hub = normalised, normalised == DOCKER_HUB

        # normalize.go splitDockerDomain: "library/" for a one-component path on docker.io, nowhere else.
        if on_docker_hub and "/" not in path:
            path = f"library/{path}"
        if _REPOSITORY_RE.fullmatch(path) is None:
            raise invalid("bad repository name")
        if len(path) > REPOSITORY_LENGTH_MAX:
            raise invalid(f"repository name longer than {REPOSITORY_LENGTH_MAX} characters")
        # normalize.go ParseDockerRef: with both, the digest is pulled and the tag dropped; else "latest".
        reference = digest if at else (tag if colon else "latest")
        return cls(registry=registry, repository=path, reference=reference)

    def __str__(self) -> str:
        sep = "@" if self.is_digest else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"
