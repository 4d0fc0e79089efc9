"""Print the README's provider table from what each provider declares (`regcred providers`).

    .venv/bin/python scripts/provider_table.py          # the table, in Markdown
    .venv/bin/python scripts/provider_table.py --check  # exit 1 when README.md's table differs

tests/unit/test_providers_registry.py checks that README.md holds exactly this table."""

from __future__ import annotations

import sys
from pathlib import Path

from regcred import providers

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- provider-table:start -->", "<!-- provider-table:end -->"


def _hours(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400} d"
    return f"{seconds // 3600} h" if seconds else "none"


def table() -> str:
    rows = [
        "| provider | strategy | what to create at the vendor | admin permissions | lifetime "
        "| what regcred cannot do |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for plugin in providers.plugins().values():
        spec = plugin.spec
        if spec.name not in BUILTIN:
            continue  # plug-ins installed here are not regcred's
        life = spec.lifetime
        lifetime = f"min {_hours(life.min_s)}" + (f", max {_hours(life.max_s)}" if life.max_s else "")
        lifetime += ", may never expire" if life.never_expires else ""
        flags = " ".join(f"`--{s.name}`" for s in spec.settings)
        what = f"{spec.credential}. {spec.setup}" + (f" (flags: {flags})" if flags else "")
        rows.append(
            f"| `{spec.name}` ({spec.title}) | {spec.strategy.value} | {what} | {spec.admin_permissions} | "
            f"{lifetime} | {'; '.join(spec.cannot)} |"
        )
    return "\n".join(rows) + "\n"


BUILTIN = ("dockerhub", "gitlab", "harbor", "artifactory", "ghcr", "static")


def readme_table(text: str) -> str:
    _, _, rest = text.partition(START + "\n")
    body, _, _ = rest.partition(END)
    return body


def main(argv: list[str]) -> int:
    if "--check" in argv:
        if readme_table(README.read_text()) != table():
            print("README.md's provider table is out of date: run scripts/provider_table.py", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
