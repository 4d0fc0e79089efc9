"""events/: every sample is documented, and env.json names only functions the template has."""

from __future__ import annotations

import json
from pathlib import Path

from devstack.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def template_functions() -> set[str]:
    resources = load_template()["Resources"]
    return {name for name, resource in resources.items() if resource["Type"] == "AWS::Serverless::Function"}


def test_every_sample_is_listed_in_the_readme_with_its_function() -> None:
    readme = (EVENTS / "README.md").read_text()
    functions = template_functions()
    for path in EVENTS.glob("*.json"):
        row = next((line for line in readme.splitlines() if f"`{path.name}`" in line), None)
        assert row, f"{path.name} is not in events/README.md"
        if path.name == "env.json":
            continue
        if path.name.startswith("sweep_") and "SweepFunction" not in functions:
            assert "SweepFunction (not in the template yet)" in row
            continue
        assert any(f"| {name} |" in row for name in functions), f"{path.name}: no function named"


def test_env_json_names_template_functions() -> None:
    env = json.loads((EVENTS / "env.json").read_text())
    assert set(env) <= template_functions()
    assert {"RotateFunction", "RemediateFunction"} <= template_functions()
