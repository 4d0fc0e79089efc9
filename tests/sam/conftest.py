"""Fixtures of the SAM tier. It runs only under scripts/sam_tier.sh (`make test-sam`), which provides a
network namespace with its own dockerd, the Lambda base image stand-in and the `sam build` output, and runs
pytest inside that namespace: the stack below binds the namespace's 127.0.0.1, which the functions see
because they are invoked with `--docker-network host`.

What the script builds is the development copy of template.yaml (devstack/sam_template.py), not
template.yaml itself: the copy declares AWS_ENDPOINT_URL (empty) for every function, which the production
template does not, so that `--env-vars` can point the functions at moto_server."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from devstack.stack import Stack
from regcred import config
from regcred.secret import SecretValue
from tests.aws_setup import coalesce_table, stack_managed_secret
from tests.sam.sam import Sam

HARNESS_VARS = (
    "SAM_TIER",
    "DOCKER_HOST",
    "SAM_TIER_PYTHON",
    "SAM_TIER_BUILD_DIR",
    "SAM_TIER_CACHE",
    "SAM_TIER_RUNTIME",
    "SAM_TIER_STACK_DIR",
)
OUTSIDE_HARNESS = (
    "tests/sam runs only under scripts/sam_tier.sh (`make test-sam`, part of `make test`): it needs the "
    "network namespace, dockerd, base image stand-in and `sam build` output the script sets up. "
)


def _outside_harness_reason() -> str | None:
    missing = [name for name in HARNESS_VARS if not os.environ.get(name)]
    if missing:
        return OUTSIDE_HARNESS + f"Missing: {', '.join(missing)}."
    try:
        if os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino:
            return OUTSIDE_HARNESS + "This process is in the host's network namespace, not the tier's."
    except OSError:
        pass
    if not (Path(os.environ["SAM_TIER_BUILD_DIR"]) / "template.yaml").is_file():
        return OUTSIDE_HARNESS + f"No built template in {os.environ['SAM_TIER_BUILD_DIR']}."
    return None


@pytest.fixture(scope="session", autouse=True)
def harness() -> dict[str, str]:
    """Fail (never skip) every test of the tier when it is not run by its harness."""
    reason = _outside_harness_reason()
    if reason:
        pytest.fail(reason, pytrace=False)
    return {name: os.environ[name] for name in HARNESS_VARS}


@pytest.fixture(scope="session")
def stack(harness: dict[str, str]) -> Iterator[Stack]:
    running = Stack.up(Path(harness["SAM_TIER_STACK_DIR"]))
    try:
        yield running
    finally:
        running.down()


@pytest.fixture(scope="session")
def env(stack: Stack) -> dict[str, str]:
    return dict(stack.env)


@pytest.fixture(scope="session")
def aws(env: dict[str, str]) -> dict[str, Any]:
    """boto3 clients on moto_server, and what the remediate function's environment names: its cooldown
    table and notification topic (the template's own resources are not deployed)."""
    endpoint = env["AWS_ENDPOINT_URL"]
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    # Batch jobs "run" without Docker in moto: they can be submitted and tagged.
    requests.post(f"{endpoint}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=5)
    clients: dict[str, Any] = {
        name: session.client(name, endpoint_url=endpoint)
        for name in ("secretsmanager", "batch", "dynamodb", "iam", "sns", "ec2")
    }
    table = coalesce_table(clients["dynamodb"], f"regcred-coalesce-{uuid.uuid4().hex[:6]}")
    clients["coalesce_table"] = table
    clients["topic_arn"] = clients["sns"].create_topic(Name="regcred")["TopicArn"]
    return clients


@pytest.fixture(scope="session")
def sam(
    harness: dict[str, str], env: dict[str, str], aws: dict[str, Any], request: pytest.FixtureRequest
) -> Sam:
    """`sam local invoke` with an --env-vars file: it can only override variables the built template
    declares (Globals: AWS_ENDPOINT_URL, declared only by the development copy that scripts/sam_tier.sh
    builds (devstack/sam_template.py), POWERTOOLS_*, REGCRED_ALLOWED_*; RemediateFunction:
    REGCRED_COALESCE_TABLE, REGCRED_TOPIC_ARN, REGCRED_COOLDOWN, REGCRED_RESUBMIT, ...)."""
    env_vars = {
        "Parameters": {
            "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"],
            "POWERTOOLS_LOG_LEVEL": "INFO",
            # The deployment allow-lists (template parameters AllowedRegistryHosts / AllowedApiHosts).
            "REGCRED_ALLOWED_REGISTRY_HOSTS": env["REGCRED_ALLOWED_REGISTRY_HOSTS"],
            "REGCRED_ALLOWED_API_HOSTS": env["REGCRED_ALLOWED_API_HOSTS"],
        },
        "RemediateFunction": {
            "REGCRED_COALESCE_TABLE": aws["coalesce_table"],
            "REGCRED_TOPIC_ARN": aws["topic_arn"],
            "REGCRED_COOLDOWN": "15m",
            "REGCRED_RESUBMIT": "false",
        },
        "SweepFunction": {
            "REGCRED_COALESCE_TABLE": aws["coalesce_table"],
            # No queue: the sweep runs in the invocation (the fan-out is tested on moto in the integration
            # tier, tests/integration/test_sweep_stack.py).
            "REGCRED_SWEEP_QUEUE_URL": "",
            "REGCRED_SWEEP_PERIOD": "15m",
        },
    }
    runner = Sam(
        python=harness["SAM_TIER_PYTHON"],
        build_dir=Path(harness["SAM_TIER_BUILD_DIR"]),
        runtime=harness["SAM_TIER_RUNTIME"],
        work=Path(harness["SAM_TIER_STACK_DIR"]).parent / "invokes",
        env_vars=env_vars,
        aws_endpoint=env["AWS_ENDPOINT_URL"],
    )
    request.config.stash[_CALLS] = runner.calls
    return runner


_CALLS = pytest.StashKey[list[Any]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    calls = config.stash.get(_CALLS, [])
    if calls:
        total = sum(c.seconds for c in calls)
        slowest = max(c.seconds for c in calls)
        terminalreporter.write_line(
            f"sam local invoke: {len(calls)} calls, {total:.1f}s in all, "
            f"mean {total / len(calls):.1f}s, slowest {slowest:.1f}s"
        )


# ------------------------------------------------------------------------------------- onboarding


@pytest.fixture(scope="session")
def admin_secret(aws: dict[str, Any], env: dict[str, str]) -> str:
    """The fake's admin identity, in a secret marked as an admin secret."""
    name = f"admin/{uuid.uuid4().hex[:8]}"
    aws["secretsmanager"].create_secret(
        Name=name,
        SecretString=json.dumps(
            {
                "username": env["REGCRED_DOCKERHUB_ADMIN_USER"],
                "password": env["REGCRED_DOCKERHUB_ADMIN_TOKEN"],
            }
        ),
        Tags=[{"Key": config.ADMIN_MARK, "Value": "true"}, {"Key": config.ADMIN_FOR, "Value": "sam-*"}],
    )
    return name


def onboard(
    aws: dict[str, Any], env: dict[str, str], admin_secret: str, label: str
) -> tuple[str, SecretValue]:
    """A managed secret holding a token minted at the fake, rotation enabled. Returns (ARN, value)."""
    arn, value = stack_managed_secret(aws["secretsmanager"], env, admin_secret, prefix=f"sam-{label}")
    assert aws["secretsmanager"].describe_secret(SecretId=arn)["RotationEnabled"]
    return arn, value
