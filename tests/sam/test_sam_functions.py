"""Every function of template.yaml, as deployed, invoked with each of its sample events.

The list of functions is read from template.yaml (every AWS::Serverless::Function), and a function's sample
events are events/<name>_*.json, <name> being the directory of its CodeUri (functions/<name>/). So a function
added to the template is invoked here without editing this file (the sweep function takes
events/sweep_*.json). A function without any sample event fails (add one) rather than being skipped.

Each invoke must reach the handler and return: a result, or an error raised by the function's own code
(e.g. the rotation sample events name a secret that does not exist in moto). An error of the runtime itself
(a module missing from the layer, a handler not found, a syntax error, an init failure) fails the test.
Where the outcome of a sample event is known, it is checked too (EXPECTED).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sam.sam import RUNTIME_ERRORS, Function, Sam, template_functions

pytestmark = pytest.mark.sam
FUNCTIONS = template_functions()

# What the sample events give on the stack (their ARNs name no resource there): for some keys of the
# returned JSON (or of Lambda's error object), the accepted values. Events not listed: any handled outcome.
EXPECTED: dict[str, dict[str, tuple[Any, ...]]] = {
    **{
        # The sample secret does not exist in moto: the step fails (Secrets Manager would retry it).
        f"rotate_{step}.json": {"errorType": ("SecretNotFound",)}
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret")
    },
    # The classification, done by the deployed code; the job and secret of the samples do not exist.
    "remediate_batch_auth_failure.json": {"class": ("auth",)},
    "remediate_batch_ambiguous_denial.json": {"class": ("auth_or_not_found",)},
    "remediate_batch_manifest_unknown.json": {"class": ("not_found",), "diagnosis": ("not_found",)},
    "remediate_batch_rate_limit.json": {"class": ("rate_limit",), "diagnosis": ("rate_limited",)},
    "remediate_batch_secret_access_denied.json": {"class": ("secret_retrieval",)},
    "remediate_ecs_task_auth_failure.json": {"class": ("auth",)},
    "remediate_batch_succeeded.json": {"ignored": ("status SUCCEEDED",)},
    # Batches of RemediationQueue: the partial batch response, exactly; only the poison messages fail.
    "remediate_sqs_batch.json": {"batchItemFailures": ([],)},
    "remediate_sqs_poison.json": {
        "batchItemFailures": (
            [
                {"itemIdentifier": "f26c8d4e-3a9b-4e7f-8cb2-4d8f6a1b9c56"},
                {"itemIdentifier": "0a37d9e5-4bac-4f80-9dc3-5e9a7b2cad67"},
            ],
        )
    },
    # Swept in the invocation: fewer secrets than the fan-out threshold.
    "sweep_schedule.json": {"fanned_out": (0,)},
    # Secrets Manager's rotation events, for a secret the stack does not have: nothing to resubmit (and the
    # tier deploys with ResubmitJobs off), no metric and no notification for a secret regcred does not manage.
    "remediate_rotation_succeeded.json": {
        "rotation_event": ("RotationSucceeded",),
        "result": ("resubmit_disabled", "secret_missing"),
        "resubmitted": ({},),
    },
    "remediate_rotation_failed.json": {"rotation_event": ("RotationFailed",), "result": ("secret_missing",)},
    "remediate_rotation_abandoned.json": {
        "rotation_event": ("RotationAbandoned",),
        "result": ("secret_missing",),
    },
}


def _cases() -> list[Any]:
    cases = []
    for function in FUNCTIONS:
        events = function.events() or [None]
        cases += [
            pytest.param(function, event, id=f"{function.logical_id}-{event.stem if event else 'no-event'}")
            for event in events
        ]
    return cases


def test_the_template_has_functions() -> None:
    assert {f.logical_id for f in FUNCTIONS} >= {"RotateFunction", "RemediateFunction"}


@pytest.mark.parametrize(("function", "event_file"), _cases())
def test_every_function_handles_its_sample_events(
    sam: Sam, function: Function, event_file: Path | None
) -> None:
    if event_file is None:
        pytest.fail(
            f"{function.logical_id} (functions/{function.name}/) has no sample event: add "
            f"events/{function.name}_<case>.json (used by this tier and by `sam local invoke`)",
            pytrace=False,
        )
    call = sam.invoke(function.logical_id, json.loads(event_file.read_text()))
    payload = call.payload
    print(f"{function.logical_id} {event_file.name} ({call.seconds:.1f}s): {json.dumps(payload)[:400]}")
    error = call.error
    if error is not None:
        # Raised in the function's code (the handler or the layer), not by the runtime around it
        assert not str(error["errorType"]).startswith(RUNTIME_ERRORS), f"{error}\n{call.tail()}"
        frames = "".join(error.get("stackTrace") or [])
        assert "/var/task/" in frames or "/opt/python/" in frames, f"{error}\n{call.tail()}"
    expected = EXPECTED.get(event_file.name)
    if expected is not None:
        assert isinstance(payload, dict), f"{event_file.name}: expected {expected}, got {payload!r}"
        for key, accepted in expected.items():
            assert payload.get(key) in accepted, f"{event_file.name}: {key} not in {accepted}: {payload!r}"
