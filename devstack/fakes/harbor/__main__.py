"""``python -m devstack.fakes.harbor``: run the Harbor fake on loopback."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .api import make_server
from .core import ROLE_IDS, Config

SECRET_ENV = "FAKE_HARBOR_ADMIN_SECRET"
MEMBER_SECRETS_ENV = "FAKE_HARBOR_MEMBER_SECRETS"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m devstack.fakes.harbor", description="Harbor v2.0 API fake and registry token realm"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--admin-user", default="harbor-admin", help="Project Admin of every project")
    p.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="NAME",
        help="a private project (repeat; default acme)",
    )
    p.add_argument("--public-project", action="append", default=[], metavar="NAME", help="a public project")
    p.add_argument(
        "--member",
        action="append",
        default=[],
        metavar="USER:ROLE",
        help=f"another user with this role in every project ({', '.join(ROLE_IDS)}); its password comes "
        f"from ${MEMBER_SECRETS_ENV}, a JSON object of user to password",
    )
    p.add_argument("--robot-prefix", default="robot$", help="robot_name_prefix (default robot$)")
    p.add_argument("--service", default="harbor-registry")
    p.add_argument("--issuer", default="harbor-token-issuer")
    p.add_argument("--token-minutes", type=int, default=30, help="registry token lifetime (token_expiration)")
    p.add_argument("--key", type=Path, default=None, help="RSA key PEM (default: STATE_DIR/signing.key)")
    p.add_argument("--cert", type=Path, default=None, help="certificate PEM (default: STATE_DIR/signing.crt)")
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host != "localhost":
        p.error("the fake binds to loopback only")
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        p.error(f"set {SECRET_ENV} to the admin user's password")
    members: dict[str, tuple[str, str]] = {}
    if args.member:
        try:
            passwords = json.loads(os.environ.get(MEMBER_SECRETS_ENV) or "{}")
        except ValueError:
            p.error(f"{MEMBER_SECRETS_ENV} must be a JSON object of user to password")
        for item in args.member:
            user, _, role = item.partition(":")
            if role not in ROLE_IDS or not isinstance(passwords.get(user), str):
                p.error(
                    f"--member {item}: give USER:ROLE with a role in {', '.join(ROLE_IDS)} and a password"
                )
            members[user] = (passwords[user], role)
    config = Config(
        state_dir=args.state_dir,
        admin_user=args.admin_user,
        admin_secret=secret,
        key_path=args.key or args.state_dir / "signing.key",
        cert_path=args.cert or args.state_dir / "signing.crt",
        projects=list(args.project) or ["acme"],
        public_projects=list(args.public_project),
        members=members,
        robot_prefix=args.robot_prefix,
        service=args.service,
        issuer=args.issuer,
        token_minutes=args.token_minutes,
    )
    server = make_server(config, args.host, args.port)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake harbor listening on http://{args.host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
