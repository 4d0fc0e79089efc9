"""Image references parsed as Docker parses them.

The data (tests/unit/data/image_references.json) holds inputs from other projects' test suites with
Docker's outcome for each (distribution/reference v0.6.0 ``ParseDockerRef``, what moby vendors), mapped to
the registry host regcred talks to; see its "about" and each case's "source" and "note"."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from regcred.errors import RegistryError
from regcred.registry import DOCKER_HUB, ImageRef, normalise_registry, valid_digest
from regcred.registry.reference import DIGEST_HEX_LENGTHS, DOCKER_HUB_NAMES

DATA = json.loads((Path(__file__).parent / "data" / "image_references.json").read_text())
CASES: list[dict[str, Any]] = DATA["cases"]
SECRET = "Zq9SECRETvalue7"
DIGEST = "sha256:" + "ab" * 32
MESSAGE_PREFIX = "invalid image reference "


def _case_id(case: dict[str, Any]) -> str:
    text = case["input"].encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else f"{text[:40]}...{text[-12:]}({len(case['input'])})"


def _echo(message: str) -> str:
    """The quoted input in an ImageRef.parse message: 'invalid image reference <echo> (<why>): <form>'."""
    assert message.startswith(MESSAGE_PREFIX), message
    return message.rsplit(" (", 1)[0][len(MESSAGE_PREFIX) :]


def _shown_after_redaction(message: str) -> str:
    """The echoed input after its '<redacted>@' (which must be there when something was hidden)."""
    echo = _echo(message)
    assert echo[1:].startswith("<redacted>@"), message
    return echo[1 + len("<redacted>@") :]


def _hidden_part(ref: str) -> str | None:
    """What must never be echoed: everything before the last '@' that does not introduce a valid digest.

    None when there is no such '@', or when the same text also follows it (and may be shown there)."""
    head, at, tail = ref.rpartition("@")
    text = head if at and valid_digest(tail) else ref
    before, at, _ = text.rpartition("@")
    shown = ref[len(before) + 1 :]
    return before if at and before not in shown else None


def test_data_is_large_and_sourced() -> None:
    inputs = [c["input"] for c in CASES]
    assert len(CASES) >= 150
    assert len(set(inputs)) == len(inputs)
    assert sum(1 for c in CASES if c.get("error")) >= 100
    assert sum(1 for c in CASES if not c.get("error")) >= 100
    for case in CASES:
        assert case["source"].split()[0].count("/") >= 1, case  # "owner/repo path ..."
        assert case.get("error") is True or {"registry", "repository", "reference"} <= case.keys(), case


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_reference_as_docker_parses_it(case: dict[str, Any]) -> None:
    ref = case["input"]
    if case.get("error"):
        with pytest.raises(RegistryError) as err:
            ImageRef.parse(ref)
        message = str(err.value)
        assert err.value.__cause__ is None
        assert all(0x20 <= ord(c) < 0x7F for c in message), message
        assert len(message) < 600
        hidden = _hidden_part(ref)
        if hidden:
            assert hidden not in _shown_after_redaction(message), message
        return
    image = ImageRef.parse(ref)
    assert (image.registry, image.repository, image.reference) == (
        case["registry"],
        case["repository"],
        case["reference"],
    )
    assert image.is_digest == ("@" in ref)
    # str() reads back as the same image where the host is recognisable as one: "Docker/x" is on host
    # "docker", but "docker/x" is Docker Hub's; "Docker.io/x" is not Docker Hub, but "docker.io/x" is.
    host = image.registry.partition(":")[0]
    if image.registry not in DOCKER_HUB_NAMES and (
        "." in image.registry or ":" in image.registry or host == "localhost"
    ):
        assert ImageRef.parse(str(image)) == image


# --- the rules, one by one ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("ubuntu", (DOCKER_HUB, "library/ubuntu", "latest")),
        ("docker.io/ubuntu", (DOCKER_HUB, "library/ubuntu", "latest")),
        ("index.docker.io/ubuntu", (DOCKER_HUB, "library/ubuntu", "latest")),
        ("docker.io/library/ubuntu", (DOCKER_HUB, "library/ubuntu", "latest")),
        ("docker.io/acme/app", (DOCKER_HUB, "acme/app", "latest")),
        ("acme/app", (DOCKER_HUB, "acme/app", "latest")),
        # Docker leaves these alone: no "library/", and a differently spelled host is another registry.
        ("registry-1.docker.io/ubuntu", (DOCKER_HUB, "ubuntu", "latest")),
        ("registry-1.docker.io/library/ubuntu", (DOCKER_HUB, "library/ubuntu", "latest")),
        ("Docker.io/ubuntu", ("docker.io", "ubuntu", "latest")),
        ("docker.io:443/ubuntu", ("docker.io:443", "ubuntu", "latest")),
        ("ghcr.io/ubuntu", ("ghcr.io", "ubuntu", "latest")),
    ],
)
def test_docker_hub_normalisation(ref: str, expected: tuple[str, str, str]) -> None:
    image = ImageRef.parse(ref)
    assert (image.registry, image.repository, image.reference) == expected


def test_repository_length_counts_the_path_only() -> None:
    # distribution/reference v0.6.0: 255 characters of path, after "library/", whatever the host.
    assert ImageRef.parse("x.io/" + "a" * 255).repository == "a" * 255
    assert ImageRef.parse("a" * 247).repository == "library/" + "a" * 247
    for ref in ("x.io/" + "a" * 256, "a" * 248, "acme/" + "a" * 251):
        with pytest.raises(RegistryError, match="longer than 255"):
            ImageRef.parse(ref)


@pytest.mark.parametrize(
    "digest",
    ["sha256:" + "0" * 64, "sha384:" + "0" * 96, "sha512:" + "0" * 128],
)
def test_registered_digests(digest: str) -> None:
    assert valid_digest(digest)
    assert ImageRef.parse(f"acme/app:1@{digest}").reference == digest
    algorithm = digest.split(":")[0]
    assert DIGEST_HEX_LENGTHS[algorithm] == len(digest) - len(algorithm) - 1


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 65,
        "sha384:" + "0" * 64,
        "sha512:" + "0" * 64,
        "sha256:" + "A" * 64,
        "SHA256:" + "0" * 64,
        "md5:" + "0" * 32,
        "blake3:" + "0" * 64,
        "sha256+b64:" + "0" * 64,
        "sha256:",
        "0" * 64,
        "",
    ],
)
def test_unregistered_or_malformed_digests(digest: str) -> None:
    assert not valid_digest(digest)
    with pytest.raises(RegistryError):
        ImageRef.parse(f"acme/app@{digest}")


def test_valid_digest_takes_only_strings() -> None:
    assert not valid_digest(b"sha256:" + b"0" * 64)  # type: ignore[arg-type]


def test_bare_identifier_is_refused_but_names_made_of_hex_are_not() -> None:
    hex64 = "0123456789abcdef" * 4
    with pytest.raises(RegistryError, match="64-hex image id"):
        ImageRef.parse(hex64)
    assert ImageRef.parse(f"{hex64}:tag").repository == f"library/{hex64}"
    assert ImageRef.parse(f"docker.io/{hex64}").repository == f"library/{hex64}"
    assert ImageRef.parse(hex64[:-1]).repository == f"library/{hex64[:-1]}"


def test_str_and_is_digest() -> None:
    assert str(ImageRef.parse("acme/app:1", "ghcr.io")) == "ghcr.io/acme/app:1"
    assert str(ImageRef.parse(f"acme/app:1@{DIGEST}", "ghcr.io")) == f"ghcr.io/acme/app@{DIGEST}"
    assert str(ImageRef.parse("[::1]:5000/app")) == "[::1]:5000/app:latest"
    assert ImageRef.parse(f"a@{DIGEST}").is_digest
    assert not ImageRef.parse("a:sha256").is_digest


# --- default_registry: a name without a registry host, on a given registry -------------------------


@pytest.mark.parametrize(
    ("ref", "default", "expected"),
    [
        ("acme/app", "ghcr.io", ("ghcr.io", "acme/app", "latest")),
        ("app", "ghcr.io", ("ghcr.io", "app", "latest")),  # no "library/" off Docker Hub
        ("app:1", "quay.io:8443", ("quay.io:8443", "app", "1")),
        (f"app:1@{DIGEST}", "GHCR.IO", ("ghcr.io", "app", DIGEST)),
        ("app", "https://127.0.0.1:5000/", ("127.0.0.1:5000", "app", "latest")),
        ("app", "[::1]:5000", ("[::1]:5000", "app", "latest")),
        ("localhost:5000", "ghcr.io", ("ghcr.io", "localhost", "5000")),  # one component: never a host
        # Docker Hub, however the setting spells it: "library/" for one component, as Docker adds it.
        ("app", "docker.io", (DOCKER_HUB, "library/app", "latest")),
        ("app", "index.docker.io", (DOCKER_HUB, "library/app", "latest")),
        ("app", "registry-1.docker.io", (DOCKER_HUB, "library/app", "latest")),
        ("app", "https://Registry-1.Docker.IO:443", (DOCKER_HUB, "library/app", "latest")),
        ("acme/app", "docker.io", (DOCKER_HUB, "acme/app", "latest")),
        # A registry host in the reference wins over the default.
        ("quay.io/acme/app", "ghcr.io", ("quay.io", "acme/app", "latest")),
        ("docker.io/app", "ghcr.io", (DOCKER_HUB, "library/app", "latest")),
        ("registry-1.docker.io/app", "ghcr.io", (DOCKER_HUB, "app", "latest")),
        ("localhost/app", "ghcr.io", ("localhost", "app", "latest")),
        ("Acme/app", "ghcr.io", ("acme", "app", "latest")),  # upper case: a host, as in Docker
    ],
)
def test_default_registry(ref: str, default: str, expected: tuple[str, str, str]) -> None:
    image = ImageRef.parse(ref, default_registry=default)
    assert (image.registry, image.repository, image.reference) == expected


def test_default_registry_none_is_docker_hub() -> None:
    assert ImageRef.parse("app", None) == ImageRef.parse("app", "docker.io") == ImageRef.parse("app")


def test_default_registry_length_counts_library_only_on_docker_hub() -> None:
    assert ImageRef.parse("a" * 250, "ghcr.io").repository == "a" * 250
    with pytest.raises(RegistryError, match="longer than 255"):
        ImageRef.parse("a" * 250, "docker.io")


@pytest.mark.parametrize(
    "default", ["", "not a host", "ghcr.io/path", "ghcr.io:99999", "[fe80::1%eth0]", 5, b"x"]
)
def test_bad_default_registry_is_a_registry_error(default: Any) -> None:
    with pytest.raises(RegistryError, match="default registry"):
        ImageRef.parse("acme/app", default_registry=default)


def test_default_registry_is_ignored_when_the_reference_names_its_host() -> None:
    # Even a bad default: the reference does not need it.
    assert ImageRef.parse("ghcr.io/acme/app", "not a host").registry == "ghcr.io"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker.io", DOCKER_HUB),
        ("INDEX.docker.io", DOCKER_HUB),
        ("registry-1.docker.io:443", DOCKER_HUB),
        ("docker.io:5000", "docker.io:5000"),
        (" ghcr.io ", "ghcr.io"),
        ("[0:0::1]:5000", "[::1]:5000"),
        ("[::FFFF:192.0.2.1]", "[::ffff:c000:201]"),  # the spelling image references use, on any Python
        ("ghcr.io/x", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_registry(text: Any, expected: str | None) -> None:
    assert normalise_registry(text) == expected


# --- errors: always RegistryError, never echoing what precedes a non-digest '@' -------------------


@pytest.mark.parametrize(
    "ref",
    [
        f"svc:{SECRET}@ghcr.io/acme/app",
        f"svc:{SECRET}@ghcr.io/acme/app:1",
        f"svc:{SECRET}@ghcr.io/acme/app@{DIGEST}",
        f"svc:{SECRET}@localhost:5000/app",
        f"svc:{SECRET}@ghcr.io:443",
        f"https://svc:{SECRET}@ghcr.io/v2/acme/app",
        f"{SECRET}@{SECRET[::-1]}@ghcr.io/app",
        f"acme/app:{SECRET}@sha256:abc",
        f"svc:{SECRET}" + "x" * 300 + "@ghcr.io/app",  # the '@' beyond the echoed length
        f"svc:{SECRET}\u00e9@ghcr.io/app",  # non-ASCII: refused before parsing
        f"svc:{SECRET} @ghcr.io/app",
        f"svc:{SECRET}@ghcr.io/app" + "x" * 2000,  # too long
    ],
)
def test_error_never_echoes_what_precedes_a_non_digest_at(ref: str) -> None:
    with pytest.raises(RegistryError) as err:
        ImageRef.parse(ref)
    message = str(err.value)
    assert SECRET not in message
    assert SECRET[:6] not in message
    assert SECRET[::-1] not in message or ref.startswith(SECRET)
    assert "<redacted>@" in message


def test_error_keeps_context_when_there_is_nothing_to_hide() -> None:
    with pytest.raises(RegistryError) as err:
        ImageRef.parse("ghcr.io/acme/App:1")
    assert "'ghcr.io/acme/App:1'" in str(err.value)
    assert "lower case" in str(err.value)
    with pytest.raises(RegistryError) as err:
        ImageRef.parse("ghcr.io/acme/app@sha256:" + "A" * 64)
    assert "ghcr.io/acme/app@sha256:AAAA" not in str(err.value)  # not a valid digest: the name is hidden


@pytest.mark.parametrize("ref", [None, 5, b"ubuntu", ["ubuntu"], object()])
def test_non_string_reference_is_a_registry_error(ref: Any) -> None:
    with pytest.raises(RegistryError, match="not a string"):
        ImageRef.parse(ref)


def test_fuzz_only_image_refs_or_registry_errors() -> None:
    # Property: any input yields a valid ImageRef (one that round-trips through its own validation) or a
    # RegistryError whose message is printable and never carries what precedes a non-digest '@'.
    rng = random.Random(20240917)
    alphabet = string.ascii_letters + string.digits + "._-/:@[]%+ \t\x00\u00e9"
    pieces = [
        "docker.io/",
        "localhost:5000/",
        "[::1]:5000/",
        "ghcr.io/",
        "library/",
        ":tag",
        "@",
        DIGEST,
        "a" * 64,
    ]
    parsed = errors = 0
    for _ in range(3000):
        out = []
        for _ in range(rng.randint(0, 8)):
            if rng.random() < 0.4:
                out.append(rng.choice(pieces))
            else:
                out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
        ref = "".join(out)
        try:
            image = ImageRef.parse(ref, default_registry=rng.choice([None, "ghcr.io", "docker.io"]))
        except RegistryError as exc:
            errors += 1
            hidden = _hidden_part(ref)
            if hidden:
                assert hidden not in _shown_after_redaction(str(exc)), ref
            assert all(0x20 <= ord(c) < 0x7F for c in str(exc))
            continue
        parsed += 1
        assert ImageRef(image.registry, image.repository, image.reference) == image
    assert parsed > 100
    assert errors > 100


def test_direct_construction_is_validated() -> None:
    for registry, repository, reference in [
        ("ghcr.io", "../../admin", "latest"),
        ("ghcr.io/evil", "app", "latest"),
        ("ghcr.io", "app", "x?y=1"),
        ("ghcr.io", "a" * 256, "latest"),
        ("ghcr.io", "app", "sha256:" + "0" * 63),
        (5, "app", "latest"),
    ]:
        with pytest.raises(RegistryError):
            ImageRef(registry, repository, reference)  # type: ignore[arg-type]
    assert ImageRef("ghcr.io", "a" * 255, "sha512:" + "0" * 128).is_digest
