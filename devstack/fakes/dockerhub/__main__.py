"""``python -m devstack.fakes.dockerhub``: run the Docker Hub fake on loopback."""

from __future__ import annotations

import sys

from devstack.fakes import serve

from .api import make_server
from .hub import Config

SECRET_ENV = "FAKE_DOCKERHUB_ADMIN_SECRET"


def main(argv: list[str] | None = None) -> int:
    p = serve.parser("dockerhub", "Docker Hub API fake and registry token realm")
    p.add_argument("--admin-user", default="acme")
    p.add_argument("--admin-secret", default=None, help=f"default: ${SECRET_ENV}")
    p.add_argument("--org", default="acmecorp")
    serve.add_list(p, "--public", "public_repos", "REPO", "a public repository (repeat)")
    p.add_argument("--service", default="registry.docker.io")
    p.add_argument("--issuer", default="auth.docker.io")
    serve.add_signing(p)
    p.add_argument(
        "--pat-bearer",
        choices=("allow", "deny"),
        default="allow",
        help="may a bearer obtained with a PAT manage access tokens",
    )
    args, secret = serve.parse(
        p, argv, SECRET_ENV, f"give --admin-secret or set {SECRET_ENV}", secret_flag="admin_secret"
    )
    config = serve.config(Config, args, admin_secret=secret, pat_bearer_may_manage=args.pat_bearer == "allow")
    return serve.serve("dockerhub", make_server(config, args.host, args.port), args.host)


if __name__ == "__main__":
    sys.exit(main())
