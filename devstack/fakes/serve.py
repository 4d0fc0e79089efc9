"""The command line every vendor fake shares (``python -m devstack.fakes.<vendor>``): ``--host`` (loopback
only), ``--port``, ``--state-dir``, ``--key``/``--cert``, the admin secret from an environment variable
(`parse`), the Config from the flags (`config`), and the serve loop (`serve`: SIGTERM stops it; the server
is closed). Test double only.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")


def parser(vendor: str, description: str, **kwargs: Any) -> argparse.ArgumentParser:
    """The fake's parser with ``--host``, ``--port`` and ``--state-dir``; the vendor adds its own flags."""
    p = argparse.ArgumentParser(prog=f"python -m devstack.fakes.{vendor}", description=description, **kwargs)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    return p


def add_list(p: argparse.ArgumentParser, flag: str, dest: str, metavar: str, help: str | None = None) -> None:
    """A repeatable flag whose values go, as a list, to ``dest`` (a field of the fake's Config)."""
    p.add_argument(flag, action="append", default=[], dest=dest, metavar=metavar, help=help)


def add_signing(p: argparse.ArgumentParser) -> None:
    """``--key`` and ``--cert``: the registry tokens' signing material (see `signing`)."""
    p.add_argument("--key", type=Path, default=None, help="RSA key PEM (default: STATE_DIR/signing.key)")
    p.add_argument("--cert", type=Path, default=None, help="certificate PEM (default: STATE_DIR/signing.crt)")


class Signing(TypedDict):
    """The signing material's fields of a Config."""

    key_path: Path
    cert_path: Path


def signing(args: argparse.Namespace) -> Signing:
    """The ``key_path`` and ``cert_path`` of the fake's Config: ``--key`` and ``--cert``, else the state
    directory's ``signing.key`` and ``signing.crt``."""
    return Signing(
        key_path=args.key or args.state_dir / "signing.key",
        cert_path=args.cert or args.state_dir / "signing.crt",
    )


def config(cls: type[C], args: argparse.Namespace, **given: Any) -> C:
    """The fake's Config (a dataclass): the ``given`` fields, ``key_path`` and ``cert_path`` (`signing`),
    and every other field that a flag of the same name sets (``--state-dir``: ``state_dir``)."""
    values: dict[str, Any] = {**signing(args), **given}
    for f in dataclasses.fields(cls):
        if f.name not in values and hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return cls(**values)


def parse(
    p: argparse.ArgumentParser,
    argv: list[str] | None,
    secret_env: str,
    missing: str,
    *,
    secret_flag: str | None = None,
    min_length: int = 1,
) -> tuple[argparse.Namespace, str]:
    """The parsed arguments and the admin secret: from the environment variable ``secret_env`` (or first
    from the flag whose destination is ``secret_flag``), never shorter than ``min_length``. A host that is
    not loopback, or no secret, is a usage error (exit 2, ``missing`` the message for the latter)."""
    args = p.parse_args(argv)
    if not args.host.startswith("127.") and args.host != "localhost":
        p.error("the fake binds to loopback only")
    secret = (getattr(args, secret_flag) if secret_flag else None) or os.environ.get(secret_env)
    if not secret or len(secret) < min_length:
        p.error(missing)
    return args, secret


def serve(vendor: str, server: ThreadingHTTPServer, host: str) -> int:
    """Serve until SIGTERM (or Ctrl-C), then close the server; 0."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake {vendor} listening on http://{host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    server.server_close()
    return 0
