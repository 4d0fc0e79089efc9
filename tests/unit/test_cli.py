"""The CLI's contract with scripts: exit codes, exact flags, JSON errors, help texts, region and profile.
Commands that need AWS run on moto (tests/unit/conftest.py's ``aws`` fixture)."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest

from regcred.cli import ExitCode, build_parser, main
from regcred.cli.base import wants_json

AUTH_MSG = "Error response from daemon: unauthorized: authentication required"
RATE_MSG = "ERROR: toomanyrequests: Too Many Requests."
COMMANDS = (
    "onboard", "providers", "import", "check", "show", "list", "rotate", "retire", "diagnose", "classify"
)  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- classify (no AWS) ------------------------------------------------------------------------------


def test_classify_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "classify", AUTH_MSG, RATE_MSG)
    assert code == 0
    assert out.splitlines() == [f"auth\t{AUTH_MSG}", f"rate_limit\t{RATE_MSG}"]


def test_classify_reads_stdin_lines_and_skips_empty_ones(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{RATE_MSG}\n\n   \n{AUTH_MSG}\r\n"))
    code, out, _ = run(capsys, "classify")
    assert code == 0
    assert out.splitlines() == [f"rate_limit\t{RATE_MSG}", f"auth\t{AUTH_MSG}"]


@pytest.mark.parametrize("flags", [["--json"], ["--output", "json"], ["-o", "json"], ["--output=json"]])
def test_classify_json_keeps_input_order(capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    messages = [RATE_MSG, "", AUTH_MSG, "no space left on device"]
    code, out, _ = run(capsys, "classify", *flags, *messages)
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"class": "rate_limit", "message": RATE_MSG},
        {"class": "other", "message": ""},
        {"class": "auth", "message": AUTH_MSG},
        {"class": "other", "message": "no space left on device"},
    ]


def test_classify_tsv_keeps_one_line_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "classify", "Trying to pull repository x ... \nunauthorized: authentication required"
    )
    assert code == 0
    assert out == "auth\tTrying to pull repository x ... unauthorized: authentication required\n"


def test_common_flags_work_before_the_command_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--output", "json", "classify", RATE_MSG)
    assert code == 0 and json.loads(out)["class"] == "rate_limit"


# -- usage errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["chek", "x"], "did you mean check?"),
        (["check", "x", "--jsn"], "did you mean --json?"),
        (["check", "x", "--stag", "AWSCURRENT"], "did you mean --stage?"),
        (["rotate", "x", "--loca"], "did you mean --local?"),
        (["onboard", "x", "--provider", "dockerhub", "--admin", "a"], "did you mean --admin-secret?"),
    ],
)
def test_a_typo_or_a_prefix_is_a_usage_error_with_a_hint(
    capsys: pytest.CaptureFixture[str], argv: list[str], hint: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == ExitCode.USAGE == 64
    assert hint in err and out == ""


def test_usage_errors_are_json_on_stdout_in_json_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "x", "--json", "--stag", "AWSCURRENT")
    assert code == 64 and err == ""
    body = json.loads(out)
    assert body["exit_code"] == 64 and "--stage" in body["error"]


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["check", "x", "--output", "yaml"],
        ["check", "x", "--stage", "AWSOTHER"],
        ["check", "x", "--timeout", "0"],
        ["list", "--page-size", "1000"],
        ["rotate", "x", "--local", "--wait"],
        [],
    ],
)
def test_bad_values_exit_64_never_a_result_code(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert run(capsys, *argv)[0] == 64


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_description_examples_and_exit_codes(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    for needle in ("--output", "--json", "--region", "--profile", "--debug", "--version", "examples:", "130"):
        assert needle in out, (command, needle)
    description = out.split("positional arguments:")[0]
    assert len(description.split("\n\n", 1)[-1].strip()) > 40, "no description"
    for markup in ("``", ":func:", ":class:", "%(", "\\n"):
        assert markup not in out, (command, markup)


def test_version_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("", *COMMANDS):
        code, out, _ = run(capsys, *([command] if command else []), "--version")
        assert code == 0 and out.startswith("regcred "), command


def test_top_level_help_lists_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--help")
    for code in ("0 ", "1 ", "2 ", "64", "69", "130"):
        assert f"  {code}" in out


def test_wants_json_reads_the_raw_command_line() -> None:
    assert wants_json(["check", "--json"]) and wants_json(["-o", "json"]) and wants_json(["--output=json"])
    assert not wants_json(["check", "--output", "text"])


def test_parsers_refuse_prefixes() -> None:
    parser = build_parser()
    assert parser.allow_abbrev is False
    sub = parser.subcommand("onboard")
    assert sub is not None and sub.allow_abbrev is False


# -- configuration errors ---------------------------------------------------------------------------


def test_no_region_exits_69_naming_the_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, _, err = run(capsys, "show", "x")
    assert code == 69
    assert "--region" in err and "AWS_REGION" in err and "AWS_DEFAULT_REGION" in err


def test_an_unknown_profile_exits_69(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, out, _ = run(capsys, "show", "x", "--profile", "nope", "--json")
    assert code == 69 and "--profile" in json.loads(out)["error"]


def test_a_missing_secret_exits_69_in_json(capsys: pytest.CaptureFixture[str], sm: Any) -> None:
    code, out, _ = run(capsys, "show", "does/not/exist", "--json", "--region", "us-east-1")
    assert code == 69
    body = json.loads(out)
    assert body["exit_code"] == 69 and "does/not/exist" in body["error"]


def test_rotate_refuses_a_secret_without_rotation_before_calling_rotate_secret(
    capsys: pytest.CaptureFixture[str], sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sm.create_secret(Name="plain/x", SecretString=json.dumps({"username": "u", "password": "p"}))
    from regcred.store import SecretStore

    called: list[str] = []
    monkeypatch.setattr(SecretStore, "start_rotation", lambda self, arn: called.append(arn))
    code, out, _ = run(capsys, "rotate", "plain/x", "--json")
    assert code == 69 and called == []
    body = json.loads(out)
    assert (
        "not enabled" in body["error"] and "--rotation-lambda" in body["error"] and "--local" in body["error"]
    )


def test_list_shows_only_managed_secrets(capsys: pytest.CaptureFixture[str], sm: Any) -> None:
    sm.create_secret(Name="plain/y", SecretString=json.dumps({"username": "u", "password": "p"}))
    value = {"username": "u", "password": "p", "token_id": "t-1", "expires_at": "2099-01-01T00:00:00Z"}
    for i in range(3):
        sm.create_secret(
            Name=f"batch/l{i}",
            SecretString=json.dumps(value),
            Tags=[
                {"Key": "regcred:managed", "Value": "true"},
                {"Key": "regcred:provider", "Value": "dockerhub"},
                {"Key": "regcred:admin-secret", "Value": "admin/x"},
            ],
        )
    code, out, _ = run(capsys, "list", "--json", "--page-size", "1")
    assert code == 0
    body = json.loads(out)
    names = sorted(s["secret"] for s in body["secrets"])
    assert names == ["batch/l0", "batch/l1", "batch/l2"] and body["count"] == 3
    row = body["secrets"][0]
    assert row["provider"] == "dockerhub" and row["registry"] == "registry-1.docker.io"
    assert row["expires_at"] == "2099-01-01T00:00:00Z" and row["expires_in_s"] > 0
    assert row["previous"] == "none"
    assert "p" not in {str(v) for r in body["secrets"] for v in r.values()}


def test_onboarding_errors_name_the_flags_not_the_tags() -> None:
    from regcred.onboarding import in_flags

    assert in_flags("the regcred:registry tag: 'x' is not allowed") == "--registry: 'x' is not allowed"
    assert in_flags("the regcred:ttl tag: 5m is below 1h") == "--ttl: 5m is below 1h"
    assert in_flags("regcred:managed stays") == "regcred:managed stays"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("rate(30 days)", True),
        ("rate(4 hours)", True),
        ("rate(1 day)", True),
        ("cron(0 4 ? * SUN *)", True),
        ("rate(3 hours)", False),
        ("rate(1001 days)", False),
        ("rate(0 days)", False),
        ("rate(1 days)", False),
        ("rate(30 minutes)", False),
        ("cron(0 4 * *)", False),
        ("every day", False),
    ],
)
def test_schedule_expressions(text: str, ok: bool) -> None:
    from regcred.errors import ConfigurationError
    from regcred.onboarding import validate_schedule

    if ok:
        assert validate_schedule(text) == text
    else:
        with pytest.raises(ConfigurationError, match="--schedule"):
            validate_schedule(text)


def test_progress_speaks_on_stderr_only_when_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    from regcred.cli.base import Progress

    Progress(False)("step one")
    assert capsys.readouterr() == ("", "")
    progress = Progress(True)
    progress("checking 3 image(s)")
    progress.done()
    out, err = capsys.readouterr()
    assert out == "" and "checking 3 image(s)" in err and err.endswith("\r\033[K")
    assert "s]" in err  # the elapsed time leads the line


def test_a_command_builds_each_client_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from regcred import aws
    from regcred.cli.base import Context

    built: list[str] = []
    monkeypatch.setattr(aws, "client", lambda service, session=None: built.append(service) or object())
    ctx = Context(args=build_parser().parse_args(["show", "x", "--region", "us-east-1"]), region="us-east-1")
    assert ctx.store().sm is ctx.store().sm is ctx.client("secretsmanager")
    ctx.client("batch")
    assert built == ["secretsmanager", "batch"]
