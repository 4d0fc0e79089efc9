"""``python -m devstack.fakes.artifactory``: run the Artifactory fake on loopback."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from . import SECRET_ENV
from .access import Config
from .api import make_server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devstack.fakes.artifactory",
        description="JFrog Artifactory Access tokens API fake and Docker token realm",
        allow_abbrev=False,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--key", type=Path, default=None, help="RSA key PEM (default: STATE_DIR/signing.key)")
    p.add_argument("--cert", type=Path, default=None, help="certificate PEM (default: STATE_DIR/signing.crt)")
    p.add_argument("--service", default="artifactory", help="the registry's auth.token.service")
    p.add_argument("--issuer", default="jfrog-access", help="the registry's auth.token.issuer")
    p.add_argument(
        "--admin-user", default="jfrog-admin", help=f"the admin whose access token is ${SECRET_ENV}"
    )
    p.add_argument(
        "--repo-key", action="append", default=[], metavar="KEY", help="a Docker repository key (repeat)"
    )
    p.add_argument(
        "--pull-user",
        action="append",
        default=[],
        metavar="USER",
        help="a user with read on every Docker repository (repeat)",
    )
    p.add_argument("--instance-id", default="01fakeaccess0000000000000000", help="the Access service id")
    p.add_argument("--max-expiry", type=int, default=0, help="token.max-expiry in seconds (0: no cap)")
    p.add_argument("--default-expiry", type=int, default=365 * 24 * 3600, help="token.default-expiry")
    p.add_argument("--revocable-expiry-threshold", type=int, default=6 * 3600, help="seconds")
    p.add_argument("--persistent-expiry-threshold", type=int, default=3 * 3600, help="seconds")
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host != "localhost":
        p.error("the fake binds to loopback only")
    secret = os.environ.get(SECRET_ENV)
    if not secret or len(secret) < 16:
        p.error(f"set {SECRET_ENV} to the admin access token (16 characters or more)")
    config = Config(
        state_dir=args.state_dir,
        admin_user=args.admin_user,
        admin_token=secret,
        key_path=args.key or args.state_dir / "signing.key",
        cert_path=args.cert or args.state_dir / "signing.crt",
        repo_keys=list(args.repo_key) or ["docker-local"],
        pull_users=list(args.pull_user),
        service=args.service,
        issuer=args.issuer,
        instance_id=args.instance_id,
        max_expiry=args.max_expiry,
        default_expiry=args.default_expiry,
        revocable_threshold=args.revocable_expiry_threshold,
        persistent_threshold=args.persistent_expiry_threshold,
    )
    server = make_server(config, args.host, args.port)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake artifactory listening on http://{args.host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
