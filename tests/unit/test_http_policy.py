"""The destination, redirect and link rules of regcred's transport (`regcred.http.policy`): pure functions,
no sockets. tests/integration/test_transport.py proves the transport applies them on real connections."""

from __future__ import annotations

import ipaddress

import pytest

from regcred.errors import DestinationRefused
from regcred.hosts import Origin
from regcred.http import policy

REGISTRY = Origin("https", "registry.example", 443)
LOCAL = Origin("http", "127.0.0.1", 5000)
LOCAL_TLS = Origin("https", "registry.test", 8443)
LOCALS = frozenset({LOCAL, LOCAL_TLS})


def refusal(address: str, *, loopback_ok: bool = False) -> str | None:
    return policy.address_refusal(ipaddress.ip_address(address), loopback_ok=loopback_ok)


# --- where: https only, plain http only to a configured loopback IP literal ---------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://registry.example/v2/", REGISTRY),
        ("HTTPS://Registry.Example:443/v2/?q=1#frag", REGISTRY),
        ("https://ghcr.io:8443/", Origin("https", "ghcr.io", 8443)),
        ("https://[2606:4700::1111]/", Origin("https", "2606:4700::1111", 443)),
        ("http://127.0.0.1:5000/v2/", LOCAL),
        ("https://registry.test:8443/v2/", LOCAL_TLS),
    ],
)
def test_allowed_destinations(url: str, expected: Origin) -> None:
    assert policy.check_destination(url, local_origins=LOCALS) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://registry.example/v2/",  # a remote host over plain http
        "http://10.0.0.5:5000/v2/",
        "http://127.0.0.1:5001/v2/",  # loopback, but not the configured port
        "http://127.0.0.2:5000/v2/",  # loopback, but not the configured host
        "http://localhost:5000/v2/",  # a name, not an IP literal
        "http://registry.test:8443/v2/",  # the configured local origin is https, not http
    ],
)
def test_plain_http_is_refused_unless_a_configured_loopback_literal(url: str) -> None:
    locals_with_localhost = LOCALS | {Origin("http", "localhost", 5000)}
    with pytest.raises(DestinationRefused, match="plain http"):
        policy.check_destination(url, local_origins=locals_with_localhost)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://registry.example/",
        "file:///etc/passwd",
        "registry.example/v2/",
        "/v2/",
        "https://",
        "https://registry.example:0/",
        "https://registry.example:99999/",
        "https://[fe80::1%25eth0]/",
        "https://reg istry.example/",
        "https://registry.example./",
    ],
)
def test_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(DestinationRefused, match="not an absolute http"):
        policy.check_destination(url, local_origins=LOCALS)


def test_user_info_is_refused_and_never_echoed() -> None:
    with pytest.raises(DestinationRefused) as err:
        policy.check_destination(
            "https://svc:ui-Pa55word-never-shown@registry.example/v2/?token=q-never-shown",
            local_origins=LOCALS,
        )
    message = str(err.value)
    assert "registry.example" in message
    assert "ui-Pa55word-never-shown" not in message and "svc:" not in message
    assert "q-never-shown" not in message


@pytest.mark.parametrize(
    "host",
    [
        "2852039166",  # 169.254.169.254, decimal
        "0xa9fea9fe",  # hex
        "0XA9FEA9FE",
        "0251.0376.0251.0376",  # octal
        "169.254.43518",  # short forms
        "169.16689662",
        "0xa9.0xfe.0xa9.0xfe",
        "2130706433",  # 127.0.0.1
        "127.1",
        "0x7f.1",
        "0",
    ],
)
def test_numeric_host_spellings_are_refused(host: str) -> None:
    assert policy.numeric_spelling(host)
    for scheme in ("https", "http"):
        local = frozenset({Origin(scheme, host, 443)})
        with pytest.raises(DestinationRefused, match="non-canonical spelling"):
            policy.check_destination(f"{scheme}://{host}/latest/meta-data/", local_origins=local)


@pytest.mark.parametrize(
    "host",
    ["registry.example", "1e100.net", "0x.example", "ghcr.io", "08.1.1.1", "1.2.3.4.5", "169.254.169.254"],
)
def test_real_names_and_canonical_literals_are_not_numeric_spellings(host: str) -> None:
    assert not policy.numeric_spelling(host)


# --- which addresses --------------------------------------------------------------------------------

METADATA = [
    "169.254.169.254",
    "169.254.170.2",
    "169.254.170.23",
    "fd00:ec2::254",
    "fd00:ec2::23",
    "100.100.100.200",
    "192.0.0.192",
]
IPV6_FORMS_OF_METADATA = [
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:a9fe:aa02",  # IPv4-mapped 169.254.170.2
    "::169.254.169.254",  # IPv4-compatible
    "::ffff:0:a9fe:a9fe",  # IPv4-translated
    "64:ff9b::a9fe:a9fe",  # NAT64
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
    "2002:a9fe:a9fe::1",  # 6to4
    "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client 169.254.169.254
]


@pytest.mark.parametrize("address", METADATA)
def test_metadata_endpoints_are_refused(address: str) -> None:
    assert refusal(address) == "a cloud metadata endpoint"
    assert refusal(address, loopback_ok=True) == "a cloud metadata endpoint"


@pytest.mark.parametrize("address", IPV6_FORMS_OF_METADATA)
def test_ipv6_forms_of_metadata_endpoints_are_refused(address: str) -> None:
    why = refusal(address, loopback_ok=True)
    assert why is not None
    assert "metadata" in why or "link-local" in why


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.0.1", "link-local"),
        ("169.254.255.254", "link-local"),
        ("fe80::1", "link-local"),
        ("febf:ffff::1", "link-local"),
        ("fec0::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("64:ff9b::e000:1", "multicast"),
    ],
)
def test_link_local_unspecified_multicast_are_refused(address: str, kind: str) -> None:
    for loopback_ok in (False, True):
        why = refusal(address, loopback_ok=loopback_ok)
        assert why is not None and kind in why


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1"])
def test_loopback_only_when_the_destination_is_configured_loopback(address: str) -> None:
    assert refusal(address, loopback_ok=True) is None
    why = refusal(address, loopback_ok=False)
    assert why is not None and "loopback" in why


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1"])
def test_loopback_never_hides_behind_an_ipv6_form(address: str) -> None:
    for loopback_ok in (False, True):
        why = refusal(address, loopback_ok=loopback_ok)
        assert why is not None and "loopback" in why


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "10.0.0.5", "192.168.1.1", "2606:4700::1111", "64:ff9b::808:808"]
)
def test_ordinary_addresses_are_allowed(address: str) -> None:
    assert refusal(address) is None


def test_scoped_ipv6_addresses_are_judged_without_their_zone() -> None:
    assert refusal("fe80::1%eth0") == "a link-local address"
    assert refusal("fd00:ec2::254%1") == "a cloud metadata endpoint"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("https://169.254.170.2/v2/credentials", "metadata"),
        ("https://[::ffff:169.254.169.254]/", "169.254.169.254"),
        ("https://[64:ff9b::a9fe:a9fe]/", "metadata"),
        ("https://[2002:a9fe:a9fe::]/", "metadata"),
        ("https://169.254.10.10/", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://224.0.0.251/", "multicast"),
        ("https://127.0.0.1/v2/", "loopback"),
        ("https://[::1]:5000/v2/", "loopback"),
    ],
)
def test_ip_literal_destinations_are_checked_before_resolution(url: str, why: str) -> None:
    with pytest.raises(DestinationRefused) as err:
        policy.check_destination(url, local_origins=LOCALS)
    message = str(err.value)
    assert why in message or (why == "169.254.169.254" and "metadata" in message)


def test_metadata_literal_is_refused_even_when_configured_as_local() -> None:
    imds = Origin("http", "169.254.169.254", 80)
    with pytest.raises(DestinationRefused):
        policy.check_destination("http://169.254.169.254/latest/meta-data/", local_origins=frozenset({imds}))


def test_embedded_ipv4() -> None:
    def embedded(address: str) -> list[str]:
        return [str(a) for a in policy.embedded_ipv4(ipaddress.ip_address(address))]

    assert embedded("::ffff:169.254.169.254") == ["169.254.169.254"]
    assert embedded("64:ff9b::a9fe:a9fe") == ["169.254.169.254"]
    assert embedded("2002:a9fe:a9fe::1") == ["169.254.169.254"]
    assert "169.254.169.254" in embedded("2001:0:4136:e378:8000:63bf:5601:5601")
    assert embedded("2606:4700::1111") == []
    assert embedded("8.8.8.8") == []


def test_loopback_allowed_only_for_configured_origins() -> None:
    assert policy.loopback_allowed(LOCAL, LOCALS)
    assert policy.loopback_allowed(LOCAL_TLS, LOCALS)
    assert not policy.loopback_allowed(REGISTRY, LOCALS)
    assert not policy.loopback_allowed(Origin("http", "127.0.0.1", 5001), LOCALS)


# --- redirects --------------------------------------------------------------------------------------


def test_same_origin_redirect_keeps_credentials() -> None:
    target = policy.redirect(
        REGISTRY,
        "https://registry.example/v2/acme/app/manifests/old",
        "/v2/acme/app/manifests/1.0#frag",
        repeatable=True,
        credentials_origin=REGISTRY,
    )
    assert target.url == "https://registry.example/v2/acme/app/manifests/1.0"
    assert target.origin == REGISTRY
    assert target.keep_credentials


@pytest.mark.parametrize(
    "location",
    [
        "https://storage.example/blob?sig=x",  # another host
        "https://registry.example:8443/v2/",  # another port
        "//cdn.example/blob",  # scheme-relative: another host
        "https://REGISTRY.example.evil/v2/",
    ],
)
def test_cross_origin_redirect_drops_credentials(location: str) -> None:
    target = policy.redirect(
        REGISTRY, "https://registry.example/v2/", location, repeatable=True, credentials_origin=REGISTRY
    )
    assert not target.keep_credentials
    assert target.origin != REGISTRY


def test_credentials_are_never_restored_on_a_hop_back() -> None:
    # After a hop elsewhere the request carries no credential (credentials_origin None): a redirect back to
    # the credential's own origin does not re-arm it.
    back = policy.redirect(
        Origin("https", "storage.example", 443),
        "https://storage.example/bounce",
        "https://registry.example/token",
        repeatable=True,
        credentials_origin=None,
    )
    assert back.origin == REGISTRY
    assert not back.keep_credentials


def test_a_request_that_is_not_repeatable_is_never_redirected() -> None:
    with pytest.raises(DestinationRefused, match="never sent again"):
        policy.redirect(
            REGISTRY,
            "https://registry.example/v2/access-tokens",
            "/v2/access-tokens/2",
            repeatable=False,
            credentials_origin=REGISTRY,
        )


@pytest.mark.parametrize(
    ("current", "current_url", "location"),
    [
        (REGISTRY, "https://registry.example/v2/", "http://registry.example/v2/"),
        (LOCAL_TLS, "https://registry.test:8443/v2/", "http://127.0.0.1:5000/v2/"),
    ],
)
def test_https_to_http_is_refused(current: Origin, current_url: str, location: str) -> None:
    with pytest.raises(DestinationRefused, match="https to plain http"):
        policy.redirect(current, current_url, location, repeatable=True, credentials_origin=None)


@pytest.mark.parametrize(
    "location",
    [
        "https://127.0.0.1/token",
        "https://127.0.0.2:8443/token",
        "https://[::1]/token",
        "https://localhost/token",
        "https://registry.test:8443/token",  # a configured local origin is loopback too
    ],
)
def test_remote_origin_never_redirects_into_loopback(location: str) -> None:
    with pytest.raises(DestinationRefused, match="into loopback"):
        policy.redirect(
            REGISTRY,
            "https://registry.example/token",
            location,
            repeatable=True,
            credentials_origin=None,
            local_origins=LOCALS,
        )


def test_loopback_may_redirect_within_loopback() -> None:
    target = policy.redirect(
        LOCAL,
        "http://127.0.0.1:5000/token",
        "http://127.0.0.2:5001/token",
        repeatable=True,
        credentials_origin=LOCAL,
        local_origins=LOCALS,
    )
    assert target.origin == Origin("http", "127.0.0.2", 5001)
    assert not target.keep_credentials


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://registry.example/x", "javascript:alert(1)", "https://u:p@evil.example/"],
)
def test_redirect_to_a_non_http_url_is_refused(location: str) -> None:
    with pytest.raises(DestinationRefused, match="not an http"):
        policy.redirect(
            REGISTRY, "https://registry.example/v2/", location, repeatable=True, credentials_origin=REGISTRY
        )


# --- links a server hands out (pagination) ----------------------------------------------------------

API = Origin("https", "hub.docker.com", 443)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/v2/access-tokens?page=2", "https://hub.docker.com/v2/access-tokens?page=2"),
        ("https://hub.docker.com/v2/access-tokens?page=2", "https://hub.docker.com/v2/access-tokens?page=2"),
        ("https://hub.docker.com:443/v2/x?page=3#top", "https://hub.docker.com:443/v2/x?page=3"),
        ("HTTPS://HUB.DOCKER.COM/v2/x", "https://HUB.DOCKER.COM/v2/x"),
        ("  ?page=4", "https://hub.docker.com/?page=4"),
    ],
)
def test_same_origin_links_are_followed(link: str, expected: str) -> None:
    assert policy.same_origin_link(API, link) == expected


def test_relative_links_resolve_against_the_request_url() -> None:
    link = policy.same_origin_link(API, "?page=2", base_url="https://hub.docker.com/v2/access-tokens")
    assert link == "https://hub.docker.com/v2/access-tokens?page=2"


@pytest.mark.parametrize(
    "link",
    [
        "http://hub.docker.com/v2/access-tokens?page=2",  # scheme
        "https://hub.docker.com:8443/v2/access-tokens?page=2",  # port
        "https://evil.example/v2/access-tokens?page=2",  # host
        "//evil.example/v2/access-tokens",
        "https://hub.docker.com.evil.example/v2/",
        "https://admin:pw@hub.docker.com/v2/",
        "https://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
def test_links_that_leave_the_origin_are_refused(link: str) -> None:
    with pytest.raises(DestinationRefused, match="must stay on it") as err:
        policy.same_origin_link(API, link)
    assert "pw@" not in str(err.value)
