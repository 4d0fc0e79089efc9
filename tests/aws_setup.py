"""Test setup shared by the tiers: IAM roles, Batch queues and job definitions in moto, and managed
secrets whose token is minted at the Docker Hub fake of a running stack."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import boto3
import requests

from regcred import config, labels
from regcred.http.transport import Transport
from regcred.providers.dockerhub import DockerHubProvider
from regcred.registry import Credential
from regcred.routing import Deployment, parse_origin
from regcred.secret import SecretValue, render


def assume_role_policy(service: str) -> str:
    """A trust policy letting ``service`` (e.g. batch.amazonaws.com) assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def create_role(iam: Any, prefix: str, service: str) -> str:
    """A new role for ``service``; its ARN."""
    role = iam.create_role(
        RoleName=f"{prefix}-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument=assume_role_policy(service)
    )
    return str(role["Role"]["Arn"])


def batch_queue(batch: Any, iam: Any) -> str:
    """A job queue on an unmanaged compute environment: enough for moto to accept SubmitJob."""
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"ce-{uuid.uuid4().hex[:6]}",
        type="UNMANAGED",
        state="ENABLED",
        serviceRole=create_role(iam, "batch-service", "batch.amazonaws.com"),
    )["computeEnvironmentArn"]
    return str(
        batch.create_job_queue(
            jobQueueName=f"q-{uuid.uuid4().hex[:6]}",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )["jobQueueArn"]
    )


def coalesce_table(ddb: Any, name: str | None = None) -> str:
    """A table shaped as the template's CoalesceTable (hash key ``pk``, a string); its name."""
    table = name or f"coalesce-{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    return table


def job_definition(batch: Any, image: str, secret_arn: str | None, name: str = "etl") -> str:
    """A container job definition pulling ``image`` with ``secret_arn`` (None: no credentials)."""
    container: dict[str, Any] = {"image": image, "vcpus": 1, "memory": 128}
    if secret_arn:
        container["repositoryCredentials"] = {"credentialsParameter": secret_arn}
    return str(
        batch.register_job_definition(
            jobDefinitionName=f"{name}-{uuid.uuid4().hex[:6]}",
            type="container",
            containerProperties=container,
        )["jobDefinitionArn"]
    )


def stack_transport(env: dict[str, str]) -> Transport:
    """A transport that may reach the stack's loopback servers (its allow-lists), as the CLI's would."""
    return Transport(local_origins=Deployment.from_env(env).local_origins)


def hub(env: dict[str, str], *, org: str | None = None, page_size: int = 100) -> DockerHubProvider:
    """The Docker Hub provider of a running stack, with its admin identity."""
    admin = Credential(env["REGCRED_DOCKERHUB_ADMIN_USER"], env["REGCRED_DOCKERHUB_ADMIN_TOKEN"])
    return DockerHubProvider(
        admin,
        api=parse_origin(env["REGCRED_DOCKERHUB_API"], what="REGCRED_DOCKERHUB_API"),
        org=org,
        transport=stack_transport(env),
        page_size=page_size,
    )


def stack_managed_secret(
    sm: Any, env: dict[str, str], admin_secret: str, prefix: str = "batch"
) -> tuple[str, SecretValue]:
    """A managed secret with rotation enabled, holding a token minted at the stack's fake (labelled for it,
    as onboarding labels it)."""
    name = f"{prefix}/{uuid.uuid4().hex[:8]}"
    issued = hub(env).issue(labels.label_for(name, f"onboard-{uuid.uuid4()}"), None)
    value = SecretValue(
        issued.username, issued.password, env["REGCRED_REGISTRY"], "dockerhub", issued.token_id
    )
    tags = {
        config.MANAGED: "true",
        config.PROVIDER: "dockerhub",
        config.ADMIN_SECRET: admin_secret,
        config.API: env["REGCRED_DOCKERHUB_API"],
        config.REGISTRY: env["REGCRED_REGISTRY"],
        config.IMAGES: env["REGCRED_SEED_IMAGE"],
    }
    arn = str(
        sm.create_secret(
            Name=name,
            SecretString=render(value),
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["ARN"]
    )
    # Without a Lambda ARN, moto enables rotation and re-labels a copy of the value AWSCURRENT.
    sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    return arn, value


def rotation_function(env: dict[str, str], *, permission: bool = True) -> str:
    """A function in moto's Lambda (no Docker: invocations succeed, no code runs)."""
    endpoint = env["AWS_ENDPOINT_URL"]
    requests.post(f"{endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=5)
    iam, lam = boto3.client("iam", endpoint_url=endpoint), boto3.client("lambda", endpoint_url=endpoint)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def handler(event, context):\n    return None\n")
    arn: str = lam.create_function(
        FunctionName=f"rotate-{uuid.uuid4().hex[:6]}",
        Runtime="python3.11",
        Handler="app.handler",
        Role=create_role(iam, "rotate", "lambda.amazonaws.com"),
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    if permission:
        lam.add_permission(
            FunctionName=arn,
            StatementId="SecretsManager",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
        )
    return arn
