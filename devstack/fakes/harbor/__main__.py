"""``python -m devstack.fakes.harbor``: run the Harbor fake on loopback."""

from __future__ import annotations

import json
import os
import sys

from devstack.fakes import serve

from .api import make_server
from .core import ROLE_IDS, Config

SECRET_ENV = "FAKE_HARBOR_ADMIN_SECRET"
MEMBER_SECRETS_ENV = "FAKE_HARBOR_MEMBER_SECRETS"


def main(argv: list[str] | None = None) -> int:
    p = serve.parser("harbor", "Harbor v2.0 API fake and registry token realm")
    p.add_argument("--admin-user", default="harbor-admin", help="Project Admin of every project")
    serve.add_list(p, "--project", "projects", "NAME", "a private project (repeat; default acme)")
    serve.add_list(p, "--public-project", "public_projects", "NAME", "a public project")
    member_help = (
        f"another user with this role in every project ({', '.join(ROLE_IDS)}); its password comes from "
        f"${MEMBER_SECRETS_ENV}, a JSON object of user to password"
    )
    serve.add_list(p, "--member", "member", "USER:ROLE", member_help)
    p.add_argument("--robot-prefix", default="robot$", help="robot_name_prefix (default robot$)")
    p.add_argument("--service", default="harbor-registry")
    p.add_argument("--issuer", default="harbor-token-issuer")
    p.add_argument("--token-minutes", type=int, default=30, help="registry token lifetime (token_expiration)")
    serve.add_signing(p)
    args, secret = serve.parse(p, argv, SECRET_ENV, f"set {SECRET_ENV} to the admin user's password")
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
    config = serve.config(
        Config, args, admin_secret=secret, projects=args.projects or ["acme"], members=members
    )
    return serve.serve("harbor", make_server(config, args.host, args.port), args.host)


if __name__ == "__main__":
    sys.exit(main())
