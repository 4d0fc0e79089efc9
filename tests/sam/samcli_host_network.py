"""Run the SAM CLI (``.venv-sam/bin/python tests/sam/samcli_host_network.py local invoke ...``) with
``--docker-network host`` meaning what it says.

SAM CLI 1.170 accepts ``--docker-network host`` but only skips connecting the function's container to a
network: the container stays on Docker's default bridge (``samcli/local/docker/container.py``: ``if
self.network_id and self.network_id != "host"``; aws/aws-sam-cli issue #3609, PR #7278 closed unmerged).
The function then cannot reach services on the loopback of the namespace the tier runs in, and regcred
allows plain http only to loopback registries (by design), so a bridge address is not an option.

This wrapper changes only that case, for this process: when the network is ``host`` the container is
created with ``network_mode="host"`` and without published ports, and the emulator (RIE), which
SAM reaches at ``localhost:<rapid port>``, listens on that port instead of 8080; its runtime API gets a
free port too, so nothing collides with the namespace's services. Everything else is SAM's own code.
It fails loudly if SAM's internals it relies on have changed.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import samcli
from docker.models.containers import ContainerCollection
from samcli.local.docker.container import Container

TESTED_WITH = "1.170.0"
_original_create = Container.create
_original_docker_create = ContainerCollection.create


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _create(self: Any, context: Any) -> Any:
    if self.network_id == "host":
        entrypoint = list(self._entrypoint or [])
        if not entrypoint or not entrypoint[0].endswith("aws-lambda-rie"):
            raise SystemExit(
                f"samcli_host_network: unexpected entrypoint {entrypoint!r} (SAM CLI {samcli.__version__}, "
                f"tested with {TESTED_WITH}); cannot run the function on the host network"
            )
        self._entrypoint = [
            *entrypoint,
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.rapid_port_host}",
            "--runtime-api-address",
            f"127.0.0.1:{_free_port()}",
        ]
        self._container_opts = {**(self._container_opts or {}), "network_mode": "host"}
    return _original_create(self, context)


def _docker_create(self: Any, image: str, command: Any = None, **kwargs: Any) -> Any:
    if kwargs.get("network_mode") == "host":
        kwargs.pop("ports", None)  # docker-py refuses port bindings with the host network
    return _original_docker_create(self, image, command, **kwargs)


def main() -> int:
    for attr in ("_entrypoint", "_container_opts", "rapid_port_host"):
        # Instance attributes: check the constructor still sets them.
        if attr not in Container.__init__.__code__.co_names:
            print(
                f"samcli_host_network: SAM CLI {samcli.__version__} no longer has Container.{attr} "
                f"(tested with {TESTED_WITH}); update tests/sam/samcli_host_network.py",
                file=sys.stderr,
            )
            return 2
    Container.create = _create  # type: ignore[method-assign]
    ContainerCollection.create = _docker_create  # type: ignore[method-assign]
    from samcli.cli.main import cli

    return int(cli(prog_name="sam") or 0)


if __name__ == "__main__":
    sys.exit(main())
