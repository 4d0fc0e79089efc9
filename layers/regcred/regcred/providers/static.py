"""Static: any registry whose credentials regcred cannot mint (Quay, Nexus, ECR-compatible mirrors, an
in-house registry with htpasswd, a vendor without a token API).

There is no vendor API: an operator creates each new credential at the registry and hands it over with
``regcred import NAME`` (token on stdin, or a prompt). The credential then goes through the same pending ->
test -> promote path as a rotation, proven through the registry's own ``/v2/`` flow (Bearer or Basic), and
the old one is retired after the grace period: recorded as retired, and never used for a rollback again.
regcred cannot revoke it: the operator does, at the registry.

The registry and any token realm on another host come from configuration (``--registry``, ``--realm-host``,
among the hosts the deployment allows); nothing here names a host.
"""

from __future__ import annotations

from ..errors import ProviderError
from .base import BuildContext, ImportedCredential, Lifetime, ProviderPlugin, ProviderSpec, Strategy

SPEC = ProviderSpec(
    name="static",
    strategy=Strategy.IMPORT,
    default_registry=None,
    default_api=None,
    needs_api=False,
    title="Any registry (static credentials)",
    credential="a credential an operator creates at the registry (robot account, service user, token)",
    setup="a pull-only user or robot at the registry; hand each new credential over with regcred import",
    admin_permissions="none: regcred holds no admin credential for it",
    username_form="whatever the registry issued (given with --username)",
    realm_note="the registry from --registry; a token realm on another host from --realm-host (both among "
    "the deployment's allowed registry hosts)",
    lifetime=Lifetime(min_s=0, never_expires=True, note="whatever the registry gives; regcred records none"),
    cannot=(
        "mint, rotate or revoke credentials: an operator creates each one and revokes the old one",
        "know when a credential expires (none is recorded)",
    ),
)


class StaticRegistry:
    """The static provider: nothing to ask a vendor, nothing to revoke."""

    spec = SPEC

    def inspect(self, username: str, password: str) -> ImportedCredential:
        """Nothing to ask: the pull proof is the only check."""
        return ImportedCredential(
            notes=("the registry reports no expiry: revoke the old credential there after the grace period",)
        )

    def can_revoke(self) -> bool:
        return False

    def revoke_value(self, password: str) -> None:
        raise ProviderError("the static provider cannot revoke a credential: revoke it at the registry")


def _build(ctx: BuildContext) -> StaticRegistry:
    return StaticRegistry()


PLUGIN = ProviderPlugin(SPEC, _build)
