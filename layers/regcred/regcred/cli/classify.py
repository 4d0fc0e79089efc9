"""``regcred classify``: the failure class of pull-error messages (`regcred.failures`)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from ..failures import classify
from .base import Context, add_command

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


def register(sub: Any) -> None:
    """Register ``classify [MESSAGE...]``."""
    p = add_command(
        sub,
        "classify",
        cmd_classify,
        help="classify pull-failure reasons (arguments, or one per stdin line)",
        description="Print the failure class of each Batch/ECS stopped reason: one CLASS<TAB>MESSAGE line, "
        "or one JSON object per line with --output json. Always exits 0: an unrecognised message is "
        "'other'.",
        examples=[
            "regcred classify 'CannotPullContainerError: ... 401 Unauthorized'",
            "aws batch describe-jobs ... | jq -r '.jobs[].statusReason' | regcred classify --json",
        ],
    )
    p.add_argument("message", nargs="*", metavar="MESSAGE", help="reason text; stdin when omitted")
