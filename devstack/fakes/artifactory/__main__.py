"""``python -m devstack.fakes.artifactory``: run the Artifactory fake on loopback."""

from __future__ import annotations

import sys

from devstack.fakes import serve

from . import SECRET_ENV
from .access import Config
from .api import make_server


def main(argv: list[str] | None = None) -> int:
    p = serve.parser(
        "artifactory", "JFrog Artifactory Access tokens API fake and Docker token realm", allow_abbrev=False
    )
    serve.add_signing(p)
    p.add_argument("--service", default="artifactory", help="the registry's auth.token.service")
    p.add_argument("--issuer", default="jfrog-access", help="the registry's auth.token.issuer")
    p.add_argument(
        "--admin-user", default="jfrog-admin", help=f"the admin whose access token is ${SECRET_ENV}"
    )
    serve.add_list(p, "--repo-key", "repo_keys", "KEY", "a Docker repository key (repeat)")
    serve.add_list(
        p, "--pull-user", "pull_users", "USER", "a user with read on every Docker repository (repeat)"
    )
    p.add_argument("--instance-id", default="01fakeaccess0000000000000000", help="the Access service id")
    p.add_argument("--max-expiry", type=int, default=0, help="token.max-expiry in seconds (0: no cap)")
    p.add_argument("--default-expiry", type=int, default=365 * 24 * 3600, help="token.default-expiry")
    p.add_argument("--revocable-expiry-threshold", type=int, default=6 * 3600, help="seconds")
    p.add_argument("--persistent-expiry-threshold", type=int, default=3 * 3600, help="seconds")
    missing = f"set {SECRET_ENV} to the admin access token (16 characters or more)"
    args, secret = serve.parse(p, argv, SECRET_ENV, missing, min_length=16)
    config = serve.config(
        Config,
        args,
        admin_token=secret,
        repo_keys=args.repo_keys or ["docker-local"],
        revocable_threshold=args.revocable_expiry_threshold,
        persistent_threshold=args.persistent_expiry_threshold,
    )
    return serve.serve("artifactory", make_server(config, args.host, args.port), args.host)


if __name__ == "__main__":
    sys.exit(main())
