"""``regcred providers`` (what every provider declares) and ``regcred import`` (a new credential for a
provider regcred cannot mint)."""

from __future__ import annotations

from typing import Any

from .. import providers
from ..providers.base import ProviderSpec
from ..timefmt import format_time
from .base import SECRET_HELP, Context, Status, add_command, read_token, table


def describe(spec: ProviderSpec) -> dict[str, Any]:
    """A provider's declared facts, as `regcred providers --output json` shows them."""

    def origin(o: Any) -> str | None:
        return o.url("").rstrip("/") if o is not None else None

    life = spec.lifetime
    return {
        "name": spec.name,
        "title": spec.title or spec.name,
        "strategy": spec.strategy.value,
        "can_mint": spec.can_mint,
        "credential": spec.credential,
        "default_registry": origin(spec.default_registry),
        "default_api": origin(spec.default_api),
        "token_realms": sorted(origin(r) or "" for r in spec.realms),
        "hosts_note": spec.realm_note,
        "lifetime": {
            "min_seconds": life.min_s,
            "max_seconds": life.max_s,
            "never_expires_possible": life.never_expires,
            "note": life.note,
        },
        "admin_secret": [
            {"field": f.name, "required": f.required, "secret": f.secret, "help": f.help}
            for f in spec.admin_fields
        ],
        "admin_permissions": spec.admin_permissions,
        "username_form": spec.username_form,
        "settings": [
            {
                "name": s.name,
                "tag": s.tag,
                "flag": f"--{s.name}",
                "required": s.required,
                "choices": list(s.choices),
                "default": s.default,
                "help": s.help,
            }
            for s in spec.settings
        ],
        "setup": spec.setup,
        "cannot": list(spec.cannot),
        "label_max": spec.label_max,
    }


def cmd_providers(ctx: Context) -> int:
    """List every provider (built in and plug-in) with what it declares."""
    plugins = providers.plugins()
    found = [describe(p.spec) for p in plugins.values()]
    broken = providers.load_errors()
    rows = [["NAME", "STRATEGY", "REGISTRY", "CREDENTIAL"]]
    for item in found:
        rows.append(
            [item["name"], item["strategy"], item["default_registry"] or "(configured)", item["credential"]]
        )
    text = table(rows)
    if broken:
        text += "\n" + "\n".join(f"plug-in {name} left out: {why}" for name, why in sorted(broken.items()))
    ctx.emit({"providers": found, "plugin_errors": broken, "exit_code": 0}, text)
    return 0


def cmd_import(ctx: Context) -> int:
    """Put a new operator-supplied credential through pending -> test -> promote."""
    from ..importing import Importer
    from ..rotation import Rotator

    args = ctx.args
    token = read_token(f"new token{' for ' + args.username if args.username else ''} (not echoed): ")
    rotator = Rotator(
        ctx.store(),
        batch=ctx.client("batch"),
        deployment=ctx.deployment(),
        require_rotation_enabled=False,
        step_seconds=ctx.timeout,
    )
    result = Importer(rotator, say=ctx.progress).run(
        args.secret, username=args.username, password=token, dry_run=args.dry_run
    )
    status = Status.DRY_RUN if result.dry_run else Status.OK
    report = {
        "secret": result.secret,
        "status": status,
        "result": "already_current"
        if result.already_current
        else ("would_import" if result.dry_run else "imported"),
        "version_id": result.version,
        "previous_version_id": result.previous_version,
        "username": result.username,
        "token_id": result.token_id,
        "expires_at": format_time(result.expires_at) if result.expires_at else None,
        "images": list(result.images),
        "notes": result.notes,
        "dry_run": result.dry_run,
        "exit_code": 0,
    }
    expiry = f", expires {format_time(result.expires_at)}" if result.expires_at else ", no expiry reported"
    if result.already_current:
        text = f"nothing to do: that token is AWSCURRENT of {result.secret} already"
    elif result.dry_run:
        text = (
            f"dry run: the token of {result.username} pulls {', '.join(result.images)}{expiry}; nothing was "
            "stored"
        )
    else:
        text = (
            f"imported: version {result.version} is AWSCURRENT of {result.secret} (token {result.token_id}"
            f"{expiry}); the previous credential is retired after the grace period (`regcred retire "
            f"{result.secret}`)"
        )
    text += "".join(f"\nnote: {n}" for n in result.notes)
    ctx.emit(report, text)
    return 0


def register(sub: Any) -> None:
    """Register ``providers`` and ``import``."""
    add_command(
        sub,
        "providers",
        cmd_providers,
        help="list the providers and what each declares",
        description="Every provider, built in or installed as a plug-in (entry-point group "
        "regcred.providers): its strategy, default registry and token realms, lifetime limits, admin secret "
        "fields, the admin permissions it needs, the username its credentials use, its settings and what "
        "regcred cannot do for it.",
        examples=["regcred providers", "regcred providers --output json | jq '.providers[].name'"],
    )
    imp = add_command(
        sub,
        "import",
        cmd_import,
        help="promote a new token for a provider regcred cannot mint (ghcr, static)",
        description="Read a new token (prompted without echo, or one line of stdin), ask the vendor what it "
        "can say about it (GitHub: its scopes and expiry), store it as AWSPENDING, prove it pulls the probe "
        "images through the registry's /v2/ flow, and promote it to AWSCURRENT; the previous credential "
        "becomes AWSPREVIOUS and is retired after the grace period. A token that cannot pull is never "
        "promoted.",
        examples=[
            "regcred import batch/ghcr < new-token.txt",
            "regcred import batch/quay --username 'acme+puller'   # prompted",
            "regcred import batch/ghcr --dry-run < new-token.txt",
        ],
    )
    imp.add_argument("secret", metavar="SECRET", help=SECRET_HELP)
    imp.add_argument("--username", help="the token's username (default: the vendor's, else AWSCURRENT's)")
    imp.add_argument("--dry-run", action="store_true", help="check and prove the token, store nothing")
