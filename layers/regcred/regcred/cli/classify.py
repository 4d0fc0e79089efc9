"""``regcred classify``: the failure class of pull-error messages (`regcred.failures`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from ..failures import classify
from .base import Context

_WHITESPACE = re.compile(r"\s+")


def _one_line(message: str) -> str:
    # The TSV form is one record per line; JSON keeps the message exactly.
    return _WHITESPACE.sub(" ", message).strip()


def cmd_classify(ctx: Context) -> int:
    """Classify each MESSAGE argument, or each non-empty stdin line when none is given.

    Prints ``CLASS<TAB>MESSAGE`` per message, or one ``{"class", "message"}`` JSON object per line with
    ``--output json``, in input order. Always exits 0: an unrecognised message is ``other``."""
    messages: list[str] = list(ctx.args.message or [])
    if not messages:
        messages = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    for message in messages:
        cls = classify(message)
        if ctx.json:
            sys.stdout.write(json.dumps({"class": cls.value, "message": message}) + "\n")
        else:
            sys.stdout.write(f"{cls.value}\t{_one_line(message)}\n")
    return 0


def register(sub: Any, *, common: Callable[[argparse.ArgumentParser], None], epilog: str) -> None:
    """Register ``classify [MESSAGE...]``."""
    p = sub.add_parser(
        "classify",
        help="classify pull-failure reasons (arguments, or one per stdin line)",
        description="Print the failure class of each Batch/ECS stopped reason: one CLASS<TAB>MESSAGE line, "
        "or "
        "one JSON object per line with --output json. Always exits 0: an unrecognised message is 'other'.",
        epilog="examples:\n  regcred classify 'CannotPullContainerError: ... 401 Unauthorized'\n"
        f"  aws batch describe-jobs ... | jq -r '.jobs[].statusReason' | regcred classify --json\n\n{epilog}",
    )
    p.add_argument("message", nargs="*", metavar="MESSAGE", help="reason text; stdin when omitted")
    common(p)
    p.set_defaults(func=cmd_classify)
