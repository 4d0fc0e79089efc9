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
from regcred.providers.dockerhub import DockerHubProvider, api_host
from regcred.registry import Credential, RegistryClient

ROUNDS = 15


def token_requests(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if json.loads(line).get("path") == "/token")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = Stack.up(Path(root))
        try:
            env = stack.env
            hub = DockerHubProvider(
                Credential(env["REGCRED_DOCKERHUB_ADMIN_USER"], env["REGCRED_DOCKERHUB_ADMIN_TOKEN"]),
                api=env["REGCRED_DOCKERHUB_API"],
                registry=env["REGCRED_REGISTRY"],
            )
            issued = hub.issue(f"bench {uuid.uuid4()}", None)
            credential = Credential(issued.username, issued.password)
            images = [
                env["REGCRED_SEED_IMAGE"],
                env["REGCRED_SEED_ORG_IMAGE"],
                env["REGCRED_SEED_PUBLIC_IMAGE"],
            ]
            log = Path(env["REGCRED_DOCKERHUB_LOG"])
            one, per_image = [], []
            tokens_one = tokens_per_image = 0
            for _ in range(ROUNDS):
                before = token_requests(log)
                started = time.perf_counter()
                with RegistryClient(
                    env["REGCRED_REGISTRY"],
                    realm_hosts=hub.realm_hosts | {api_host(env["REGCRED_DOCKERHUB_API"])},
                ) as client:
                    assert client.check_pull(credential, images).ok
                one.append(time.perf_counter() - started)
                middle = token_requests(log)
                started = time.perf_counter()
                for image in images:
                    with RegistryClient(
                        env["REGCRED_REGISTRY"],
                        realm_hosts=hub.realm_hosts | {api_host(env["REGCRED_DOCKERHUB_API"])},
                    ) as client:
                        assert client.check_pull(credential, [image]).ok
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
