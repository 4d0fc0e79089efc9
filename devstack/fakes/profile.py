"""What the local stack needs to know to run one vendor fake beside its own instance of the real registry.

Each vendor fake package (``devstack/fakes/<vendor>/``) exposes ``PROFILE``, a `VendorProfile`. The stack
(``devstack/stack.py``) then, for each profile:

1. runs ``python -m <module> --host 127.0.0.1 --port P --state-dir DIR/<provider> --key K --cert C
   --service S --issuer I --admin-user U <extra_args...>`` with the admin secret in the environment variable
   ``secret_env`` (never on the command line);
2. runs a real distribution registry whose ``auth.token`` realm is ``http://127.0.0.1:P<realm_path>``, with
   ``service`` and ``issuer`` as given and the stack's certificate as ``rootcertbundle``;
3. pushes ``seed_images`` to that registry with a push token the fake's realm issues to the admin identity
   (HTTP Basic: ``admin_user`` and the admin secret);
4. exports ``REGCRED_<PROVIDER>_API`` (the fake's origin: regcred's --api takes an origin, the provider adds
   its API's base path), ``_REGISTRY``, ``_ADMIN_USER``,
   ``_ADMIN_TOKEN``, ``_SEED_IMAGE`` (the first seed image), ``_ONBOARD_ARGS`` and ``extra_env``.

Test double only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VendorProfile:
    provider: str  # the regcred provider name; the env prefix is REGCRED_<PROVIDER upper-cased>_
    module: str  # run as python -m <module>
    service: str  # the registry's auth.token.service, and what the fake's realm issues tokens for
    issuer: str  # the registry's auth.token.issuer, and the iss of the fake's registry tokens
    realm_path: str  # where the fake serves the registry token realm
    admin_user: str
    secret_env: str  # environment variable that carries the admin secret to the fake
    admin_secret_prefix: str = ""  # the vendor's token prefix for the generated admin secret
    seed_images: tuple[str, ...] = ()  # private ones first: the first is REGCRED_<P>_SEED_IMAGE
    onboard_args: str = ""  # the exact extra `regcred onboard` flags this provider needs on the stack
    extra_args: tuple[str, ...] = ()  # more command-line flags for the fake
    ready_path: str = "/"  # any HTTP answer here means the fake is serving
    extra_env: dict[str, str] = field(default_factory=dict)  # more exports, values may use {api}, {registry}
