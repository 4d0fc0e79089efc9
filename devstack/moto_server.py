"""moto_server for the local stack, with one correction that makes Secrets Manager answer as AWS does.

moto sets ``RotationEnabled`` only when RotateSecret's rules carry ``AutomaticallyAfterDays``; AWS sets it
for a ``ScheduleExpression`` too (RotationRulesType: either one sets "the rotation schedule"). regcred
onboards with a ScheduleExpression, and ``regcred rotate`` refuses a secret whose rotation is not enabled, so
without this the local stack could never rotate through RotateSecret. A test double only: it lives in
devstack/, never in the layer. ``python -m devstack.moto_server -H 127.0.0.1 -p PORT`` takes moto_server's
own arguments.
"""

from __future__ import annotations

import sys
from typing import Any


def _patch() -> None:
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.rotate_secret

    def rotate_secret(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        result = original(self, secret_id, *args, **kwargs)
        rules = kwargs.get("rotation_rules") or {}
        if isinstance(rules, dict) and rules.get("ScheduleExpression"):
            self.secrets[secret_id].rotation_enabled = True
        return result

    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]


def main() -> int:
    from moto.server import main as moto_main

    _patch()
    sys.argv[0] = "moto_server"
    moto_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
