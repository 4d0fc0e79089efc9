"""``python -m devstack.fakes.gitlab``: run the GitLab fake on loopback."""

from __future__ import annotations

import sys

from devstack.fakes import serve

from .api import make_server
from .state import ROLES, Config

SECRET_ENV = "FAKE_GITLAB_ADMIN_TOKEN"


def main(argv: list[str] | None = None) -> int:
    p = serve.parser(
        "gitlab",
        f"GitLab REST API v4 fake (deploy and access tokens) and /jwt/auth registry realm; the admin's "
        f"personal access token comes from ${SECRET_ENV}",
    )
    p.add_argument("--admin-user", default="gitlab-admin")
    serve.add_list(p, "--project", "projects", "GROUP/PROJECT", "a private project (repeat)")
    serve.add_list(p, "--public-project", "public_projects", "GROUP/PROJECT")
    p.add_argument(
        "--admin-role", choices=sorted(ROLES), default="owner", help="the admin's role on every group"
    )
    p.add_argument(
        "--max-token-lifetime-days",
        type=int,
        default=365,
        dest="max_lifetime_days",
        metavar="MAX_TOKEN_LIFETIME_DAYS",
    )
    p.add_argument("--service", default="container_registry")
    p.add_argument("--issuer", default="gitlab-issuer")
    serve.add_signing(p)
    args, secret = serve.parse(p, argv, SECRET_ENV, f"set {SECRET_ENV} to the admin's personal access token")
    config = serve.config(Config, args, admin_secret=secret, projects=args.projects or ["acme/app"])
    return serve.serve("gitlab", make_server(config, args.host, args.port), args.host)


if __name__ == "__main__":
    sys.exit(main())
