"""The ``regcred classify`` subcommand: the only I/O in the package."""

from __future__ import annotations

import argparse
import json
import re
import sys

from .rules import classify

_WHITESPACE = re.compile(r"\s+")


def _one_line(message: str) -> str:
    # The TSV form is one record per line; JSON keeps the message exactly.
    return _WHITESPACE.sub(" ", message).strip()


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify each MESSAGE argument, or each non-empty stdin line when none is given.

    Prints ``CLASS<TAB>MESSAGE`` per message, or one ``{"class", "message"}`` JSON object per line
    with ``--json``, in input order. Always exits 0: an unrecognised message is ``other``.
    """
    messages: list[str] = list(args.message or [])
    if not messages:
        messages = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    for message in messages:
        cls = classify(message)
        if args.json:
            sys.stdout.write(json.dumps({"class": cls.value, "message": message}) + "\n")
        else:
            sys.stdout.write(f"{cls.value}\t{_one_line(message)}\n")
    return 0


def add_classify_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``classify [--json] [MESSAGE...]`` on the CLI's subcommands."""
    parser = sub.add_parser(
        "classify",
        help="classify pull-failure reasons (arguments, or one per stdin line)",
        description="Print the failure class of each Batch/ECS stopped reason.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("message", nargs="*", metavar="MESSAGE", help="reason text; stdin when omitted")
    parser.set_defaults(func=cmd_classify)
