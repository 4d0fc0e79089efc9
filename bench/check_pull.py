"""Benchmark: regcred's pull check (one token request for all images) against a token per image,
measured interleaved on the local stack. Prints one JSON line."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.stack import Stack
from regcred.hosts import Origin, origin_of, split_host_port
from regcred.http.transport import Transport
from regcred.providers.dockerhub import DockerHubProvider
from regcred.registry import Credential, RegistryClient
from regcred.routing import Deployment, parse_origin

ROUNDS = 15


def token_requests(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if json.loads(line).get("path") == "/token")


def registry_origin(host_port: str) -> Origin:
    """The local stack's registry (``127.0.0.1:port``) as the plain-http loopback origin it is."""
    parsed = split_host_port(host_port)
    if parsed is None or parsed[1] is None:
        raise SystemExit(f"REGCRED_REGISTRY is not host:port: {host_port!r}")
    return Origin("http", parsed[0], parsed[1])


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = Stack.up(Path(root))
        try:
            env = stack.env
            # The stack's allow-lists name its registry and the Docker Hub fake: the only loopback
            # destinations the transport may reach, over plain http.
            deployment = Deployment.from_env(env)
            registry = registry_origin(env["REGCRED_REGISTRY"])
            realm = origin_of(env["REGCRED_DOCKERHUB_REALM"])
            assert realm is not None
            local_origins = deployment.local_origins | {registry}
            with Transport(local_origins=local_origins) as admin_transport:
                hub = DockerHubProvider(
                    Credential(env["REGCRED_DOCKERHUB_ADMIN_USER"], env["REGCRED_DOCKERHUB_ADMIN_TOKEN"]),
                    api=parse_origin(env["REGCRED_DOCKERHUB_API"], what="REGCRED_DOCKERHUB_API"),
                    transport=admin_transport,
                )
                issued = hub.issue(f"bench {uuid.uuid4()}", None)
            credential = Credential(issued.username, issued.password)
            images = [
                env["REGCRED_SEED_IMAGE"],
                env["REGCRED_SEED_ORG_IMAGE"],
                env["REGCRED_SEED_PUBLIC_IMAGE"],
            ]
            log = Path(env["REGCRED_DOCKERHUB_LOG"])

            def check(batch: list[str]) -> None:
                # A fresh transport per check: each measurement pays its own connections.
                with Transport(local_origins=local_origins) as transport:
                    client = RegistryClient(registry, trusted_realms={realm}, transport=transport)
                    result = client.check_pull(credential, batch)
                    assert result.ok, result.summary()

            one: list[float] = []
            per_image: list[float] = []
            tokens_one = tokens_per_image = 0
            for _ in range(ROUNDS):
                before = token_requests(log)
                started = time.perf_counter()
                check(images)
                one.append(time.perf_counter() - started)
                middle = token_requests(log)
                started = time.perf_counter()
                for image in images:
                    check([image])
                per_image.append(time.perf_counter() - started)
                tokens_one += middle - before
                tokens_per_image += token_requests(log) - middle
        finally:
            stack.down()
    print(
        json.dumps(
            {
                "bench": "check_pull",
                "images": len(images),
                "rounds": ROUNDS,
                "one_token_s": round(statistics.median(one), 4),
                "token_per_image_s": round(statistics.median(per_image), 4),
                "ratio": round(statistics.median(one) / statistics.median(per_image), 3),
                "token_requests_one": tokens_one / ROUNDS,
                "token_requests_per_image": tokens_per_image / ROUNDS,
            }
        )
    )


if __name__ == "__main__":
    main()
