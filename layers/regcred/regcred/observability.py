"""The Powertools Logger, Tracer and Metrics every module shares.

Services are named by the function's POWERTOOLS_SERVICE_NAME; the namespace defaults to regcred so
that importing the library outside Lambda (CLI, tests) never fails on a missing namespace. Outside
Lambda the logs go to stderr, so that a CLI's stdout stays its output.
"""

from __future__ import annotations

import os
import sys

from aws_lambda_powertools import Logger, Metrics, Tracer

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "regcred")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "regcred")


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of writing (the Logger keeps its stream)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


logger = Logger(stream=sys.stdout if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else _CurrentStderr())  # type: ignore[arg-type]
tracer = Tracer()
metrics = Metrics()
