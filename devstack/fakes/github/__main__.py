"""``python -m devstack.fakes.github``: run the GitHub fake (REST API subset, ghcr.io realm) on loopback."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from . import PROFILE
from .api import make_server
from .github import Config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devstack.fakes.github",
        description="GitHub REST API fake (GET /user, POST /credentials/revoke) and ghcr.io token realm",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--admin-user", default=PROFILE.admin_user, help="the GitHub login that owns the packages")
    p.add_argument("--public", action="append", default=[], metavar="REPO", help="a public package (repeat)")
    p.add_argument("--service", default=PROFILE.service)
    p.add_argument("--issuer", default=PROFILE.issuer)
    p.add_argument("--key", type=Path, default=None, help="RSA key PEM (default: STATE_DIR/signing.key)")
    p.add_argument("--cert", type=Path, default=None, help="certificate PEM (default: STATE_DIR/signing.crt)")
    p.add_argument("--rate-limit", type=int, default=5000, help="authenticated requests an hour per user")
    p.add_argument(
        "--revoke-limit", type=int, default=60, help="POST /credentials/revoke an hour per address"
    )
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host != "localhost":
        p.error("the fake binds to loopback only")
    secret = os.environ.get(PROFILE.secret_env)
    if not secret:
        p.error(f"set {PROFILE.secret_env} to the admin user's personal access token")
    config = Config(
        state_dir=args.state_dir,
        admin_user=args.admin_user,
        admin_secret=secret,
        key_path=args.key or args.state_dir / "signing.key",
        cert_path=args.cert or args.state_dir / "signing.crt",
        public_repos=list(args.public),
        service=args.service,
        issuer=args.issuer,
        rate_limit=args.rate_limit,
        revoke_limit=args.revoke_limit,
    )
    server = make_server(config, args.host, args.port)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake github listening on http://{args.host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
