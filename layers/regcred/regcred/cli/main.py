"""``regcred``: the parser of every command, and the one place errors become exit codes and messages."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import classify, diagnose, onboard, providers, rotation, secrets, sweep
from .base import (
    EXIT_CODES_HELP,
    CommandError,
    Context,
    ExitCode,
    Parser,
    UsageError,
    add_common,
    err,
    suggest,
    wants_json,
)

DESCRIPTION = """Keeps the private-registry credentials of AWS Batch and ECS jobs alive: onboard a secret
with a fresh, proven credential, check it pulls, rotate and retire it, diagnose a failed job.

With the local stack's environment sourced (. .stack/env), every command uses the stack's moto_server,
registry and vendor fakes, never a real vendor."""

EXAMPLES = """examples:
  regcred onboard batch/dockerhub --provider dockerhub --admin-secret admin/dockerhub --image acme/app:1
  regcred check batch/dockerhub --output json
  regcred rotate batch/dockerhub --wait
  regcred diagnose 8f1c2d3e-0000-4000-8000-000000000000"""

_GROUPS = (onboard, providers, secrets, sweep, rotation, diagnose, classify)


def build_parser() -> Parser:
    """The parser of every command."""
    parser = Parser(
        prog="regcred",
        description=DESCRIPTION,
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES_HELP}",
    )
    add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for group in _GROUPS:
        group.register(sub)
    for command in sub.choices.values():
        add_common(command)  # after each command's own arguments, as its usage line shows them
    return parser


def _unknown_flags(parser: Parser, args: argparse.Namespace, extras: list[str]) -> UsageError:
    command = getattr(args, "command", None)
    sub = parser.subcommand(command) if command else parser
    options = (sub or parser).option_strings()
    first = extras[0]
    hint = suggest(first.split("=", 1)[0], options) if first.startswith("-") else ""
    prog = (sub or parser).prog
    return UsageError(f"{prog}: unrecognized arguments: {' '.join(extras)}{hint} (see {prog} --help)")


def classified(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and message of an error a command did not handle itself. Never an exception's text
    unless regcred wrote it (botocore's may quote a request)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    from ..aws import ACCESS_DENIED_CODES, aws_error_code
    from ..errors import (
        ConfigurationError,
        DestinationRefused,
        ProviderAuthError,
        RegcredError,
        RotationRetryable,
        SecretFormatError,
        TransportError,
    )
    from ..store import SecretAccessDenied, SecretNotFound

    if isinstance(exc, NoRegionError):
        return ExitCode.CONFIG, "no AWS region: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ExitCode.CONFIG, (
            "no AWS credentials: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return ExitCode.UNCHECKED, f"AWS could not be reached ({type(exc).__name__}); try again"
    if isinstance(exc, ClientError):
        code = aws_error_code(exc)
        operation = getattr(exc, "operation_name", "") or "an AWS call"
        if code in ACCESS_DENIED_CODES:
            return (
                ExitCode.CONFIG,
                f"{operation}: access denied ({code}); see the operator IAM policy in the README",
            )
        if code in ("ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"):
            return ExitCode.UNCHECKED, f"{operation}: throttled by AWS ({code}); try again"
        if code == "ResourceNotFoundException":
            return ExitCode.CONFIG, f"{operation}: not found ({code})"
        return ExitCode.FAILED, f"{operation} failed ({code})"
    if isinstance(exc, SecretAccessDenied | ProviderAuthError | DestinationRefused):
        return ExitCode.CONFIG, str(exc)
    if isinstance(exc, SecretNotFound | ConfigurationError | SecretFormatError):
        return ExitCode.CONFIG, str(exc)
    if isinstance(exc, RotationRetryable | TransportError):
        return ExitCode.UNCHECKED, str(exc)
    if isinstance(exc, RegcredError):
        return ExitCode.FAILED, str(exc)
    return ExitCode.FAILED, f"unexpected {type(exc).__name__} (run with --debug for the library's logs)"


def _fail(json_mode: bool, code: ExitCode, message: str, **fields: Any) -> int:
    from ..redact import scrub

    message = scrub(message)
    if json_mode:
        sys.stdout.write(json.dumps({"error": message, "exit_code": int(code), **fields}, default=str) + "\n")
    else:
        err(message)
    return int(code)


def _log_level(debug: bool) -> int:
    """--debug: the library's logs on stderr (scrubbed; botocore's and urllib3's stay quiet). Without it the
    CLI says everything itself and the library is silent. Returns the level to restore."""
    from ..observability import logger

    before = logger.log_level
    logger.setLevel(logging.DEBUG if debug else logging.CRITICAL)
    return int(before)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``regcred`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    json_mode = wants_json(argv)
    parser = build_parser()
    ctx: Context | None = None
    try:
        try:
            args, extras = parser.parse_known_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0) if isinstance(exc.code, int) else 0
        if extras:
            raise _unknown_flags(parser, args, extras)
        ctx = Context.from_args(args)
        json_mode = ctx.json
        restore = _log_level(ctx.debug)
        try:
            command: Callable[[Context], int] = args.func
            return int(command(ctx))
        finally:
            from ..observability import logger

            logger.setLevel(restore)
    except KeyboardInterrupt:
        left = ctx.progress.left if ctx is not None else ""
        if ctx is not None:
            ctx.progress.done()
        message = "interrupted" + (f": {left}" if left else "; nothing was left half done")
        return _fail(json_mode, ExitCode.INTERRUPTED, message, left=left or None)
    except CommandError as exc:
        if ctx is not None:
            ctx.progress.done()
        return _fail(json_mode, exc.code, str(exc), **exc.fields)
    except Exception as exc:
        if ctx is not None:
            ctx.progress.done()
        code, message = classified(exc)
        if ctx is not None and ctx.debug and code is ExitCode.FAILED:
            import traceback

            from ..redact import scrub

            sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
        return _fail(json_mode, code, message)
