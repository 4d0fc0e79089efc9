"""Benchmark: one sweep of 500 managed secrets on the local stack (moto_server, the real registry and the
Docker Hub fake as its token realm), with the configured parallelism and with parallelism 1, in the same
run, on the same secrets. Prints one JSON line:

    {"bench": "sweep", "secrets": 500, "parallel_s": a, "sequential_s": b, "speedup": b/a,
     "registry_requests_per_secret": r, ...}

Targets: speedup at least 8, and no more registry requests per secret than 2 plus its images (GET /v2/, one
token request for all of its repositories, one manifest HEAD per image).

A sweep waits on the network far more than it computes. Loopback has no round trip, so the benchmark
models one: before it is sent, each request waits ``RTT_S[kind]`` (an AWS API call, a registry request, a
token request; a token server such as auth.docker.io takes the longest). Both runs wait alike, and the line
reports the model. It also reports the speedup without any modelled round trip, where the machine's cores
(the emulators' CPU) bound it.

Each secret is one Docker Hub token on the stack's fake, probing the seed image (``regcred:images``); the
secrets live in a region of their own in moto_server. This is the steady state: each secret's last sweep
record (less than an hour old) says what this sweep finds, so no tag is written, and orphans were looked for
(a first sweep of each secret also lists the vendor's tokens once and writes its record; that is not what
is measured here). Per secret that leaves one GetSecretValue and the registry's 2 + images requests.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    POWERTOOLS_LOG_LEVEL="ERROR",
    POWERTOOLS_SERVICE_NAME="regcred-sweep",
    POWERTOOLS_METRICS_NAMESPACE="regcred",
    POWERTOOLS_TRACE_DISABLED="true",
)

import boto3  # noqa: E402

from devstack.stack import Stack  # noqa: E402
from regcred import config, labels  # noqa: E402
from regcred.coalesce import Coalescer  # noqa: E402
from regcred.http.transport import Transport  # noqa: E402
from regcred.providers.dockerhub import DockerHubProvider  # noqa: E402
from regcred.registry import Credential  # noqa: E402
from regcred.rotation import Rotator  # noqa: E402
from regcred.routing import Deployment, parse_origin  # noqa: E402
from regcred.secret import SecretValue, render  # noqa: E402
from regcred.sweep import Sweeper, SweepRecord, SweepSettings  # noqa: E402

SECRETS = 500
PARALLELISM = SweepSettings().parallelism  # the template's default (SweepParallelism)
# Modelled round trips (seconds): assumed figures for a Lambda function in an AWS region talking to AWS
# endpoints and to a public registry; not measured here.
RTT_S = {"aws": 0.02, "registry": 0.03, "realm": 0.1}
REGION = "ap-southeast-2"


class CountingTransport(Transport):
    """Counts the requests that go to the registry and its token realm, each after its modelled round trip."""

    def __init__(self, deployment: Deployment, registry: str, realm: str, rtt: dict[str, float]) -> None:
        super().__init__(local_origins=deployment.local_origins)
        self._registry, self._realm, self._rtt = registry, realm, rtt
        self._lock = threading.Lock()
        self.registry_requests = 0

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        kind = None
        if url.startswith(self._registry):
            kind = "registry"
        elif method == "GET" and url.startswith(self._realm + "/token?"):
            kind = "realm"
        if kind:
            with self._lock:
                self.registry_requests += 1
            time.sleep(self._rtt.get(kind, 0.0))
        return super().request(method, url, **kwargs)


def sweep_once(
    env: dict[str, str], arns: list[str], parallelism: int, rtt: dict[str, float]
) -> tuple[float, int, dict[str, int]]:
    deployment = Deployment.from_env(env)
    transport = CountingTransport(
        deployment, f"http://{env['REGCRED_REGISTRY']}", env["REGCRED_DOCKERHUB_API"].rstrip("/"), rtt
    )
    sm = boto3.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION)
    batch = boto3.client("batch", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION)
    if rtt.get("aws"):
        sm.meta.events.register("before-send", lambda **_: time.sleep(rtt["aws"]))
    settings = SweepSettings(parallelism=parallelism, secret_deadline_s=60.0)
    rotator = Rotator(sm, batch=batch, deployment=deployment, transport=transport)
    sweeper = Sweeper(
        sm, batch=batch, coalescer=Coalescer(None, None, settings.lease_s), settings=settings, rotator=rotator
    )
    sweeper.job_definitions()  # read once before the clock starts, as a warm worker has it
    started = time.perf_counter()
    # As the scheduled sweep does it: the listing (ListSecrets, 100 a page) gives each secret's tags and
    # stages; only a secret that needs an action is described again.
    states = [s for s in sweeper.managed() if s.arn in arns]
    summary = sweeper.sweep(states)
    took = time.perf_counter() - started
    return took, transport.registry_requests, summary.counts()


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = Stack.up(Path(root))
        try:
            env = stack.env
            os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
            deployment = Deployment.from_env(env)
            hub = DockerHubProvider(
                Credential(env["REGCRED_DOCKERHUB_ADMIN_USER"], env["REGCRED_DOCKERHUB_ADMIN_TOKEN"]),
                api=parse_origin(env["REGCRED_DOCKERHUB_API"], what="REGCRED_DOCKERHUB_API"),
                transport=Transport(local_origins=deployment.local_origins),
            )
            sm = boto3.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION)
            record = SweepRecord(at=datetime.now(UTC), valid=True, orphans_at=datetime.now(UTC)).tag_text()
            arns: list[str] = []
            for i in range(SECRETS):
                name = f"sweep-bench/{i:04d}"
                issued = hub.issue(labels.label_for(name, f"onboard-{uuid.uuid4()}"), None)
                value = SecretValue(
                    issued.username, issued.password, env["REGCRED_REGISTRY"], "dockerhub", issued.token_id
                )
                tags = {
                    config.MANAGED: "true",
                    config.PROVIDER: "dockerhub",
                    config.API: env["REGCRED_DOCKERHUB_API"],
                    config.REGISTRY: env["REGCRED_REGISTRY"],
                    config.IMAGES: env["REGCRED_SEED_IMAGE"],
                    config.SWEEP: record,
                }
                arns.append(
                    sm.create_secret(
                        Name=name,
                        SecretString=render(value),
                        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                    )["ARN"]
                )
            images = 1
            parallel_s, parallel_requests, parallel = sweep_once(env, arns, PARALLELISM, RTT_S)
            sequential_s, sequential_requests, sequential = sweep_once(env, arns, 1, RTT_S)
            bare_parallel_s, _, _ = sweep_once(env, arns, PARALLELISM, {})
            bare_sequential_s, _, _ = sweep_once(env, arns, 1, {})
        finally:
            stack.down()
    per_secret = max(parallel_requests, sequential_requests) / SECRETS
    line = {
        "bench": "sweep",
        "secrets": SECRETS,
        "parallelism": PARALLELISM,
        "rtt_s": RTT_S,
        "parallel_s": round(parallel_s, 3),
        "sequential_s": round(sequential_s, 3),
        "speedup": round(sequential_s / parallel_s, 2),
        "registry_requests_per_secret": round(per_secret, 3),
        "registry_requests_limit": 2 + images,
        "valid": [parallel["swept"], sequential["swept"]],
        "errors": [parallel["errors"], sequential["errors"]],
        "no_latency": {
            "parallel_s": round(bare_parallel_s, 3),
            "sequential_s": round(bare_sequential_s, 3),
            "speedup": round(bare_sequential_s / bare_parallel_s, 2),
        },
        "cores": os.cpu_count(),
    }
    print(json.dumps(line))
    ok = (
        parallel["swept"] == sequential["swept"] == SECRETS
        and parallel["invalid"] == sequential["invalid"] == 0
        and per_secret <= 2 + images
    )
    if not ok:
        sys.exit(f"sweep bench: not every secret was swept and valid, or too many registry requests: {line}")


if __name__ == "__main__":
    main()
