"""Shared test setup. Environment first: Powertools and boto3 read it at import time."""

from __future__ import annotations

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "regcred-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "regcred")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
# Never reach a real AWS account from a unit test, whatever the developer's shell holds.
for key in (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "REGCRED_ALLOWED_REGISTRY_HOSTS",
    "REGCRED_ALLOWED_API_HOSTS",
):
    os.environ.pop(key, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

# Fails any test in which a credential shows up in output, logs or exception texts.
pytest_plugins = ["tests.leak_guard", "pytester"]
