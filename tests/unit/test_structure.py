"""The shape of the codebase, as docs/ARCHITECTURE.md describes it: every rule here failed once."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "regcred" / "regcred"


def tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / p for p in listed if (ROOT / p).is_file()]


def library_modules() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def test_no_library_module_is_over_600_lines() -> None:
    long = {p.relative_to(ROOT): n for p in library_modules() if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


def test_nothing_outside_tests_imports_tests() -> None:
    importing = re.compile(r"^\s*(from|import)\s+tests(\.|\s|$)", re.M)
    offenders = [p.relative_to(ROOT) for p in tracked("*.py") if "tests" not in p.relative_to(ROOT).parts[:1]]
    assert [p for p in offenders if importing.search((ROOT / p).read_text())] == []


def test_argparse_lives_only_in_the_cli_package() -> None:
    users = [
        p.relative_to(LIBRARY)
        for p in library_modules()
        if re.search(r"^import argparse", p.read_text(), re.M)
    ]
    assert users and all(p.parts[0] == "cli" for p in users), users


def test_secrets_manager_is_called_only_by_the_store() -> None:
    # A boto3 client's methods (the Rotator's own create_secret step is not one).
    calls = re.compile(
        r"(?<!self)\.(describe_secret|get_secret_value|put_secret_value|update_secret_version_stage|create_secret|"
        r"rotate_secret|list_secrets|get_resource_policy)\("
    )
    code = [*library_modules(), *(ROOT / "functions").rglob("*.py")]
    offenders = [p.relative_to(ROOT) for p in code if p.name != "store.py" and calls.search(p.read_text())]
    assert offenders == []


def test_nothing_refers_to_files_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|/work/(main|shared)|DESIGN\.md|NOTES\.md|STYLE\.md|providers\.md")
    files = [p for p in tracked() if p.suffix in {".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".json", ""}]
    found = [
        p.relative_to(ROOT)
        for p in files
        if p != Path(__file__) and outside.search(p.read_text(errors="ignore"))
    ]
    assert found == []


def test_docstrings_point_at_sections_that_exist() -> None:
    architecture = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    headings = {m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", architecture, re.M)}
    pointer = re.compile(r'docs/ARCHITECTURE\.md,?\s+"([^"]+)"')
    missing = {
        (p.relative_to(ROOT), m.group(1))
        for p in [*library_modules(), *(ROOT / "functions").rglob("*.py")]
        for m in pointer.finditer(p.read_text().replace("\n", " "))
        if m.group(1) not in headings
    }
    assert missing == set()
