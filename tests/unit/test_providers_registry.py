"""Providers are plug-ins: the built-ins and entry-point packages, what each declares, the settings a
secret's tags give it, and the admin secret fields it validates."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regcred import config, providers
from regcred.cli import main
from regcred.config import SecretConfig
from regcred.errors import ConfigurationError
from regcred.providers import AdminField, ProviderSpec, Setting, Strategy

BUILTIN = ("dockerhub", "gitlab", "harbor", "artifactory", "ghcr", "static")


@pytest.fixture
def plugin_package(tmp_path: Path) -> Iterator[Path]:
    """A real installed distribution (a dist-info with entry_points.txt on sys.path) that adds providers."""
    (tmp_path / "acme_regcred.py").write_text(
        textwrap.dedent(
            """
            from regcred.errors import ConfigurationError
            from regcred.hosts import Origin
            from regcred.providers import AdminField, ProviderPlugin, ProviderSpec, Setting, Strategy

            SPEC = ProviderSpec(
                name="acme",
                strategy=Strategy.OVERLAP,
                default_registry=Origin("https", "registry.acme.example", 443),
                default_api=Origin("https", "api.acme.example", 443),
                title="ACME in-house registry",
                credential="ACME robot tokens",
                admin_fields=(
                    AdminField("username", "the ACME admin"),
                    AdminField("password", "x", secret=True),
                ),
                settings=(Setting("team", "the ACME team", required=True),),
            )

            def build(ctx):
                return ("built", dict(ctx.settings), ctx.admin.username if ctx.admin else None)

            PLUGIN = ProviderPlugin(SPEC, build)
            NOT_A_PLUGIN = object()
            SHADOW = ProviderPlugin(
                ProviderSpec(
                    name="dockerhub", strategy=Strategy.OVERLAP, default_registry=None, default_api=None
                ),
                build,
            )

            def broken():
                raise RuntimeError("boom")
            """
        )
    )
    dist = tmp_path / "acme_regcred-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-regcred\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[regcred.providers]\n"
        "acme = acme_regcred:PLUGIN\n"
        "junk = acme_regcred:NOT_A_PLUGIN\n"
        "dockerhub = acme_regcred:SHADOW\n"
        "broken = acme_regcred:broken\n"
        "missing = acme_regcred_nowhere:PLUGIN\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        providers.plugins(reload=True)
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_regcred", None)
        providers.plugins(reload=True)


def test_the_builtins_are_registered_by_name() -> None:
    assert providers.known()[: len(BUILTIN)] == BUILTIN
    for name in BUILTIN:
        assert providers.spec_for(name).name == name
    with pytest.raises(ConfigurationError, match=r"unknown provider 'nope'.*known: dockerhub"):
        providers.spec_for("nope")


def test_an_entry_point_package_adds_a_provider_and_broken_ones_are_reported(plugin_package: Path) -> None:
    assert "acme" in providers.known()
    spec = providers.spec_for("acme")
    assert spec.title == "ACME in-house registry"
    # A plug-in never replaces a built-in, and one that fails to load leaves the others working.
    assert providers.spec_for("dockerhub").title == "Docker Hub"
    errors = providers.load_errors()
    assert set(errors) == {"junk", "dockerhub", "broken", "missing"}
    assert "not a regcred.providers.ProviderPlugin" in errors["junk"]
    assert "takes the name" in errors["dockerhub"]
    assert "RuntimeError" in errors["broken"]
    assert "ModuleNotFoundError" in errors["missing"]


def test_a_plugin_is_built_with_its_validated_settings_and_admin(plugin_package: Path) -> None:
    from regcred.routing import Deployment, route_of

    tags = {config.MANAGED: "true", config.PROVIDER: "acme", "regcred:team": "blue"}
    cfg = SecretConfig.from_tags(tags, "batch/acme")
    route = route_of(cfg, Deployment())
    assert route.registry.host == "registry.acme.example"
    built = providers.build(
        cfg,
        route,
        providers.AdminCredential({"username": "root", "password": "pw"}),
        transport=None,  # type: ignore[arg-type]
    )
    assert built == ("built", {"team": "blue"}, "root")
    missing = SecretConfig.from_tags({config.MANAGED: "true", config.PROVIDER: "acme"}, "batch/acme")
    with pytest.raises(ConfigurationError, match="needs the regcred:team tag"):
        providers.build(missing, route, providers.AdminCredential({}), transport=None)  # type: ignore[arg-type]


def test_the_providers_command_lists_plugins_and_their_facts(
    plugin_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["providers", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in report["providers"]}
    assert set(BUILTIN) | {"acme"} <= set(by_name)
    assert by_name["acme"]["default_registry"] == "https://registry.acme.example"
    assert by_name["acme"]["settings"][0]["flag"] == "--team"
    assert "broken" in report["plugin_errors"]
    assert main(["providers"]) == 0
    text = capsys.readouterr().out
    assert "acme" in text and "plug-in broken left out" in text


def test_every_builtin_declares_what_the_readme_table_shows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for item in report["providers"]:
        for key in ("title", "credential", "setup", "admin_permissions", "username_form", "hosts_note"):
            assert item[key], f"{item['name']} declares no {key}"
        assert item["strategy"] in ("overlap", "alternating", "import")
        assert item["can_mint"] is (item["strategy"] != "import")
        assert item["cannot"], f"{item['name']} says nothing about what regcred cannot do for it"
        if item["can_mint"]:
            assert [f["field"] for f in item["admin_secret"]][-1] == "password"
        else:
            assert item["admin_secret"] == []


def test_settings_are_checked_and_defaulted() -> None:
    spec = ProviderSpec(
        name="x",
        strategy=Strategy.OVERLAP,
        default_registry=None,
        default_api=None,
        settings=(
            Setting("kind", "the kind", choices=("a", "b"), default="a"),
            Setting("project", "a project path", pattern=r"[a-z/]+"),
        ),
    )

    def of(**tags: str) -> dict[str, str]:
        cfg = SecretConfig.from_tags(
            {config.MANAGED: "true", config.PROVIDER: "x", **{f"regcred:{k}": v for k, v in tags.items()}},
            "s",
        )
        return providers.settings_of(spec, cfg, secret_name="s")

    assert of() == {"kind": "a"}
    assert of(kind="b", project="acme/app") == {"kind": "b", "project": "acme/app"}
    with pytest.raises(ConfigurationError, match="regcred:kind tag of a x secret must be one of a, b"):
        of(kind="c")
    with pytest.raises(ConfigurationError, match="regcred:project tag of a x secret is not valid"):
        of(project="Acme App")


def _admin(sm: Any, value: Any) -> str:
    name = f"admin/{uuid.uuid4().hex[:6]}"
    sm.create_secret(
        Name=name,
        SecretString=value if isinstance(value, str) else json.dumps(value),
        Tags=[{"Key": config.ADMIN_MARK, "Value": "true"}, {"Key": config.ADMIN_FOR, "Value": "batch/*"}],
    )
    return name


def test_the_admin_secret_holds_the_fields_its_provider_declares(sm: Any) -> None:
    spec = ProviderSpec(
        name="vendorx",
        strategy=Strategy.OVERLAP,
        default_registry=None,
        default_api=None,
        admin_fields=(
            AdminField("username", "the user", required=False),
            AdminField("password", "a token with the api scope", secret=True),
        ),
    )
    good = _admin(sm, {"password": "tok-" + uuid.uuid4().hex})
    admin = providers.read_admin_credential(sm, good, secret_name="batch/x", spec=spec)
    assert admin.password.startswith("tok-") and admin.username == ""
    assert "tok-" not in repr(admin)
    missing = _admin(sm, {"username": "root"})
    with pytest.raises(ConfigurationError) as exc:
        providers.read_admin_credential(sm, missing, secret_name="batch/x", spec=spec)
    assert '"password" (a token with the api scope)' in str(exc.value)
    assert "vendorx admin secret" in str(exc.value)
    wrong = _admin(sm, {"password": 12})
    with pytest.raises(ConfigurationError, match='"password" must be a string'):
        providers.read_admin_credential(sm, wrong, secret_name="batch/x", spec=spec)


def test_the_readme_provider_table_is_what_the_providers_declare() -> None:
    import runpy

    script = runpy.run_path(str(Path(__file__).resolve().parents[2] / "scripts" / "provider_table.py"))
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = script["table"]()
    assert script["readme_table"](readme) == table, "run .venv/bin/python scripts/provider_table.py"
    for name in BUILTIN:
        assert f"| `{name}` (" in table
