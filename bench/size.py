"""Benchmark: size of each built function and of the layer, and whether boto3/botocore are bundled.

Runs a real ``scripts/sam.sh build`` (no container, no cache) of template.yaml into a temporary build
dir, for the Runtime of the interpreter running this script (python3.11 on Debian 12, python3.13 on
Debian 13; the layer carries wheels for every runtime the template allows, whatever the Runtime). Each
artifact
is zipped as `sam package` zips it (every file, deflated, paths relative to the artifact dir).

Then the built handlers are imported the way Lambda loads them: sys.path = [function dir, the layer's
python/, the standard library, then a stand-in for /var/runtime: links to the installed boto3 and its
dependencies, nothing else, so that a dependency the layer lacks fails here as it would in Lambda].
Once with tracing disabled, once enabled (the layer's X-Ray SDK then runs on the runtime's botocore);
every regcred module is imported too (urllib3 and pydantic load lazily, on first use).

Prints one JSON line per function, one for the layer, and a summary (``"function": "*"``); exits 1
when boto3 or botocore is bundled anywhere or a built handler does not import.

    .venv/bin/python bench/size.py [--root TREE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# What the Lambda runtime provides and a layer or function must not shadow.
SDK = ("boto3", "botocore", "s3transfer")
# What /var/runtime holds besides awslambdaric: boto3 and its dependencies.
RUNTIME = (*SDK, "jmespath", "dateutil", "six.py", "urllib3")

SMOKE = r"""
import importlib, json, os, pkgutil, sys
function_dir, layer, runtime = sys.argv[1:4]
sys.path[0:0] = [function_dir, layer]
sys.path.append(runtime)
import app
import regcred
for module in pkgutil.walk_packages(regcred.__path__, "regcred."):
    importlib.import_module(module.name)
origin = {}
names = ("boto3", "botocore", "urllib3", "certifi", "pydantic_core", "aws_lambda_powertools", "aws_xray_sdk")
for name in names:
    module = importlib.import_module(name)
    origin[name] = "layer" if module.__file__.startswith(layer) else "runtime"
origin["tracer"] = type(app.tracer.provider).__module__
print(json.dumps(origin))
"""


def bundles_sdk(artifact: Path) -> bool:
    """Whether boto3, botocore or s3transfer is importable from the artifact: a package or a wheel's
    metadata where Lambda looks (a function's root; a layer's python/ and python/lib/python3.X/
    site-packages/). A module merely named so deeper down (aws_xray_sdk/ext/botocore) does not count."""
    roots = [artifact, artifact / "python", *artifact.glob("python/lib/python3*/site-packages")]
    for root in roots:
        for path in root.glob("*") if root.is_dir() else ():
            name = path.name.lower()
            if name.removesuffix(".py") in SDK or (
                name.endswith(".dist-info") and name.split("-", 1)[0] in SDK
            ):
                return True
    return False


def zip_like_sam(artifact: Path, target: Path) -> tuple[int, int]:
    """Zip as samcli.lib.package.utils.make_zip does; returns (zip bytes, unzipped bytes)."""
    unzipped = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, _, files in os.walk(artifact, followlinks=True):
            for filename in files:
                full = Path(root, filename)
                data = full.read_bytes()
                unzipped += len(data)
                info = zipfile.ZipInfo(str(full.relative_to(artifact)))
                info.create_system = 3
                info.external_attr = full.stat().st_mode << 16
                archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return target.stat().st_size, unzipped


def build(root: Path, build_dir: Path, runtime: str) -> None:
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    command = [
        str(ROOT / "scripts" / "sam.sh"),
        "build",
        "--template-file",
        str(root / "template.yaml"),
        "--build-dir",
        str(build_dir),
        "--no-cached",
        "--parameter-overrides",
        f"Runtime={runtime}",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"size: sam build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


def fake_runtime(target: Path) -> Path:
    """A stand-in for Lambda's /var/runtime: links to the installed boto3 and its dependencies only,
    so that a dependency missing from the layer fails the import as it would in Lambda."""
    installed = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for name in RUNTIME:
        if not (installed / name).exists():
            raise SystemExit(f"size: {name} is not installed in {installed}")
        (target / name).symlink_to(installed / name)
    return target


def smoke(function: Path, layer: Path, runtime: Path, tracing: bool) -> dict[str, Any] | str:
    """Import the built handler as Lambda would; the JSON origins of key modules, or the error."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(function),
        "AWS_LAMBDA_FUNCTION_NAME": f"regcred-{function.name}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": f"regcred-{function.name}",
        "POWERTOOLS_METRICS_NAMESPACE": "regcred",
    }
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    done = subprocess.run(
        [sys.executable, "-S", "-c", SMOKE, str(function), str(layer), str(runtime)],
        cwd=function,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to build (default: this one)")
    parser.add_argument("--keep", type=Path, help="build into this dir and keep it (default: a temp dir)")
    args = parser.parse_args()
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    root = args.root.resolve()
    with tempfile.TemporaryDirectory(prefix="regcred-size-") as tmp:
        build_dir = args.keep.resolve() if args.keep else Path(tmp, "build")
        build(root, build_dir, runtime)
        var_runtime = fake_runtime(Path(tmp, "var-runtime"))
        # The built template is in long form (no !Ref tags).
        template = yaml.safe_load((build_dir / "template.yaml").read_text(encoding="utf-8"))
        resources = template["Resources"]
        layers = {n for n, r in resources.items() if r["Type"] == "AWS::Serverless::LayerVersion"}
        functions = {n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
        lines, failures = [], []
        total_zip = total_unzipped = 0
        any_sdk = False
        for name in sorted(functions) + sorted(layers):
            artifact = build_dir / name
            zip_bytes, unzipped = zip_like_sam(artifact, Path(tmp, f"{name}.zip"))
            sdk = bundles_sdk(artifact)
            any_sdk = any_sdk or sdk
            total_zip += zip_bytes
            total_unzipped += unzipped
            line: dict[str, Any] = {
                "bench": "size",
                "function": name,
                "zip_bytes": zip_bytes,
                "unzipped_bytes": unzipped,
                "boto_bundled": sdk,
            }
            if name in functions:
                for layer in layers:
                    for tracing in (False, True):
                        origins = smoke(artifact, build_dir / layer / "python", var_runtime, tracing)
                        where = f"{name} with {layer}, tracing {'on' if tracing else 'off'}"
                        if not isinstance(origins, dict):
                            failures.append(f"{where}: {origins}")
                        elif origins["botocore"] != "runtime" or origins["boto3"] != "runtime":
                            failures.append(f"{where}: boto3/botocore from the layer")
                line["imports_ok"] = not any(f.startswith(f"{name} ") for f in failures)
            lines.append(line)
        lines.append(
            {
                "bench": "size",
                "function": "*",
                "runtime": runtime,
                "zip_bytes": total_zip,
                "unzipped_bytes": total_unzipped,
                "boto_bundled": any_sdk,
            }
        )
        for line in lines:
            print(json.dumps(line), flush=True)
    if any_sdk:
        failures.append("boto3/botocore/s3transfer bundled: the Lambda runtime provides them")
    if failures:
        print("size: " + "; ".join(failures), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
