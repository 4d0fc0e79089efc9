"""``python -m devstack.fakes.dockerhub``: run the Docker Hub fake on loopback."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .api import make_server
from .hub import Config

SECRET_ENV = "FAKE_DOCKERHUB_ADMIN_SECRET"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devstack.fakes.dockerhub", description="Docker Hub API fake and registry token realm"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--admin-user", default="acme")
    p.add_argument("--admin-secret", default=None, help=f"default: ${SECRET_ENV}")
    p.add_argument("--org", default="acmecorp")
    p.add_argument(
        "--public", action="append", default=[], metavar="REPO", help="a public repository (repeat)"
    )
    p.add_argument("--service", default="registry.docker.io")
    p.add_argument("--issuer", default="auth.docker.io")
    p.add_argument("--key", type=Path, default=None, help="RSA key PEM (default: STATE_DIR/signing.key)")
    p.add_argument("--cert", type=Path, default=None, help="certificate PEM (default: STATE_DIR/signing.crt)")
    p.add_argument(
        "--pat-bearer",
        choices=("allow", "deny"),
        default="allow",
        help="may a bearer obtained with a PAT manage access tokens",
    )
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host != "localhost":
        p.error("the fake binds to loopback only")
    secret = args.admin_secret or os.environ.get(SECRET_ENV)
    if not secret:
        p.error(f"give --admin-secret or set {SECRET_ENV}")
    config = Config(
        state_dir=args.state_dir,
        admin_user=args.admin_user,
        admin_secret=secret,
        org=args.org,
        key_path=args.key or args.state_dir / "signing.key",
        cert_path=args.cert or args.state_dir / "signing.crt",
        public_repos=list(args.public),
        service=args.service,
        issuer=args.issuer,
        pat_bearer_may_manage=args.pat_bearer == "allow",
    )
    server = make_server(config, args.host, args.port)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake dockerhub listening on http://{args.host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
