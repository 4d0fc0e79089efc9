"""samconfig.toml, and the local recipes of the README and the scripts.

- Every environment's build and deploy give the functions a Runtime the layer is built for. SAM takes a
  command's parameter_overrides from its own section, else from the environment's global section (the
  whole list: a command's list replaces the global one, it is not merged), else the template's default;
  a --parameter-overrides on the command line replaces both. The layer's Makefile never sees any of it,
  so the layer carries every allowed Runtime (tests/unit/test_template.py) and these tests check that
  nothing in samconfig.toml picks one outside them.
- [default], what a bare `sam deploy` does, is safe for production; the development shortcuts live in
  a named [dev] environment; [prod] is [default] under another name.
- Nothing the local recipes start binds beyond loopback.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from devstack.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = ROOT / "samconfig.toml"
COMMANDS = ("build", "deploy")
# What only a development stack may have (template parameter -> value).
DEV_SHORTCUTS = {"LogLevel": "DEBUG", "GracePeriod": "1h", "RotationSchedule": "rate(4 hours)"}


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _environments(config: dict[str, Any]) -> list[str]:
    return [name for name, value in config.items() if isinstance(value, dict)]


def _parameters(config: dict[str, Any], env: str, command: str) -> dict[str, Any]:
    return dict(config.get(env, {}).get(command, {}).get("parameters", {}))


def parse_overrides(value: str | list[str]) -> dict[str, str]:
    """parameter_overrides as SAM reads them: a list of Key=Value, or one string of them separated by
    spaces (values quoted as in a shell), or the ParameterKey=K,ParameterValue=V form."""
    items = shlex.split(value) if isinstance(value, str) else list(value)
    out = {}
    for item in items:
        long_form = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", item)
        if long_form:
            key, raw = long_form.groups()
        else:
            key, sep, raw = item.partition("=")
            assert sep, f"not Key=Value: {item!r}"
        out[key] = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'" else raw
    return out


def overrides_for(config: dict[str, Any], env: str, command: str) -> dict[str, str]:
    """The parameter overrides `sam COMMAND --config-env ENV` applies without command-line overrides."""
    for section in (command, "global"):
        parameters = _parameters(config, env, section)
        if "parameter_overrides" in parameters:
            return parse_overrides(parameters["parameter_overrides"])
    return {}


def runtime_for(config: dict[str, Any], env: str, command: str, template: dict[str, Any]) -> str:
    runtime = overrides_for(config, env, command).get("Runtime", template["Parameters"]["Runtime"]["Default"])
    assert isinstance(runtime, str)
    return runtime


def _compatible(template: dict[str, Any]) -> list[str]:
    runtimes = template["Resources"]["RegcredLayer"]["Properties"]["CompatibleRuntimes"]
    assert isinstance(runtimes, list) and all(isinstance(r, str) for r in runtimes), runtimes
    return runtimes


def test_every_environment_builds_and_deploys_a_runtime_the_layer_serves(
    samconfig: dict[str, Any], template: dict[str, Any]
) -> None:
    envs = _environments(samconfig)
    assert {"default", "dev"} <= set(envs)
    compatible = _compatible(template)
    for env in envs:
        for command in COMMANDS:
            runtime = runtime_for(samconfig, env, command, template)
            assert runtime in template["Parameters"]["Runtime"]["AllowedValues"], (env, command, runtime)
            assert runtime in compatible, f"[{env}] sam {command}: Runtime {runtime} not in {compatible}"


def test_runtime_lookup_follows_sam(template: dict[str, Any]) -> None:
    """The case of the issue: build and deploy take the Runtime from different places."""
    config = {
        "default": {
            "global": {"parameters": {"parameter_overrides": "Runtime=python3.12 LogLevel=INFO"}},
            "deploy": {
                "parameters": {
                    "parameter_overrides": ["Runtime=python3.11", 'RotationSchedule="rate(9 days)"']
                }
            },
        },
        "other": {"deploy": {"parameters": {"parameter_overrides": ["LogLevel=INFO"]}}},
    }
    assert runtime_for(config, "default", "build", template) == "python3.12"  # from global
    assert runtime_for(config, "default", "deploy", template) == "python3.11"  # the command's own
    assert overrides_for(config, "default", "deploy")["RotationSchedule"] == "rate(9 days)"
    # A command's list replaces the global one: no Runtime in it means the template's default.
    assert runtime_for(config, "other", "deploy", template) == "python3.13"
    assert runtime_for(config, "missing", "build", template) == "python3.13"
    assert parse_overrides("ParameterKey=Runtime,ParameterValue=python3.11") == {"Runtime": "python3.11"}
    # Whatever the combination, the layer serves it.
    for env in ("default", "other", "missing"):
        for command in COMMANDS:
            assert runtime_for(config, env, command, template) in _compatible(template)


def test_overrides_name_template_parameters_with_allowed_values(
    samconfig: dict[str, Any], template: dict[str, Any]
) -> None:
    parameters = template["Parameters"]
    for env in _environments(samconfig):
        for section in ("global", *COMMANDS):
            value = _parameters(samconfig, env, section).get("parameter_overrides")
            for key, setting in parse_overrides(value or []).items():
                where = f"[{env}.{section}] {key}={setting}"
                assert key in parameters, f"{where}: no such template parameter"
                if "AllowedValues" in parameters[key]:
                    assert setting in parameters[key]["AllowedValues"], where
                if "AllowedPattern" in parameters[key]:
                    assert re.fullmatch(parameters[key]["AllowedPattern"], setting), where


def _effective(config: dict[str, Any], env: str, template: dict[str, Any]) -> dict[str, str]:
    """Every template parameter as `sam deploy --config-env ENV` sets it."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(overrides_for(config, env, "deploy"))
    return values


def test_default_environment_is_safe_for_production(
    samconfig: dict[str, Any], template: dict[str, Any]
) -> None:
    deploy = _parameters(samconfig, "default", "deploy")
    assert deploy["confirm_changeset"] is True
    effective = _effective(samconfig, "default", template)
    assert effective["LogLevel"] == "INFO"
    assert effective["ExampleSecretEnabled"] == "false"
    for key in DEV_SHORTCUTS:
        if key != "LogLevel":  # INFO is also the template's default
            assert key not in overrides_for(samconfig, "default", "deploy"), f"[default] overrides {key}"
            assert effective[key] == template["Parameters"][key]["Default"], key
    assert "disable_rollback" not in deploy or deploy["disable_rollback"] is False


def test_development_environment_is_named(samconfig: dict[str, Any], template: dict[str, Any]) -> None:
    effective = _effective(samconfig, "dev", template)
    assert {k: effective[k] for k in DEV_SHORTCUTS} == DEV_SHORTCUTS
    stack = {env: _parameters(samconfig, env, "global")["stack_name"] for env in ("default", "dev")}
    assert stack["default"] != stack["dev"], "the development stack must not be the production one"
    # The comments at the top say which is which.
    header = SAMCONFIG.read_text(encoding="utf-8").split("version =", 1)[0]
    assert re.search(r"scripts/sam\.sh deploy +# production-safe default", header)
    assert re.search(r"scripts/sam\.sh deploy --config-env dev +# development", header)


def test_prod_environment_is_the_default_one(samconfig: dict[str, Any]) -> None:
    if "prod" in samconfig:
        assert samconfig["prod"] == samconfig["default"]


# ----------------------------------------------------------------------------------- loopback only

# Text that says to listen on every interface: 0.0.0.0 anywhere, an IPv6 wildcard given as a host.
WILDCARD = re.compile(
    r"0\.0\.0\.0|(?:-H|--host|--bind|-b|host=|--container-host-interface)[ =]['\"]?(?:::|\[::\]|\*)(?!\w)"
)
# docker run -p/--publish without an address (Docker then binds every interface).
PUBLISH = re.compile(r"(?:^|\s)(?:-p|--publish)[ =]['\"]?(?P<spec>[^\s'\"]+)")
LOOPBACK_BINDS = {
    # command -> the option that must name 127.0.0.1 explicitly
    re.compile(r"\blocal start-(?:api|lambda)\b"): re.compile(r"--host[ =]127\.0\.0\.1\b"),
    # moto_server as a command (not a word in a message)
    re.compile(r"(?:^|[;&|]\s*|\b(?:exec|nohup|env)\s+)(?:\S*/)?moto_server(?:\s|\Z)"): re.compile(
        r"(?:-H|--host)[ =]127\.0\.0\.1\b"
    ),
}


def _commands(text: str, markdown: bool) -> list[str]:
    """Shell command lines (continuations joined, comments dropped); of a markdown file, those in its
    fenced sh/bash/console blocks."""
    if markdown:
        blocks = re.findall(r"^```(?:sh|bash|shell|console)\n(.*?)^```", text, re.M | re.S)
        text = "\n".join(blocks)
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(re.sub(r"\s#\s.*", "", line))
    return out


def bind_problems(text: str, markdown: bool = False) -> list[str]:
    problems = [f"binds every interface: {m.group(0)!r}" for m in WILDCARD.finditer(text)]
    for command in _commands(text, markdown):
        if re.search(r"\bdocker(?:\s+container)?\s+(?:run|create)\b", command):
            for publish in PUBLISH.finditer(command):
                if not publish.group("spec").startswith("127.0.0.1:"):
                    problems.append(f"publishes on every interface: {command!r}")
        for starts, option in LOOPBACK_BINDS.items():
            if starts.search(command) and not option.search(command):
                problems.append(f"binds without an explicit 127.0.0.1: {command!r}")
    return problems


def _recipe_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "layers/regcred/Makefile", SAMCONFIG]
    files += sorted((ROOT / "scripts").glob("*.sh")) + sorted((ROOT / "tests/sam").glob("*.sh"))
    files += [*sorted((ROOT / "docs").glob("*.md")), ROOT / "events/README.md"]
    return [f for f in files if f.is_file()]


def test_local_recipes_bind_loopback_only() -> None:
    problems = []
    for path in _recipe_files():
        text = path.read_text(encoding="utf-8")
        problems += [f"{path.relative_to(ROOT)}: {p}" for p in bind_problems(text, path.suffix == ".md")]
    assert not problems, "\n".join(problems)


def test_readme_recipe_names_loopback_binds() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _commands(text, markdown=True)
    assert any("moto_server -H 127.0.0.1" in c for c in commands)
    invokes = [c for c in commands if "local invoke" in c and "--docker-network host" not in c]
    assert invokes and all("--container-host-interface 127.0.0.1" in c for c in invokes), invokes


@pytest.mark.parametrize(
    ("text", "markdown", "bad"),
    [
        ("```sh\n.venv/bin/moto_server -H 0.0.0.0 -p 5000 &\n```\n", True, True),
        ("```sh\n.venv/bin/moto_server -p 5000 &\n```\n", True, True),
        ("```sh\n.venv/bin/moto_server -H 127.0.0.1 -p 5000 &\n```\n", True, False),
        ("docker run --rm -p 5000:5000 motoserver/moto\n", False, True),
        ("docker run --rm \\\n    --publish=5000:5000 img\n", False, True),
        ("docker run --rm -p 127.0.0.1:5000:5000 motoserver/moto\n", False, False),
        ("```sh\nscripts/sam.sh local start-api\n```\n", True, True),
        ("```sh\nsam local start-lambda --host 0.0.0.0\n```\n", True, True),
        ("```sh\nscripts/sam.sh local start-lambda --host 127.0.0.1 -p 3001\n```\n", True, False),
        ("server --host :: --port 80\n", False, True),
        ('say "the stack: moto_server, the registry"\n', False, False),
        ("exec .venv/bin/moto_server -p 5000\n", False, True),
        ("Prose may name `sam local start-api`; only commands are checked.\n", True, False),
        ('container_host_interface = "0.0.0.0"\n', False, True),
    ],
)
def test_bind_check_itself(text: str, markdown: bool, bad: bool) -> None:
    assert bool(bind_problems(text, markdown)) is bad, bind_problems(text, markdown)


def test_local_invoke_publishes_on_loopback(samconfig: dict[str, Any]) -> None:
    for env in _environments(samconfig):
        local_invoke = _parameters(samconfig, env, "local_invoke")
        if local_invoke:
            assert local_invoke.get("container_host_interface") == "127.0.0.1", env
