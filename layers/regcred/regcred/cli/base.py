"""What every ``regcred`` command shares: exit codes, the common flags, the parser that refuses prefixes and
suggests the flag meant, output in text or JSON, progress on a terminal, and AWS clients for the chosen
region and profile. docs/ARCHITECTURE.md, "The CLI", lists the commands.
"""

from __future__ import annotations

import argparse
import difflib
import enum
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .. import __version__


class ExitCode(enum.IntEnum):
    """The same for every command (README, "Exit codes")."""

    OK = 0
    FAILED = 1  # a check or an action failed
    UNCHECKED = 2  # could not check: unreachable, rate limited, timed out
    USAGE = 64  # unknown command or flag, bad value (sysexits EX_USAGE)
    CONFIG = 69  # no region or credentials, access denied, a secret not set up for regcred (EX_UNAVAILABLE)
    INTERRUPTED = 130  # Ctrl-C


class Status(enum.StrEnum):
    """The ``status`` field of a command's JSON result."""

    OK = "ok"
    FAILED = "failed"
    UNCHECKED = "unchecked"
    CREATED = "created"
    RESUMED = "resumed"
    STARTED = "started"
    PROMOTED = "promoted"
    DRY_RUN = "dry_run"
    ERROR = "error"


EXIT_CODES_HELP = """exit codes (the same for every command):
  0    success
  1    a check or an action failed
  2    could not check: registry or vendor unreachable, rate limited, timed out
  64   usage error: unknown command or flag, bad value
  69   configuration or permission problem: no region, no credentials, access denied,
       a secret that does not exist or is not set up for regcred
  130  interrupted (Ctrl-C)"""


class CommandError(Exception):
    """A command stops: ``message`` for the user, ``code`` for scripts, ``fields`` for the JSON error."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields


class UsageError(CommandError):
    """Bad command line (exit 64)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean --json?)`` for the closest choice, else empty."""
    options = sorted(set(choices))
    # Prefixes are refused, not guessed: a word that starts several flags names them all.
    started = [c for c in options if c.startswith(word) and len(word) >= 3] if word.startswith("--") else []
    if started:
        return f"; did you mean {' or '.join(started)}?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class Parser(argparse.ArgumentParser):
    """argparse with exact flags only (no prefix matching), errors as `UsageError` (exit 64, never a code a
    result uses), and descriptions and examples kept as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument COMMAND") and "invalid choice:" in message and self._subparsers:
            wrong = message.split("invalid choice:", 1)[1].split("'")[1] if "'" in message else ""
            names = [
                a for action in self._subparsers._group_actions for a in getattr(action, "choices", {}) or {}
            ]
            message += suggest(wrong, names)
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def subcommand(self, name: str) -> Parser | None:
        """The parser of a subcommand."""
        if self._subparsers is None:
            return None
        for action in self._subparsers._group_actions:
            choices = getattr(action, "choices", None) or {}
            if name in choices:
                found: Parser = choices[name]
                return found
        return None

    def option_strings(self) -> list[str]:
        return [s for action in self._actions for s in action.option_strings]


SECRET_HELP = "name or ARN of the managed secret"  # noqa: S105 - a help text


def add_command(
    sub: Any, name: str, func: Any, *, help: str, description: str, examples: Sequence[str]
) -> Parser:
    """One subcommand: its help, description and examples, the exit codes in its epilog, and the function
    that runs it. The caller adds the command's own arguments; `regcred.cli.main` adds the common flags."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) + f"\n\n{EXIT_CODES_HELP}"
    parser: Parser = sub.add_parser(name, help=help, description=description, epilog=epilog)
    parser.set_defaults(func=func)
    return parser


def add_common(parser: argparse.ArgumentParser) -> None:
    """The flags every command takes. SUPPRESS defaults: a flag given before the command is not reset by the
    command's own parser."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--output", "-o", choices=("text", "json"), default=argparse.SUPPRESS, help="text (default) or json"
    )
    group.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        default=argparse.SUPPRESS,
        help="--output json",
    )
    group.add_argument(
        "--region", default=argparse.SUPPRESS, help="AWS region (else AWS_REGION, AWS_DEFAULT_REGION)"
    )
    group.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile (else AWS_PROFILE)")
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="library logs on stderr (never a secret)",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="limit for registry and vendor calls (each step also keeps its own, lower limits) and for "
        "--wait (default 120)",
    )
    group.add_argument(
        "--allow-registry-host",
        action="append",
        default=argparse.SUPPRESS,
        metavar="HOST",
        help="a registry or token realm credentials may be sent to, besides the providers' own "
        "(also REGCRED_ALLOWED_REGISTRY_HOSTS)",
    )
    group.add_argument(
        "--allow-api-host",
        action="append",
        default=argparse.SUPPRESS,
        metavar="HOST",
        help="a vendor API the admin credential may be sent to (also REGCRED_ALLOWED_API_HOSTS)",
    )
    group.add_argument("--version", action="version", version=f"regcred {__version__}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the raw command line asks for JSON (for errors found before parsing ends)."""
    for i, arg in enumerate(argv):
        if arg in ("--json",) or arg in ("--output=json", "-ojson"):
            return True
        if arg in ("--output", "-o") and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
    return False


class Progress:
    """One updating line on stderr while a long operation runs, only on a terminal and never in JSON mode's
    stdout. ``left`` is what an interruption would leave behind, said when Ctrl-C stops the command."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.left = ""
        self._shown = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K[{self.elapsed():5.1f}s] {text}")
            sys.stderr.flush()
            self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = False


@dataclass
class Context:
    """One command's settings, clients and output."""

    args: argparse.Namespace
    output: str = "text"
    region: str | None = None
    profile: str | None = None
    debug: bool = False
    timeout: float = 120.0
    progress: Progress = field(default_factory=lambda: Progress(False))
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        output = getattr(args, "output", "text")
        return cls(
            args=args,
            output=output,
            region=getattr(args, "region", None),
            profile=getattr(args, "profile", None),
            debug=bool(getattr(args, "debug", False)),
            timeout=float(getattr(args, "timeout", 120.0)),
            progress=Progress(sys.stderr.isatty() and not os.environ.get("REGCRED_NO_PROGRESS")),
        )

    @property
    def json(self) -> bool:
        return self.output == "json"

    def session(self) -> Any:
        """The boto3 session of ``--profile`` and ``--region``; CONFIG errors in the user's words."""
        if self._session is None:
            import boto3
            from botocore.exceptions import ProfileNotFound

            try:
                self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
            except ProfileNotFound:
                raise CommandError(
                    f"AWS profile {self.profile or os.environ.get('AWS_PROFILE')!r} is not in ~/.aws/config: "
                    "fix --profile or AWS_PROFILE",
                    ExitCode.CONFIG,
                ) from None
            if not self._session.region_name:
                raise CommandError(
                    "no AWS region: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION (or region in the "
                    "profile's section of ~/.aws/config)",
                    ExitCode.CONFIG,
                )
        return self._session

    def client(self, service: str) -> Any:
        """One boto3 client per service for the whole command (building one costs tens of milliseconds)."""
        if service not in self._clients:
            from .. import aws

            self._clients[service] = aws.client(service, session=self.session())
        return self._clients[service]

    def store(self) -> Any:
        """The secret store on this command's Secrets Manager client."""
        from ..store import SecretStore

        return SecretStore(self.client("secretsmanager"))

    def deployment(self) -> Any:
        from ..routing import Deployment

        return Deployment.from_env(
            extra_registry_hosts=getattr(self.args, "allow_registry_host", None) or (),
            extra_api_hosts=getattr(self.args, "allow_api_host", None) or (),
        )

    def emit(self, result: dict[str, Any], text: str) -> None:
        """The command's result: one JSON object, or the text."""
        self.progress.done()
        out(json.dumps(result, default=str) if self.json else text)


def read_token(prompt: str) -> str:
    """A token to import: asked for without echo on a terminal, else one line of stdin. Empty is a usage
    error."""
    import getpass

    token = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()
    if not token.strip():
        raise CommandError("the token to import is empty: nothing was stored", ExitCode.USAGE)
    return token.strip()


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write((text if text.startswith("regcred") else f"regcred: {text}") + "\n")
    sys.stderr.flush()


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the last one is not padded."""
    if not rows:
        return ""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [f"{cell!s:<{widths[i]}}" for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)
