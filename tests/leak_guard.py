"""A pytest plugin that fails any test in which a credential appears where no credential may be.

The credentials watched: every value regcred itself remembered as secret (`regcred.redact.known`: secret
passwords, admin passwords, minted tokens, vendor and registry bearers), the clear text of every token a
stack's vendor fake minted (its test-only ``minted-secrets.jsonl``), and whatever a test adds with
`watch`. The places searched: the test's captured stdout, stderr and log records, the text of its
failure report, and the message of every `RegcredError` created while it ran. A hit fails the test with the
place named and the value never shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from regcred import errors, redact

_watched: set[str] = set()
_files: set[Path] = set()
_messages: list[str] = []
MIN_LENGTH = 8


def watch(*values: str | None) -> None:
    """Treat these values as credentials for every later test of the session."""
    _watched.update(v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH)


def watch_minted(path: str | Path) -> None:
    """Treat every token a fake records in ``path`` (JSON lines with "token") as a credential."""
    _files.add(Path(path))


def credentials() -> set[str]:
    found = {v for v in redact.known() if len(v) >= MIN_LENGTH} | _watched
    for path in list(_files):
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            try:
                token = json.loads(line).get("token")
            except ValueError:
                continue
            if isinstance(token, str) and len(token) >= MIN_LENGTH:
                found.add(token)
    return found


_original_init = errors.RegcredError.__init__


def _recording_init(self: errors.RegcredError, *args: object) -> None:
    _original_init(self, *args)
    _messages.append(str(self))


errors.RegcredError.__init__ = _recording_init  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _fresh_messages() -> Iterator[None]:
    _messages.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    places: list[tuple[str, str]] = [(name, text) for name, text in report.sections]
    places.append(("an exception message", "\n".join(_messages)))
    if report.failed:
        places.append(("the failure report", report.longreprtext))
    secrets = credentials()
    if not secrets:
        return
    for where, text in places:
        if not text:
            continue
        for secret in secrets:
            if secret in text:
                report.outcome = "failed"
                report.longrepr = (
                    f"leak guard: a credential ({len(secret)} characters, not shown) appeared in {where}"
                )
                return
