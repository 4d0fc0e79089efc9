"""`sam local invoke` from the tests: one container per call, the result parsed, the time kept."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SHIM = Path(__file__).with_name("samcli_host_network.py")
INVOKE_TIMEOUT = 180
# Errors of the Lambda runtime itself (init, import, handler lookup) rather than of the handler's code.
RUNTIME_ERRORS = ("Runtime.", "ImportModuleError", "ModuleNotFoundError", "ImportError", "SyntaxError")


@dataclass(frozen=True)
class Function:
    """A function of the template: its logical id and its short name (the directory of its CodeUri)."""

    logical_id: str
    name: str

    def events(self) -> list[Path]:
        return sorted(EVENTS.glob(f"{self.name}_*.json"))


def template_functions(template: Path = ROOT / "template.yaml") -> list[Function]:
    """Every AWS::Serverless::Function of the template, in template order."""
    resources = load_template(template)["Resources"]
    out = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = str(resource["Properties"]["CodeUri"]).rstrip("/")
        out.append(Function(logical_id, Path(code_uri).name))
    return out


def load_event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@dataclass
class Invocation:
    function: str
    event: Any
    returncode: int
    stdout: str
    logs: str  # SAM's stderr: its own messages and everything the function wrote
    seconds: float

    @property
    def payload(self) -> Any:
        """What the handler returned (or Lambda's error object): the last line SAM prints on stdout."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if not lines:
            raise AssertionError(f"sam local invoke {self.function} printed no result\n{self.tail()}")
        return json.loads(lines[-1])

    @property
    def error(self) -> dict[str, Any] | None:
        payload = self.payload
        if isinstance(payload, dict) and "errorType" in payload and "errorMessage" in payload:
            return payload
        return None

    def log_records(self) -> list[dict[str, Any]]:
        """The function's structured (Powertools) log lines."""
        out = []
        for line in self.logs.splitlines():
            if line.startswith("{") and '"level"' in line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.logs.splitlines()[-lines:])


@dataclass
class Sam:
    """Runs `sam local invoke` against the built template, in the harness's namespace and dockerd."""

    python: str  # .venv-sam's interpreter (SAM CLI)
    build_dir: Path
    runtime: str
    work: Path
    env_vars: dict[str, dict[str, str]]
    aws_endpoint: str
    calls: list[Invocation] = field(default_factory=list)

    def _environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in ("PATH", "HOME", "DOCKER_HOST", "LANG", "TMPDIR") if k in os.environ}
        env.update(
            SAM_CLI_TELEMETRY="0",
            # SAM hands the caller's credentials and region to the function (AWS_ACCESS_KEY_ID,
            # AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_DEFAULT_REGION): the template does
            # not declare them. Fixed, fake values; never a profile from the machine.
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            # SAM asks STS for the account id before each invoke; moto answers at once (123456789012)
            # where the unreachable AWS would cost ~11 s of retries.
            AWS_ENDPOINT_URL_STS=self.aws_endpoint,
        )
        return env

    def invoke(self, function: str, event: Any) -> Invocation:
        self.work.mkdir(parents=True, exist_ok=True)
        stem = f"{function}-{uuid.uuid4().hex[:8]}"
        event_file = self.work / f"{stem}.event.json"
        event_file.write_text(json.dumps(event))
        env_file = self.work / "env-vars.json"
        env_file.write_text(json.dumps(self.env_vars, indent=1))
        argv = [
            self.python, str(SHIM), "local", "invoke", function,
            "--template", str(self.build_dir / "template.yaml"),
            "--event", str(event_file),
            "--env-vars", str(env_file),
            # The built template still says `Runtime: !Ref Runtime` (default python3.13).
            "--parameter-overrides", f"Runtime={self.runtime}",
            "--skip-pull-image",
            "--docker-network", "host",
            "--layer-cache-basedir", str(self.work / "layers-pkg"),
            "--region", "us-east-1",
        ]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.run(
            argv, env=self._environment(), capture_output=True, text=True, timeout=INVOKE_TIMEOUT, check=False
        )
        call = Invocation(
            function, event, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started
        )
        self.calls.append(call)
        if proc.returncode != 0:
            raise AssertionError(f"sam local invoke {function} exited {proc.returncode}\n{call.tail()}")
        return call

    def invoke_ok(self, function: str, event: Any) -> Invocation:
        """Invoke and require that the handler returned (no Lambda error object)."""
        call = self.invoke(function, event)
        if call.error is not None:
            raise AssertionError(
                f"{function} failed: {call.error['errorType']}: {call.error['errorMessage']}\n{call.tail()}"
            )
        return call
