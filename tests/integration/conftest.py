"""The local stack, once per test session: moto_server, the real registry and the Docker Hub fake."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.stack import Stack
from tests import leak_guard
from tests.network import lookups, loopback_only

__all__ = ["lookups", "loopback_only"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack.up(tmp_path_factory.mktemp("stack"))
    for key, value in running.env.items():
        # Every admin secret and credential the stack hands out, and every token a fake mints.
        if key.endswith(("_ADMIN_TOKEN", "_IMPORT_TOKEN")):
            leak_guard.watch(value)
        elif key.endswith("_MINTED"):
            leak_guard.watch_minted(value)
    try:
        yield running
    finally:
        running.down()


@pytest.fixture
def stack_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stack's environment, applied to this process (boto3 reads AWS_ENDPOINT_URL)."""
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    return dict(stack.env)


@pytest.fixture
def sm(stack_env: dict[str, str]) -> Any:
    return boto3.client("secretsmanager", endpoint_url=stack_env["AWS_ENDPOINT_URL"])


def dockerhub_admin_secret(sm: Any, stack_env: dict[str, str]) -> str:
    """A fresh secret (in ``sm``'s region) holding the fake's admin identity, bound to every secret."""
    name = f"admin/{uuid.uuid4().hex[:8]}"
    sm.create_secret(
        Name=name,
        # Bound to every secret: tests of the binding itself make their own admin secrets.
        Tags=[{"Key": "regcred:admin", "Value": "true"}, {"Key": "regcred:admin-for", "Value": "*"}],
        SecretString=json.dumps(
            {
                "username": stack_env["REGCRED_DOCKERHUB_ADMIN_USER"],
                "password": stack_env["REGCRED_DOCKERHUB_ADMIN_TOKEN"],
            }
        ),
    )
    return name


@pytest.fixture
def admin_secret(sm: Any, stack_env: dict[str, str]) -> str:
    """A fresh secret holding the fake's admin identity."""
    return dockerhub_admin_secret(sm, stack_env)


def cli_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The environment a user has after `source .stack/env`."""
    env = dict(os.environ)
    env.update(stack_env)
    env["PATH"] = f"{Path('.venv/bin').resolve()}:{env.get('PATH', '')}"
    return env
