"""Benchmark: a storm of 10,000 FAILED events through the remediate handler, in process, against
moto (Secrets Manager, Batch, DynamoDB, SNS, IAM) and the local stack's real registry for probes.

3 secrets whose tokens were revoked at the vendor, 2 healthy ones; mixed failure classes, success
events, redeliveries and out-of-order deliveries. Prints one JSON line. Required: rotations equal
the dead secrets, one TagResource per taggable event (a distinct failed Batch job, not an array or
multi-node child, with a pull-related class), and at most 1.05 AWS calls per event.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    POWERTOOLS_LOG_LEVEL="WARNING",
    POWERTOOLS_SERVICE_NAME="regcred-remediate",
    POWERTOOLS_METRICS_NAMESPACE="regcred",
    POWERTOOLS_TRACE_DISABLED="true",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from devstack.lambda_local import LambdaContext, load  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from regcred import config, labels  # noqa: E402
from regcred.coalesce import Coalescer  # noqa: E402
from regcred.failures import FailureClass, classify  # noqa: E402
from regcred.http.transport import Transport  # noqa: E402
from regcred.jobs import is_child_job  # noqa: E402
from regcred.providers.dockerhub import DockerHubProvider  # noqa: E402
from regcred.registry import Credential  # noqa: E402
from regcred.remediation import Remediator, Settings  # noqa: E402
from regcred.routing import Deployment, parse_origin  # noqa: E402
from regcred.secret import SecretValue, render  # noqa: E402

EVENTS = 10_000
DEAD, HEALTHY = 3, 2
SEED = 20261128
# Real messages (tests/corpus) by the class they stand for.
MESSAGES = {
    "auth": "CannotPullContainerError: Error response from daemon: "
    'Head "https://{reg}/v2/acme/app/manifests/1.0": unauthorized: incorrect username or password',
    "auth_or_not_found": "CannotPullContainerError: Error response from daemon: pull access denied for "
    "acme/app, repository does not exist or may require 'docker login': "
    "denied: requested access to the resource is denied",
    "rate_limit": "CannotPullContainerError: Error response from daemon: toomanyrequests: You have reached "
    "your pull rate limit. You may increase the limit by authenticating and upgrading: "
    "https://www.docker.com/increase-rate-limit",
    "not_found": "CannotPullContainerError: Error response from daemon: manifest for acme/app:1.0 not found: "
    "manifest unknown: manifest unknown",
    "network": "CannotPullContainerError: Error response from daemon: Get https://{reg}/v2/: net/http: "
    "request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
    "platform_mismatch": "CannotPullContainerError: pull image manifest has been retried 1 time(s): "
    "image Manifest does not contain descriptor matching platform 'linux/arm64'",
    "secret_retrieval": "ResourceInitializationError: unable to pull secrets or registry auth: execution "
    "resource retrieval failed: unable to retrieve secret from asm: service call has been retried "
    "1 time(s): AccessDeniedException: User is not authorized to perform: secretsmanager:GetSecretValue",
    "other": "CannotStartContainerError: Error response from daemon: OCI runtime create failed: "
    'container_linux.go:349: starting container process caused exec: "run.sh": executable file not found',
}


class CallCounter:
    """Counts every AWS API call a client makes (botocore's before-call event)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def watch(self, client: Any) -> Any:
        service = client.meta.service_model.service_name
        client.meta.events.register(
            "before-call", lambda model, **_: self.calls.update([f"{service}:{model.name}"])
        )
        return client


def build_events(
    rng: random.Random, secrets: list[tuple[str, bool]], template: dict[str, Any], registry: str
) -> list[dict[str, Any]]:
    """Failures spread over the secrets and classes, with redeliveries, children and successes."""
    image = f"{registry}/acme/app:1.0"
    events: list[dict[str, Any]] = []
    while len(events) < EVENTS:
        arn, dead = rng.choice(secrets)
        roll = rng.random()
        if dead and roll < 0.6:
            kind = "auth"
        elif roll < 0.35:
            kind = "auth_or_not_found"
        else:
            kind = rng.choice(
                ["rate_limit", "not_found", "network", "platform_mismatch", "secret_retrieval", "other"]
            )
        event = copy.deepcopy(template)
        job = str(uuid.UUID(int=rng.getrandbits(128)))
        if rng.random() < 0.05:
            job = f"{job}:{rng.randrange(100)}"  # an array child: cannot be tagged
        detail = event["detail"]
        event["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
        detail.update(jobId=job, jobArn=f"arn:aws:batch:us-east-1:123456789012:job/{job}")
        detail["container"]["image"] = image
        detail["container"]["repositoryCredentials"] = {"credentialsParameter": arn}
        detail["container"]["executionRoleArn"] = "arn:aws:iam::123456789012:role/batch-execution"
        reason = MESSAGES[kind].format(reg=registry)
        detail["container"]["reason"] = reason
        detail["attempts"][0]["container"]["reason"] = reason
        if rng.random() < 0.03:
            detail["status"] = "SUCCEEDED"  # a retry that succeeded, delivered in the same stream
        events.append(event)
        if rng.random() < 0.15 and len(events) < EVENTS:
            redelivery = copy.deepcopy(event)
            redelivery["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
            events.append(redelivery)
    # Out of order: EventBridge gives no ordering guarantee.
    for i in range(0, len(events) - 1, 7):
        j = min(len(events) - 1, i + rng.randrange(1, 50))
        events[i], events[j] = events[j], events[i]
    return events[:EVENTS]


def main() -> None:
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as root:
        stack = Stack.up(Path(root))
        try:
            env = stack.env
            registry = env["REGCRED_REGISTRY"]
            deployment = Deployment.from_env(env)
            hub = DockerHubProvider(
                Credential(env["REGCRED_DOCKERHUB_ADMIN_USER"], env["REGCRED_DOCKERHUB_ADMIN_TOKEN"]),
                api=parse_origin(env["REGCRED_DOCKERHUB_API"], what="REGCRED_DOCKERHUB_API"),
                transport=Transport(local_origins=deployment.local_origins),
            )
            with mock_aws(config={"batch": {"use_docker": False}}):
                setup = boto3.client("secretsmanager")
                ddb = boto3.client("dynamodb")
                ddb.create_table(
                    TableName="coalesce",
                    BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                )
                secrets: list[tuple[str, bool]] = []
                for i in range(DEAD + HEALTHY):
                    issued = hub.issue(labels.label_for(f"storm/{i}", f"onboard-{uuid.uuid4()}"), None)
                    value = SecretValue(
                        issued.username, issued.password, registry, "dockerhub", issued.token_id
                    )
                    arn = setup.create_secret(
                        Name=f"storm/{i}",
                        SecretString=render(value),
                        Tags=[
                            {"Key": config.MANAGED, "Value": "true"},
                            {"Key": config.PROVIDER, "Value": "dockerhub"},
                            {"Key": config.API, "Value": env["REGCRED_DOCKERHUB_API"]},
                            {"Key": config.REGISTRY, "Value": registry},
                        ],
                    )["ARN"]
                    setup.rotate_secret(
                        SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
                    )
                    dead = i < DEAD
                    if dead:
                        hub.revoke(issued.token_id)
                    secrets.append((arn, dead))
                template = json.loads((ROOT / "events" / "remediate_batch_auth_failure.json").read_text())
                events = build_events(rng, secrets, template, registry)

                counter = CallCounter()
                remediator = Remediator(
                    sm=counter.watch(boto3.client("secretsmanager")),
                    batch=counter.watch(boto3.client("batch")),
                    iam=counter.watch(boto3.client("iam")),
                    sns=None,
                    coalescer=Coalescer(counter.watch(boto3.client("dynamodb")), "coalesce", 900),
                    settings=Settings(cooldown_s=900),
                    deployment=deployment,
                )
                app = load("remediate")
                app._remediator = remediator
                taggable: set[tuple[str, int]] = set()
                for event in events:
                    detail = event["detail"]
                    cls = classify(detail["container"]["reason"])
                    if (
                        detail["status"] == "FAILED"
                        and cls is not FailureClass.OTHER
                        and not is_child_job(detail["jobId"])
                    ):
                        taggable.add((detail["jobId"], len(detail["attempts"])))
                sink = io.StringIO()
                started = time.perf_counter()
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    for event in events:
                        app.handler(event, LambdaContext())
                elapsed = time.perf_counter() - started
                app._remediator = None
        finally:
            stack.down()
    calls = counter.calls
    total = sum(calls.values())
    result = {
        "bench": "storm",
        "events": len(events),
        "dead_secrets": DEAD,
        "rotations": calls["secretsmanager:RotateSecret"],
        "tag_calls": calls["batch:TagResource"],
        "taggable_events": len(taggable),
        "aws_calls": total,
        "aws_calls_per_event": round(total / len(events), 4),
        "events_per_s": round(len(events) / elapsed, 1),
        "calls_by_api": dict(sorted(calls.items())),
    }
    print(json.dumps(result))
    ok = (
        result["rotations"] == DEAD
        and result["tag_calls"] == result["taggable_events"]
        and result["aws_calls_per_event"] <= 1.05
    )
    if not ok:
        print("storm: requirement not met", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
