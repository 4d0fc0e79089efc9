"""Benchmark: cold start of each Lambda handler module against the cold start of boto3 itself.

For every functions/*/app.py, a fresh interpreter runs ``import app`` the way Lambda's init does: the
function's directory first on sys.path, then the layer (layers/regcred, or a built layer's python/
with --layer), then the installed dependencies; the function's POWERTOOLS_* variables from
template.yaml (Refs resolved to the parameter defaults), AWS_LAMBDA_FUNCTION_NAME and LAMBDA_TASK_ROOT
set, tracing disabled (POWERTOOLS_TRACE_DISABLED=true), dummy region and credentials, no AWS config
files. The reference is ``import boto3; boto3.client("secretsmanager")`` in the same environment.

The two are measured interleaved (a/b, then b/a the next round: these machines are noisy) after one
discarded run of each, which writes the .pyc files both sides then read, as Lambda reads the ones in
its packages. Prints one JSON line per function; exits 1 when a ratio is over the target.

    .venv/bin/python bench/coldstart.py [--rounds N] [--root TREE] [--layer DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.cfn import load_template  # noqa: E402

TARGET = 1.2
BOTO3_CLIENT = 'import boto3; boto3.client("secretsmanager")'


def powertools_env(template: dict[str, Any], function_dir: str) -> dict[str, str]:
    """The POWERTOOLS_* variables the template gives the function whose CodeUri is ``function_dir``."""
    defaults = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
    variables: dict[str, Any] = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    found = False
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and (
            str(props.get("CodeUri", "")).rstrip("/") == f"functions/{function_dir}"
        ):
            variables.update(props.get("Environment", {}).get("Variables", {}))
            found = True
    if not found:
        raise SystemExit(f"coldstart: no function in template.yaml has CodeUri functions/{function_dir}/")
    env = {}
    for key, value in variables.items():
        if not key.startswith("POWERTOOLS_"):
            continue
        if isinstance(value, dict) and set(value) == {"Ref"}:
            value = defaults.get(value["Ref"])
        if isinstance(value, str):
            env[key] = value
    return env


def lambda_env(function: Path, variables: dict[str, str], layer: Path, home: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": home,
        # The layer precedes the installed packages, as /opt/python precedes /var/runtime.
        "PYTHONPATH": str(layer),
        "LAMBDA_TASK_ROOT": str(function),
        "AWS_LAMBDA_FUNCTION_NAME": f"regcred-{function.name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.path.join(home, "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "no-aws-credentials"),
    }
    env.update(variables)
    env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def run_once(code: str, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"coldstart: {code!r} failed in {cwd}:\n{done.stderr}")
    return elapsed


def measure(function: Path, env: dict[str, str], rounds: int) -> dict[str, Any]:
    sides = {"handler": "import app", "boto3": BOTO3_CLIENT}
    for code in sides.values():
        run_once(code, function, env)  # discarded: writes the .pyc files both sides then read
    times: dict[str, list[float]] = {side: [] for side in sides}
    for i in range(rounds):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for side in order:
            times[side].append(run_once(sides[side], function, env))
    handler, boto = statistics.median(times["handler"]), statistics.median(times["boto3"])
    return {
        "bench": "coldstart",
        "function": function.name,
        "runs": rounds,
        "handler_s": round(handler, 4),
        "boto3_client_s": round(boto, 4),
        "ratio": round(handler / boto, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rounds", type=int, default=21, help="measured runs of each side (>= 15)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to measure (default: this one)")
    parser.add_argument("--layer", type=Path, help="layer dir on the path (default: ROOT/layers/regcred)")
    args = parser.parse_args()
    if args.rounds < 15:
        parser.error("--rounds must be at least 15")
    root = args.root.resolve()
    layer = (args.layer or root / "layers" / "regcred").resolve()
    template = load_template(root / "template.yaml")
    functions = sorted(p.parent for p in (root / "functions").glob("*/app.py"))
    missed = []
    with tempfile.TemporaryDirectory(prefix="regcred-coldstart-") as home:
        for function in functions:
            env = lambda_env(function, powertools_env(template, function.name), layer, home)
            result = measure(function, env, args.rounds)
            print(json.dumps(result), flush=True)
            if result["ratio"] > TARGET:
                missed.append(function.name)
    if missed:
        print(f"coldstart: ratio over {TARGET} for {', '.join(missed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
