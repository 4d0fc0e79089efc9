"""``python -m devstack.fakes.gitlab``: run the GitLab fake on loopback."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .api import make_server
from .state import ROLES, Config

SECRET_ENV = "FAKE_GITLAB_ADMIN_TOKEN"
LOOPBACK = ("localhost",)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devstack.fakes.gitlab",
        description=f"GitLab REST API v4 fake (deploy and access tokens) and /jwt/auth registry realm; the "
        f"admin's personal access token comes from ${SECRET_ENV}",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--admin-user", default="gitlab-admin")
    p.add_argument(
        "--project", action="append", default=[], metavar="GROUP/PROJECT", help="a private project (repeat)"
    )
    p.add_argument("--public-project", action="append", default=[], metavar="GROUP/PROJECT")
    p.add_argument(
        "--admin-role", choices=sorted(ROLES), default="owner", help="the admin's role on every group"
    )
    p.add_argument("--max-token-lifetime-days", type=int, default=365)
    p.add_argument("--service", default="container_registry")
    p.add_argument("--issuer", default="gitlab-issuer")
    p.add_argument("--key", type=Path, default=None, help="RSA key PEM (default: STATE_DIR/signing.key)")
    p.add_argument("--cert", type=Path, default=None, help="certificate PEM (default: STATE_DIR/signing.crt)")
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in LOOPBACK:
        p.error("the fake binds to loopback only")
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        p.error(f"set {SECRET_ENV} to the admin's personal access token")
    config = Config(
        state_dir=args.state_dir,
        admin_user=args.admin_user,
        admin_secret=secret,
        key_path=args.key or args.state_dir / "signing.key",
        cert_path=args.cert or args.state_dir / "signing.crt",
        projects=list(args.project) or ["acme/app"],
        public_projects=list(args.public_project),
        service=args.service,
        issuer=args.issuer,
        admin_role=args.admin_role,
        max_lifetime_days=args.max_token_lifetime_days,
    )
    server = make_server(config, args.host, args.port)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake gitlab listening on http://{args.host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
