"""boto3 clients with retries and timeouts.

Standard retry mode, 6 attempts (``max_attempts`` counts the retries): a throttled call
(TooManyRequestsException, ThrottlingException, ProvisionedThroughputExceededException, ...) or a 5xx is
sent again within the invocation after botocore's backoff (up to 1 s, 2 s, 4 s, 8 s, 16 s for throttling,
with jitter). Not adaptive mode: its client-side rate limiter slows every call of a client after a throttle
of any one, and one client here tags every job of a storm (AWS SDKs reference guide, "Retry behavior":
adaptive is for specialised cases where a client targets a single resource). Measured in bench/storm.py:
with a tenth of TagResource calls throttled, adaptive mode made the storm three times slower.

boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) by itself, which is how the local
stack's moto_server stands in for AWS.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=20,
)


def client(service: str, session: boto3.session.Session | None = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` with regcred's retry and timeout settings."""
    return (session or boto3.session.Session()).client(service, config=_CONFIG, **kwargs)  # type: ignore[call-overload]


# The codes AWS uses for "this principal may not do that" (IAM, KMS, Secrets Manager).
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of a failed call (never its message, which may quote request content), else the
    exception's type name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return type(exc).__name__
