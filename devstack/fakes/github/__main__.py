"""``python -m devstack.fakes.github``: run the GitHub fake (REST API subset, ghcr.io realm) on loopback."""

from __future__ import annotations

import sys

from devstack.fakes import serve

from . import PROFILE
from .api import make_server
from .github import Config


def main(argv: list[str] | None = None) -> int:
    p = serve.parser(
        "github", "GitHub REST API fake (GET /user, POST /credentials/revoke) and ghcr.io token realm"
    )
    p.add_argument("--admin-user", default=PROFILE.admin_user, help="the GitHub login that owns the packages")
    serve.add_list(p, "--public", "public_repos", "REPO", "a public package (repeat)")
    p.add_argument("--service", default=PROFILE.service)
    p.add_argument("--issuer", default=PROFILE.issuer)
    serve.add_signing(p)
    p.add_argument("--rate-limit", type=int, default=5000, help="authenticated requests an hour per user")
    p.add_argument(
        "--revoke-limit", type=int, default=60, help="POST /credentials/revoke an hour per address"
    )
    missing = f"set {PROFILE.secret_env} to the admin user's personal access token"
    args, secret = serve.parse(p, argv, PROFILE.secret_env, missing)
    config = serve.config(Config, args, admin_secret=secret)
    return serve.serve("github", make_server(config, args.host, args.port), args.host)


if __name__ == "__main__":
    sys.exit(main())
