"""The layer as `sam build` built it (SAM_TIER_BUILD_DIR): usable by every runtime it declares.

layers/regcred/Makefile installs the requirements' wheels once per runtime of the layer's
CompatibleRuntimes and merges the trees: pure-Python files once, extension modules side by side, one per
ABI (``_pydantic_core.cpython-311-x86_64-linux-gnu.so``, ``...-312-...``). So whatever Runtime the
functions get from a build or a deploy (command line, samconfig.toml, the template's default), the layer
has the compiled code of that runtime. These tests check the built artifact itself: every extension
module exists for every declared runtime, and the built functions' Runtime is one of them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devstack.cfn import load_template

pytestmark = pytest.mark.sam

# name.cpython-3XY-x86_64-linux-gnu.so (one ABI), name.abi3.so (every CPython since its build), name.so
EXTENSION = re.compile(r"(?P<stem>.+?)(\.cpython-(?P<abi>3[0-9]+)-x86_64-linux-gnu|\.abi3)?\.so\Z")
# __pycache__/module.cpython-3XY.pyc
BYTECODE = re.compile(r".+\.cpython-(?P<abi>3[0-9]+)(\.opt-[12])?\.pyc\Z")


def _abi(runtime: str) -> str:
    """python3.11 -> 311, the tag of CPython 3.11's extension modules and bytecode."""
    match = re.fullmatch(r"python3\.([0-9]+)", runtime)
    assert match, f"not a Python runtime: {runtime}"
    return f"3{match.group(1)}"


@pytest.fixture(scope="module")
def build_dir(harness: dict[str, str]) -> Path:
    return Path(harness["SAM_TIER_BUILD_DIR"])


@pytest.fixture(scope="module")
def built(build_dir: Path) -> dict[str, Any]:
    return load_template(build_dir / "template.yaml")


def _layers(built: dict[str, Any], build_dir: Path) -> dict[str, tuple[Path, list[str]]]:
    """Every layer of the built template: its built python/ directory and its CompatibleRuntimes."""
    out = {}
    for name, resource in built["Resources"].items():
        if resource["Type"] != "AWS::Serverless::LayerVersion":
            continue
        properties = resource["Properties"]
        python = build_dir / properties["ContentUri"] / "python"
        assert python.is_dir(), f"{name}: no built {python}"
        runtimes = properties["CompatibleRuntimes"]
        assert isinstance(runtimes, list) and runtimes, f"{name}: CompatibleRuntimes {runtimes!r}"
        assert all(isinstance(r, str) for r in runtimes), f"{name}: CompatibleRuntimes must be literal"
        out[name] = (python, runtimes)
    assert "RegcredLayer" in out
    return out


def _extension_modules(python: Path) -> dict[tuple[str, str], set[str]]:
    """(directory, module) -> the ABI tags of its files ("abi3" or "any" for untagged ones).
    Libraries a wheel vendors (top-level *.libs/ directories) are not modules."""
    modules: dict[tuple[str, str], set[str]] = {}
    for path in python.rglob("*.so"):
        relative = path.relative_to(python)
        if relative.parts[0].endswith(".libs"):
            continue
        match = EXTENSION.match(path.name)
        assert match, path
        tag = match.group("abi") or ("abi3" if path.name.endswith(".abi3.so") else "any")
        modules.setdefault((str(relative.parent), match.group("stem")), set()).add(tag)
    return modules


def test_every_extension_module_exists_for_every_compatible_runtime(
    built: dict[str, Any], build_dir: Path
) -> None:
    for name, (python, runtimes) in _layers(built, build_dir).items():
        by_abi = {_abi(r): r for r in runtimes}
        wanted = set(by_abi)
        modules = _extension_modules(python)
        if name == "RegcredLayer":
            # pydantic (the parser extra of Powertools) and wrapt (aws-xray-sdk) are compiled.
            assert ("pydantic_core", "_pydantic_core") in modules, sorted(modules)
        for (directory, stem), tags in sorted(modules.items()):
            where = f"{name}: {directory}/{stem}"
            if tags & {"abi3", "any"}:
                continue  # one file for every CPython
            lacking = sorted(by_abi[abi] for abi in wanted - tags)
            assert not lacking, f"{where} has no extension module for {', '.join(lacking)}"
            assert tags <= wanted, f"{where}: ABIs {sorted(tags - wanted)} of no declared runtime"


def test_bytecode_only_for_compatible_runtimes(built: dict[str, Any], build_dir: Path) -> None:
    for name, (python, runtimes) in _layers(built, build_dir).items():
        wanted = {_abi(r) for r in runtimes}
        stray = sorted(
            str(p.relative_to(python))
            for p in python.rglob("*.pyc")
            if not ((m := BYTECODE.match(p.name)) and m.group("abi") in wanted)
        )
        assert not stray, f"{name}: bytecode of no declared runtime: {stray[:5]}"


def _function_runtime(built: dict[str, Any], function: dict[str, Any]) -> Any:
    return function["Properties"].get("Runtime", built.get("Globals", {}).get("Function", {}).get("Runtime"))


def test_built_functions_runtime_is_compatible_with_their_layer(
    built: dict[str, Any], build_dir: Path, harness: dict[str, str]
) -> None:
    layers = _layers(built, build_dir)
    parameters = built.get("Parameters", {})
    functions = {n: r for n, r in built["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert {"RotateFunction", "RemediateFunction"} <= set(functions)
    for name, function in functions.items():
        runtime = _function_runtime(built, function)
        if isinstance(runtime, dict) and set(runtime) == {"Ref"}:
            # The parameter: what this tier built and invokes with (--parameter-overrides), what a
            # deploy without an override gets (its default), and whatever else a deploy may pass.
            parameter = parameters[runtime["Ref"]]
            candidates = {harness["SAM_TIER_RUNTIME"], parameter["Default"], *parameter["AllowedValues"]}
        else:
            assert isinstance(runtime, str), f"{name}: Runtime {runtime!r}"
            candidates = {runtime}
        # SAM adds a function's own Layers to those of Globals.
        layers_of = [*built.get("Globals", {}).get("Function", {}).get("Layers", [])]
        layers_of += function["Properties"].get("Layers", [])
        assert layers_of, f"{name}: no layer"
        for layer in layers_of:
            assert isinstance(layer, dict) and set(layer) == {"Ref"}, f"{name}: layer {layer!r}"
            compatible = layers[layer["Ref"]][1]
            assert candidates <= set(compatible), (
                f"{name}: Runtime {sorted(candidates - set(compatible))} not in "
                f"{layer['Ref']}'s CompatibleRuntimes {compatible}"
            )
