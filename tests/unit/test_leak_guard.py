"""The leak guard itself: a test that lets a credential into its output, its logs or an exception text
fails, whatever it asserts; a test that keeps it out passes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INNER = """
import logging
import pytest
from regcred import redact
from regcred.errors import RegcredError
from tests import leak_guard

SECRET = "inner-secret-value-0123456789"
MINTED = "other-minted-9876543210"
leak_guard.watch(SECRET, MINTED)


def test_prints_it():
    print("token:", SECRET)


def test_logs_it(caplog):
    logging.getLogger("x").warning("here %s", SECRET)


def test_raises_it_and_catches_it():
    with pytest.raises(ValueError):
        raise ValueError(SECRET)  # not a RegcredError: only its own report would show it
    RegcredError("unrelated")


def test_regcred_error_text():
    # RegcredError scrubs what redact knows; a minted value it does not know still counts as a leak.
    try:
        raise RegcredError("minted " + MINTED)
    except RegcredError:
        pass


def test_keeps_it_out():
    redact.remember(SECRET)
    print("token:", redact.scrub("token " + SECRET))
"""


def test_the_leak_guard_fails_tests_that_leak(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_inner=INNER)
    pytester.makeconftest('pytest_plugins = ["tests.leak_guard"]\n')
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # A subprocess: the inner session's watched values stay out of this one's guard.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 3, result.stdout.str()
    assert outcomes.get("passed") == 2, result.stdout.str()
    text = result.stdout.str()
    assert text.count("leak guard: a credential") >= 3
