"""WWW-Authenticate parsing (RFC 9110 §11.6.1) and image references: valid forms, hostile input,
and error messages that never quote a secret."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from regcred.errors import ChallengeParseError, RegistryError
from regcred.registry import (
    MAX_CHALLENGE_HEADER_LENGTH,
    Challenge,
    Credential,
    ImageRef,
    parse_www_authenticate,
)
from regcred.registry.challenge import bearer_error, redact_header

SECRET = "Zq9SECRETvalue7"  # never allowed in an error message


def one(header: str) -> Challenge:
    challenges = parse_www_authenticate(header)
    assert len(challenges) == 1
    return challenges[0]


# --- valid forms ------------------------------------------------------------------------------------


def test_docker_hub_challenge() -> None:
    c = one('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"')
    assert c == Challenge(
        "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"}
    )


def test_ghcr_challenge_with_scope() -> None:
    c = one('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/app:pull"')
    assert c.params == {
        "realm": "https://ghcr.io/token",
        "service": "ghcr.io",
        "scope": "repository:acme/app:pull",
    }


def test_distribution_basic_challenge() -> None:
    assert one('Basic realm="Registry Realm"') == Challenge("basic", {"realm": "Registry Realm"})


def test_rfc9110_multiple_challenges_with_escaped_quotes() -> None:
    # The example of RFC 9110 §11.6.1.
    header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    assert parse_www_authenticate(header) == [
        Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("basic", {"realm": "simple"}),
    ]


def test_rfc7617_basic_with_charset() -> None:
    assert one('Basic realm="foo", charset="UTF-8"').params == {"realm": "foo", "charset": "UTF-8"}


def test_rfc7616_digest_challenge() -> None:
    header = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    c = one(header)
    assert c.scheme == "digest"
    assert c.params["qop"] == "auth, auth-int"
    assert c.params["algorithm"] == "SHA-256"


def test_comma_inside_quoted_string_does_not_split() -> None:
    c = one('Bearer realm="https://r.example/token",scope="repository:a:pull,push"')
    assert c.params["scope"] == "repository:a:pull,push"


def test_escaped_backslash_and_arbitrary_escape() -> None:
    assert one(r'X p="a\\b\c"').params["p"] == "a\\bc"


def test_mixed_case_scheme_and_names_are_lowered_values_kept() -> None:
    c = one('BeArEr ReAlM="https://A.example/Token", SERVICE=Reg.Example')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://A.example/Token", "service": "Reg.Example"}


def test_whitespace_around_equals_and_commas() -> None:
    c = one('Bearer realm = "x" ,\tservice\t=\ty  ,  scope="s"')
    assert c.params == {"realm": "x", "service": "y", "scope": "s"}


def test_token68_forms() -> None:
    assert parse_www_authenticate("Negotiate YIIBhwYGKwYBBQUCoIIB+w/==, Basic realm=x") == [
        Challenge("negotiate", {}, "YIIBhwYGKwYBBQUCoIIB+w/=="),
        Challenge("basic", {"realm": "x"}),
    ]


def test_scheme_without_params() -> None:
    assert parse_www_authenticate("Negotiate, NTLM") == [Challenge("negotiate", {}), Challenge("ntlm", {})]


def test_several_header_values_and_empty_list_elements() -> None:
    got = parse_www_authenticate([', Basic realm="a",, ', 'Bearer realm="b", , service=s'])
    assert got == [Challenge("basic", {"realm": "a"}), Challenge("bearer", {"realm": "b", "service": "s"})]


def test_empty_inputs_give_no_challenges() -> None:
    assert parse_www_authenticate("") == []
    assert parse_www_authenticate([]) == []
    assert parse_www_authenticate(" , ,") == []


def test_empty_quoted_value_and_obs_text() -> None:
    assert one('Basic realm=""').params == {"realm": ""}
    assert one('Basic realm="caf\xe9"').params == {"realm": "caf\xe9"}


def test_header_at_the_length_cap_is_accepted() -> None:
    header = 'Bearer realm="https://r.example/t",service="' + "s" * 100 + '"'
    header += ", x=" + "y" * (MAX_CHALLENGE_HEADER_LENGTH - len(header) - 4)
    assert len(header) == MAX_CHALLENGE_HEADER_LENGTH
    assert one(header).params["service"] == "s" * 100


# --- malformed and hostile input --------------------------------------------------------------------

MALFORMED = [
    'realm="x"',  # param before any scheme
    '=x, Basic realm="a"',
    'Basic realm="unterminated',
    'Basic realm="ends with backslash\\',
    'Basic realm="x" Bearer realm="y"',  # missing comma
    'Basic realm="x"y',
    'Bearer realm="a", realm="b"',  # duplicate
    'Bearer realm="a", REALM="b"',  # duplicate, case-insensitively
    "Bearer realm=, service=x",
    "Bearer realm=a b",
    "Basic Bearer realm=x",
    "Basic\x00 realm=x",
    'Bearer realm="a\x00b"',
    "Bearer realm=x\r\nSet-Cookie: a=b",
    'Bearer realm="x\x7f"',
    "Bearer realm=\u2603",
    'Bearer realm="\u2603"',
    "Basic abc== def",
    "Negotiate abc==, realm=x",  # param after a token68 (new element, same challenge)
    '"quoted" realm=x',
    "Bearer (realm)=x",
    "Bearer realm==x",
    "Bearer;realm=x",
]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_headers_raise_challenge_parse_error(header: str) -> None:
    with pytest.raises(ChallengeParseError, match="WWW-Authenticate"):
        parse_www_authenticate(header)


def test_oversized_header_is_refused_without_quoting_it() -> None:
    header = 'Bearer realm="https://r.example/t", token="' + SECRET + "A" * MAX_CHALLENGE_HEADER_LENGTH + '"'
    with pytest.raises(ChallengeParseError, match="characters long") as err:
        parse_www_authenticate(header)
    assert SECRET not in str(err.value)
    assert len(str(err.value)) < 1000


def test_oversized_total_over_several_values_is_refused() -> None:
    values = ["Basic realm=" + "a" * 1000] * 17
    with pytest.raises(ChallengeParseError):
        parse_www_authenticate(values)


def test_too_many_header_values_are_refused() -> None:
    with pytest.raises(ChallengeParseError, match="too many"):
        parse_www_authenticate([""] * 1000)


def test_non_string_values_are_refused() -> None:
    with pytest.raises(ChallengeParseError):
        parse_www_authenticate([b"Basic realm=x"])  # type: ignore[list-item]


SECRET_BEARING = [
    f'Bearer realm="https://r.example/t", token="{SECRET}" junk',
    f"Bearer realm=x, access_token={SECRET} junk",
    f'Bearer realm=x, client_secret="{SECRET}", oops oops oops',
    f"Bearer realm=x, password={SECRET},,=",
    f'Bearer realm=x, signature="{SECRET}',  # unterminated
    f'Bearer realm="https://r.example/t?X-Amz-Signature={SECRET}" junk',
    f'Bearer realm="https://user:{SECRET}@r.example/t" junk',
    f"Bearer {SECRET} trailing",
    f"Basic {SECRET}== trailing",
    f"Basic {SECRET}= junk junk",  # token68 padding looks like a param to a lenient eye
    f'Bearer realm="a\\", token=\\"{SECRET}" x',  # escaped quotes hide a param in the realm
    f"Bearer realm=x, {SECRET}=value junk",
    f'{SECRET} realm="x" junk',
    f'Bearer realm="x", token="{SECRET}\x00"',
    f'Bearer realm="x", "{SECRET}"',
    f'Bearer realm="x" "{SECRET}',
]


@pytest.mark.parametrize("header", SECRET_BEARING)
def test_error_messages_never_contain_the_secret(header: str) -> None:
    with pytest.raises(ChallengeParseError) as err:
        parse_www_authenticate(header)
    message = str(err.value)
    assert SECRET not in message
    assert SECRET[:8] not in message
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__


def test_error_message_keeps_safe_context() -> None:
    with pytest.raises(ChallengeParseError) as err:
        parse_www_authenticate('Bearer realm="https://auth.example/token",service="reg" junk')
    message = str(err.value)
    assert "offset" in message
    assert "https://auth.example/token" in message
    assert "Bearer" in message


def _random_header(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + ' \t,="\\/+-._~!#$%&*^|`\x00\x01\x7f\xe9\u2603'
    # The secret only ever appears where a secret belongs: a secret-named param or a token68.
    pieces = ["Bearer ", "Basic ", "realm=", "service=", '"', ",", " ", "\\", "==", "token=" + SECRET]
    pieces += [f'password="{SECRET}"', f"Bearer {SECRET}", f"Basic {SECRET}==", f"signature={SECRET}"]
    out: list[str] = []
    for _ in range(rng.randint(0, 30)):
        if rng.random() < 0.5:
            out.append(rng.choice(pieces))
        else:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
    return "".join(out)


def test_fuzz_only_challenges_or_challenge_parse_errors() -> None:
    # Property: any input yields a list of challenges or ChallengeParseError, never another
    # exception, and an error message never carries the secret. Seeded to be reproducible.
    rng = random.Random(20240611)
    errors = 0
    for _ in range(4000):
        header = _random_header(rng)
        try:
            result = parse_www_authenticate(header)
        except ChallengeParseError as exc:
            errors += 1
            assert SECRET not in str(exc), header
            continue
        for challenge in result:
            assert challenge.scheme == challenge.scheme.lower()
            assert all(k == k.lower() for k in challenge.params)
    assert errors > 100  # the generator does produce malformed input


def test_fuzz_roundtrip_of_generated_valid_headers() -> None:
    # Property: rendering random challenges and parsing them back gives the same challenges.
    rng = random.Random(7)
    qdtext = string.ascii_letters + string.digits + " ,;=/:@!#$%&'()*+-.<>?[]^_`{|}~\t"
    for _ in range(500):
        expected: list[Challenge] = []
        rendered: list[str] = []
        for _ in range(rng.randint(1, 4)):
            scheme = rng.choice(["Bearer", "basic", "DIGEST", "x-custom"])
            if rng.random() < 0.2:
                t68 = "".join(rng.choice(string.ascii_letters + "+/") for _ in range(12)) + "=="
                expected.append(Challenge(scheme.lower(), {}, t68))
                rendered.append(f"{scheme} {t68}")
                continue
            params: dict[str, str] = {}
            parts: list[str] = []
            for i in range(rng.randint(0, 4)):
                name = rng.choice(["Realm", "service", "scope", "error", "p"]) + str(i)
                value = "".join(rng.choice(qdtext + '"\\') for _ in range(rng.randint(0, 15)))
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                params[name.lower()] = value
                parts.append(f'{name} = "{escaped}"' if rng.random() < 0.5 else f'{name}="{escaped}"')
            expected.append(Challenge(scheme.lower(), params))
            rendered.append(f"{scheme} {', '.join(parts)}" if parts else scheme)
        assert parse_www_authenticate(", ".join(rendered)) == expected


def test_parser_is_fast_on_pathological_input() -> None:
    import time

    started = time.perf_counter()
    for header in [
        '"' * 16000,
        "\\" * 16000,
        "a=" * 8000,
        "Basic " + "a," * 7000 + '"',
        "B " + "=" * 16000,
        "Basic realm=" + "/" * 16000 + " x",
        "Basic r=/," * 1600 + "=",
    ]:
        with pytest.raises(ChallengeParseError):
            parse_www_authenticate(header)
    assert time.perf_counter() - started < 1.0


# --- other projects' cases, and what real registries send (tests/unit/data/challenges.json) ----------

CORPUS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "challenges.json").read_text())[
    "cases"
]
REAL_REGISTRY = [c for c in CORPUS if c.get("real_registry")]


def _corpus_id(case: dict[str, Any]) -> str:
    text = " | ".join(case["headers"]).encode("unicode_escape").decode("ascii")
    return text if len(text) <= 70 else text[:67] + "..."


def _used(challenges: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The challenge a pull answers: Bearer if any, else Basic. Docker's authorizer tries its token handler
    before its basic one; regcred's check takes the same order (RegistryClient._challenge_flow)."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge["scheme"] == scheme:
                return challenge
    return None


def test_corpus_is_sourced() -> None:
    assert len(CORPUS) >= 60
    assert len(REAL_REGISTRY) >= 20
    for case in CORPUS:
        assert case["source"] and isinstance(case["headers"], list), case
        assert "docker" in case and "containerd" in case and "regcred" in case, case
        # Every difference from Docker is explained.
        if not case.get("note"):
            assert isinstance(case["regcred"], list), case
            assert [(c["scheme"], c["params"]) for c in case["regcred"]] == [
                (c["scheme"], c["params"]) for c in case["docker"]
            ], case


@pytest.mark.parametrize("case", CORPUS, ids=_corpus_id)
def test_corpus_header(case: dict[str, Any]) -> None:
    expected = case["regcred"]
    if isinstance(expected, dict):
        assert expected == {"error": True}
        with pytest.raises(ChallengeParseError, match="WWW-Authenticate"):
            parse_www_authenticate(case["headers"])
        return
    assert parse_www_authenticate(case["headers"]) == [
        Challenge(c["scheme"], c["params"], c.get("token68")) for c in expected
    ]


@pytest.mark.parametrize("case", REAL_REGISTRY, ids=_corpus_id)
def test_real_registry_header_reads_as_docker_reads_it(case: dict[str, Any]) -> None:
    parsed = [{"scheme": c.scheme, "params": c.params} for c in parse_www_authenticate(case["headers"])]
    mine, docker = _used(parsed), _used(case["docker"])
    assert mine is not None and docker is not None
    assert mine["scheme"] == docker["scheme"]
    for name in ("realm", "service", "scope"):
        if name == "realm" and mine["scheme"] == "basic" and "realm" not in docker["params"]:
            continue  # `Basic realm=/`: Docker drops a value it cannot read; Basic needs no realm
        # Docker drops an empty value (OCIR's scope=""): empty and absent are the same request.
        assert (mine["params"].get(name) or None) == (docker["params"].get(name) or None), name


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",error="insufficient_scope"',
            "insufficient_scope",
        ),
        (
            'Bearer realm="https://r/token",service=registry,scope="repository:a:pull",error=invalid_token',
            "invalid_token",
        ),
        ('Basic realm="x", Bearer realm="https://r/token",error="insufficient_scope"', "insufficient_scope"),
        ('Basic realm="x",error="insufficient_scope"', None),
        ('Bearer realm="https://r/token",error="Insufficient Scope"', None),
        ('Bearer realm="https://r/token",error="x", error="y"', None),
        ('Bearer realm="https://r/token"', None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_error(header: str | None, error: str | None) -> None:
    assert bearer_error(header) == error


def test_unquoted_slash_is_accepted_but_unquoted_urls_are_not() -> None:
    assert one("Basic realm=/").params == {"realm": "/"}
    assert one("Bearer realm=/token, service=a/b").params == {"realm": "/token", "service": "a/b"}
    for header in ("Bearer realm=https://r.example/token", "Bearer realm=a:b", "Bearer realm=/a?b"):
        with pytest.raises(ChallengeParseError):
            parse_www_authenticate(header)


def test_redact_header_shows_vocabulary_and_safe_values_only() -> None:
    shown = redact_header(
        f'Bearer realm="https://u:{SECRET}@r.example/t?sig={SECRET}",service="r.example",token="{SECRET}"'
    )
    assert SECRET not in shown
    assert shown.startswith('\'Bearer realm="https://<redacted>@r.example/t?<redacted>"')
    assert 'service="r.example"' in shown
    assert "token=<redacted>" in shown
    assert redact_header(f"Basic {SECRET}==") == "'Basic <redacted>=<redacted>'"
    assert len(redact_header("Basic realm=" + "x" * 5000, limit=100)) < 140


# --- Credential -------------------------------------------------------------------------------------


def test_credential_repr_and_str_hide_the_password() -> None:
    cred = Credential("svc", SECRET)
    assert SECRET not in repr(cred)
    assert SECRET not in str(cred)
    assert "svc" in repr(cred)


# --- ImageRef ---------------------------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "default", "expected"),
    [
        ("acme/app:1.2", "ghcr.io", ("ghcr.io", "acme/app", "1.2")),
        ("acme/app", "ghcr.io", ("ghcr.io", "acme/app", "latest")),
        (f"acme/app@{DIGEST}", "ghcr.io", ("ghcr.io", "acme/app", DIGEST)),
        (f"acme/app:1.2@{DIGEST}", "ghcr.io", ("ghcr.io", "acme/app", DIGEST)),
        ("ubuntu", "docker.io", ("registry-1.docker.io", "library/ubuntu", "latest")),
        ("ubuntu:22.04", "index.docker.io", ("registry-1.docker.io", "library/ubuntu", "22.04")),
        ("docker.io/ubuntu", "ghcr.io", ("registry-1.docker.io", "library/ubuntu", "latest")),
        ("index.docker.io/acme/app:v1", "x.example", ("registry-1.docker.io", "acme/app", "v1")),
        ("registry-1.docker.io/acme/app", "x.example", ("registry-1.docker.io", "acme/app", "latest")),
        ("localhost/app", "ghcr.io", ("localhost", "app", "latest")),
        ("localhost:5000/a/b/c:t_1", "ghcr.io", ("localhost:5000", "a/b/c", "t_1")),
        ("127.0.0.1:5000/app:1", "ghcr.io", ("127.0.0.1:5000", "app", "1")),
        ("Quay.IO/org/app", "ghcr.io", ("quay.io", "org/app", "latest")),
        ("[::1]:5000/app", "ghcr.io", ("[::1]:5000", "app", "latest")),
        ("app", "https://127.0.0.1:5000", ("127.0.0.1:5000", "app", "latest")),
        ("acme/app", "http://127.0.0.1:5000/", ("127.0.0.1:5000", "acme/app", "latest")),
        ("a.b-c/e--f", "ghcr.io", ("a.b-c", "e--f", "latest")),  # first component is a host
        ("org/a__b.c-d", "ghcr.io", ("ghcr.io", "org/a__b.c-d", "latest")),
    ],
)
def test_image_ref_parse(ref: str, default: str, expected: tuple[str, str, str]) -> None:
    image = ImageRef.parse(ref, default)
    assert (image.registry, image.repository, image.reference) == expected


def test_image_ref_str() -> None:
    assert str(ImageRef.parse("acme/app:1", "ghcr.io")) == "ghcr.io/acme/app:1"
    assert str(ImageRef.parse(f"acme/app@{DIGEST}", "ghcr.io")) == f"ghcr.io/acme/app@{DIGEST}"
    assert str(ImageRef.parse("busybox", "docker.io")) == "registry-1.docker.io/library/busybox:latest"


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "Acme/App",
        "acme/app:",
        "acme/app:-bad",
        "acme/app:" + "t" * 129,
        "acme//app",
        "/acme/app",
        "acme/app/",
        "acme/app@sha256:abc",
        "acme/app@sha256:" + "g" * 64,
        "acme/app@md5",
        "acme/app@a@b",
        "acme app",
        "acme/app:1\n",
        "ghcr.io:99999/app",
        "ghcr.io:port/app",
        "a" * 600,
        "-acme/app",
        "acme/../app",
    ],
)
def test_image_ref_invalid(ref: str) -> None:
    with pytest.raises(RegistryError, match=r"expected \[registry\[:port\]/\]repository"):
        ImageRef.parse(ref, "ghcr.io")


def test_image_ref_error_does_not_echo_userinfo() -> None:
    with pytest.raises(RegistryError) as err:
        ImageRef.parse(f"svc:{SECRET}@ghcr.io/acme/app", "ghcr.io")
    assert SECRET not in str(err.value)


def test_image_ref_direct_construction_is_validated() -> None:
    with pytest.raises(RegistryError):
        ImageRef("ghcr.io", "../../admin", "latest")
    with pytest.raises(RegistryError):
        ImageRef("ghcr.io/evil", "app", "latest")
    with pytest.raises(RegistryError):
        ImageRef("ghcr.io", "app", "x?y=1")
