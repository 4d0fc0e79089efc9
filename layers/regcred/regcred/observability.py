"""The Powertools Logger, Tracer and Metrics every module shares.

Services are named by the function's POWERTOOLS_SERVICE_NAME; the namespace defaults to regcred so
that importing the library outside Lambda (CLI, tests) never fails on a missing namespace. Outside
Lambda the logs go to stderr, so that a CLI's stdout stays its output.

A disabled Tracer (POWERTOOLS_TRACE_DISABLED, or outside Lambda) gets a provider that records nothing,
as the X-Ray SDK does once Powertools disables it, so that the SDK is only imported when tracing is on:
``aws_xray_sdk.core`` costs a cold start ~20 ms in Lambda, and outside it builds two X-Ray clients.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from .redact import ScrubFilter

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "regcred")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "regcred")


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of writing (the Logger keeps its stream)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


logger = Logger(stream=sys.stdout if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else _CurrentStderr())  # type: ignore[arg-type]

# At DEBUG, botocore logs request parameters and response bodies (a PutSecretValue's SecretString, a
# GetSecretValue's answer) and urllib3 logs URLs. Lambda's ApplicationLogLevel=DEBUG sets the root logger to
# DEBUG: these loggers keep a level of their own, so that no secret value reaches a log whatever the root
# says.
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "aws_xray_sdk")
for _name in QUIET_LIBRARIES:
    _library = logging.getLogger(_name)
    if _library.level == logging.NOTSET or _library.level < logging.WARNING:
        _library.setLevel(logging.WARNING)

# Second line of defence: every record through regcred's logger and the runtime's handlers is scrubbed of
# the secret values the process knows (regcred.redact).
SCRUB = ScrubFilter()
logging.getLogger(logger.name).addFilter(SCRUB)
for _handler in (*logging.getLogger().handlers, *logger.handlers):
    _handler.addFilter(SCRUB)


class _UntracedSegment(BaseSegment):
    """The (sub)segment of a disabled tracer: records nothing."""

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class _NoTracing(BaseProvider):
    """Tracer provider while tracing is disabled: Powertools' wrappers run as they do over the disabled
    X-Ray SDK (same logs, same exceptions), and nothing is recorded or sent."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _UntracedSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _UntracedSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


# Powertools' own rule (POWERTOOLS_TRACE_DISABLED, outside Lambda, SAM local): enabled, it is the
# X-Ray tracer as always (and patches at import, before any client exists).
tracer = Tracer(provider=_NoTracing()) if Tracer._is_tracer_disabled() else Tracer()
metrics = Metrics()


def count_alone(name: str, dimensions: Mapping[str, str] | None = None) -> None:
    """One count of ``name`` in a metric record of its own, with the service and exactly ``dimensions``:
    what an alarm (which matches exact dimensions) or a per-value breakdown needs, and what the
    invocation's shared metric set, with its own dimensions, cannot give."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        for key, value in (dimensions or {}).items():
            metric.add_dimension(name=key, value=value)
