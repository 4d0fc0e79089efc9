"""The sweep on the local stack: moto_server, the real registry and the Docker Hub fake.

Each test sweeps the secrets it made (the stack is shared by the whole session); the function's own paths
(the schedule, the fan-out through SQS) run in a region of their own, where only their secrets exist."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from devstack.lambda_local import LambdaContext, load
from regcred import config, labels
from regcred.coalesce import Coalescer
from regcred.http.transport import Transport
from regcred.rotation import Rotator
from regcred.routing import Deployment
from regcred.secret import SecretValue, parse, render
from regcred.store import CURRENT, PENDING
from regcred.sweep import Failure, NextAction, Sweeper, SweepRecord, SweepSettings
from tests.aws_setup import coalesce_table, hub, job_definition, stack_managed_secret
from tests.integration.conftest import dockerhub_admin_secret
from tests.integration.test_remediate_stack import SecretsManagerRotation, pulls
from tests.integration.test_rotation_stack import onboard, regcred
from tests.registry_servers import RecordingServer, Reply

pytestmark = pytest.mark.stack
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def aws(stack_env: dict[str, str]) -> dict[str, Any]:
    endpoint = stack_env["AWS_ENDPOINT_URL"]
    requests.post(f"{endpoint}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=5)
    return {n: boto3.client(n, endpoint_url=endpoint) for n in ("secretsmanager", "batch", "dynamodb", "iam")}


class CountingTransport(Transport):
    """The stack's transport, recording (method, url) of every request."""

    def __init__(self, env: dict[str, str], deployment: Deployment | None = None) -> None:
        super().__init__(local_origins=(deployment or Deployment.from_env(env)).local_origins)
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        with self._lock:
            self.sent.append((method, url))
        return super().request(method, url, **kwargs)


def sweeper(
    aws: dict[str, Any],
    env: dict[str, str],
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    table: str | None = None,
    rotation: Callable[[str], object] | None = None,
    transport: Transport | None = None,
    deployment: Deployment | None = None,
    **settings: Any,
) -> Sweeper:
    options = SweepSettings(**{"parallelism": 4, "secret_deadline_s": 20.0, **settings})
    rotator = Rotator(
        aws["secretsmanager"],
        batch=aws["batch"],
        deployment=deployment or Deployment.from_env(env),
        transport=transport,
        now=now,
    )
    return Sweeper(
        aws["secretsmanager"],
        batch=aws["batch"],
        coalescer=Coalescer(aws["dynamodb"] if table else None, table, options.lease_s),
        settings=options,
        rotator=rotator,
        start_rotation=rotation or SecretsManagerRotation(),
        now=now,
    )


def tags(sm: Any, arn: str) -> dict[str, str]:
    return config.tags_to_dict(sm.describe_secret(SecretId=arn).get("Tags"))


def current(sm: Any, arn: str, stage: str = CURRENT) -> SecretValue:
    return parse(sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"])


def expiring_secret(
    sm: Any, env: dict[str, str], admin_secret: str, lifetime: timedelta, issued: datetime
) -> tuple[str, SecretValue]:
    """A managed secret whose token lives ``lifetime`` from ``issued`` (regcred:ttl says the same)."""
    arn, value = stack_managed_secret(sm, env, admin_secret)
    value = SecretValue(
        value.username,
        value.password,
        value.registry,
        value.provider,
        value.token_id,
        expires_at=issued + lifetime,
        issued_at=issued,
    )
    sm.put_secret_value(SecretId=arn, SecretString=render(value), VersionStages=[CURRENT])
    sm.tag_resource(
        SecretId=arn,
        Tags=[
            {"Key": config.TTL, "Value": f"{int(lifetime.total_seconds())}"},
            {"Key": config.GRACE, "Value": "10m"},
        ],
    )
    return arn, value


# -- proving AWSCURRENT ----------------------------------------------------------------------------


def test_a_valid_secret_is_proven_with_one_token_request_and_the_proof_is_recorded(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    arn, _ = stack_managed_secret(aws["secretsmanager"], stack_env, admin_secret)
    transport = CountingTransport(stack_env)
    report = sweeper(aws, stack_env, transport=transport).sweep_secret(arn)
    assert report.swept and report.valid is True and report.failure is None
    assert report.images == 1 and report.rotation is None and report.next_action == NextAction.CHECK
    registry = f"http://{stack_env['REGCRED_REGISTRY']}"
    to_registry = [(m, u) for m, u in transport.sent if u.startswith(registry)]
    to_realm = [(m, u) for m, u in transport.sent if m == "GET" and "/token?" in u]
    # GET /v2/, one token request for every repository, one manifest HEAD per image: 2 + images.
    assert [m for m, _ in to_registry] == ["GET", "HEAD"] and len(to_realm) == 1
    assert len(to_registry) + len(to_realm) == 2 + report.images
    recorded = tags(aws["secretsmanager"], arn)
    record = SweepRecord.parse(recorded[config.SWEEP])
    assert record is not None and record.valid is True and record.failure is None
    assert recorded[config.VALID_AT] == record.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    # No orphan listing is due again for a day: the next sweep asks the vendor nothing.
    assert record.orphans_at is not None
    transport.sent.clear()
    again = sweeper(aws, stack_env, transport=transport).sweep_secret(arn)
    assert again.valid is True
    api = [u for m, u in transport.sent if u.startswith(stack_env["REGCRED_DOCKERHUB_API"]) and m != "GET"]
    assert api == [] and len(transport.sent) == 3


def test_images_of_active_job_definitions_naming_the_secret_are_probed_and_others_never_sent(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm, batch = aws["secretsmanager"], aws["batch"]
    arn, _ = stack_managed_secret(sm, stack_env, admin_secret)
    name = sm.describe_secret(SecretId=arn)["Name"]
    registry = stack_env["REGCRED_REGISTRY"]
    # Named by name, by partial ARN and by ARN; one image is missing, one is on another registry.
    job_definition(batch, f"{registry}/acme/missing:1", name, name=f"by-name-{uuid.uuid4().hex[:6]}")
    job_definition(batch, f"{registry}/{stack_env['REGCRED_SEED_IMAGE']}", arn[:-7], name="partial")
    job_definition(batch, "docker.io/library/busybox:1", arn, name=f"elsewhere-{uuid.uuid4().hex[:6]}")
    transport = CountingTransport(stack_env)
    report = sweeper(aws, stack_env, transport=transport).sweep_secret(
        arn, Sweeper(sm, batch=batch).job_definitions()
    )
    assert report.images == 2  # the tag's seed image and the job definitions' ones, once each
    assert report.valid is False and report.failure is Failure.NOT_FOUND
    assert "acme/missing:1" in (report.detail or "")
    assert all("127.0.0.1" in url for _, url in transport.sent), transport.sent
    # A missing image is no reason to rotate: the credential is not what failed.
    assert report.rotation is None


# -- rotation ahead of expiry ----------------------------------------------------------------------


def test_a_one_hour_token_is_rotated_at_the_last_sweep_before_it_falls_under_its_fraction(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    issued = datetime.now(UTC).replace(microsecond=0)
    arn, old = expiring_secret(sm, stack_env, admin_secret, timedelta(hours=1), issued)
    rotation = SecretsManagerRotation()
    # With a 15-minute period and the default fraction (0.25 = 15 minutes), the rotation is due 30 minutes
    # before expiry: the sweep at +29 min leaves it, the one at +31 min rotates.
    early = sweeper(aws, stack_env, now=lambda: issued + timedelta(minutes=29), rotation=rotation)
    report = early.sweep_secret(arn)
    assert report.valid is True and report.rotation is None and rotation.calls == []
    assert report.next_action == NextAction.ROTATE and report.next_at == issued + timedelta(minutes=30)
    due = sweeper(aws, stack_env, now=lambda: issued + timedelta(minutes=31), rotation=rotation)
    report = due.sweep_secret(arn)
    assert report.rotation == "started" and rotation.calls == [arn]
    new = current(sm, arn)
    assert new.token_id != old.token_id and pulls(stack_env, new) == 200
    # The new token lives an hour too (regcred:ttl), and the old one still pulls through its grace period.
    assert new.expires_at is not None and new.issued_at is not None
    assert timedelta(minutes=59) <= new.expires_at - new.issued_at <= timedelta(minutes=61)
    assert pulls(stack_env, old) == 200
    # The record says a rotation was started; no second one while a later sweep finds it fresh.
    assert SweepRecord.parse(tags(sm, arn)[config.SWEEP]).rotation == "started"  # type: ignore[union-attr]
    assert sweeper(aws, stack_env, rotation=rotation).sweep_secret(arn).rotation is None
    assert rotation.calls == [arn]


def test_a_rejected_credential_starts_one_rotation_and_none_while_one_is_in_progress(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    arn, old = stack_managed_secret(sm, stack_env, admin_secret)
    hub(stack_env).revoke(old.token_id or "")
    # Given a rotation in progress (AWSPENDING on another version), the sweep starts none
    pending = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=arn, ClientRequestToken=pending, SecretString=render(old), VersionStages=[PENDING]
    )
    rotation = SecretsManagerRotation()
    report = sweeper(aws, stack_env, rotation=rotation).sweep_secret(arn)
    assert report.valid is False and report.failure is Failure.CREDENTIALS_REJECTED
    assert report.rotation == "in_progress" and report.next_action == NextAction.WAIT_ROTATION
    assert rotation.calls == []
    # Once it is gone, the next sweep rotates, and the new credential pulls
    sm.update_secret_version_stage(SecretId=arn, VersionStage=PENDING, RemoveFromVersionId=pending)
    report = sweeper(aws, stack_env, rotation=rotation).sweep_secret(arn)
    assert report.rotation == "started" and rotation.calls == [arn]
    assert pulls(stack_env, current(sm, arn)) == 200


# -- retirement and orphans ------------------------------------------------------------------------


def test_the_previous_credential_is_retired_after_its_grace_and_then_refused_by_the_registry(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    arn, old = stack_managed_secret(sm, stack_env, admin_secret)
    sm.tag_resource(SecretId=arn, Tags=[{"Key": config.GRACE, "Value": "1h"}])
    SecretsManagerRotation()(arn)
    new = current(sm, arn)
    assert pulls(stack_env, old) == 200
    # Within the grace period: kept, and the record says when it goes
    report = sweeper(aws, stack_env).sweep_secret(arn)
    assert report.retired == "in_grace" and report.next_action == NextAction.RETIRE
    promoted = config.SecretConfig.from_tags(tags(sm, arn), "x").promoted_at
    assert promoted is not None and report.next_at == promoted + timedelta(hours=1)
    assert pulls(stack_env, old) == 200
    # After it: revoked at the vendor, refused by the real registry on a fresh login; AWSCURRENT pulls
    later = sweeper(aws, stack_env, now=lambda: datetime.now(UTC) + timedelta(hours=1, minutes=1))
    report = later.sweep_secret(arn)
    assert report.retired == "retired" and report.valid is True
    assert pulls(stack_env, old) == 401 and pulls(stack_env, new) == 200
    assert tags(sm, arn)[config.RETIRED_TOKEN] == old.token_id
    assert SweepRecord.parse(tags(sm, arn)[config.SWEEP]).previous == "retired"  # type: ignore[union-attr]
    # `regcred status` says so
    status = json.loads(regcred(stack_env, "status", arn, "--output", "json").stdout)
    assert status["previous"] == "retired" and status["last_sweep"]["previous"] == "retired"
    assert status["valid_as_of"] == tags(sm, arn)[config.VALID_AT]
    # Next: the rotation ahead of the new token's expiry (90 days, rotated with a quarter left)
    assert status["next_action"] == "rotate" and new.expires_at is not None and new.issued_at is not None
    lifetime = new.expires_at - new.issued_at
    expected = new.expires_at - lifetime * 0.25 - timedelta(minutes=15)
    assert status["next_at"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_orphan_labelled_for_the_secret_is_revoked_and_another_secrets_token_is_not(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    arn, held = stack_managed_secret(sm, stack_env, admin_secret)
    name = sm.describe_secret(SecretId=arn)["Name"]
    vendor = hub(stack_env)
    orphan = vendor.issue(labels.label_for(name, str(uuid.uuid4())), None)
    other = vendor.issue(labels.label_for(f"{name}-other", str(uuid.uuid4())), None)
    report = sweeper(aws, stack_env).sweep_secret(arn)
    assert report.orphans_revoked == 1
    live = {t.token_id for t in vendor.list_tokens() if t.active}
    assert orphan.token_id not in live and {held.token_id, other.token_id} <= live
    vendor.revoke(other.token_id)


# -- overlapping sweeps, a hanging registry, a broken secret ---------------------------------------


def test_two_overlapping_sweeps_act_once_per_secret(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    table = coalesce_table(aws["dynamodb"])
    rejected = []
    for _ in range(4):
        arn, value = stack_managed_secret(sm, stack_env, admin_secret)
        hub(stack_env).revoke(value.token_id or "")
        rejected.append(arn)
    rotation = SecretsManagerRotation()
    sweeps = [sweeper(aws, stack_env, table=table, rotation=rotation) for _ in range(2)]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.sweep(rejected))) for s in sweeps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports = [r for summary in results for r in summary.reports]
    assert len(reports) == 8
    assert sum(r.swept for r in reports) == 4 and sum(r.claimed_elsewhere for r in reports) == 4
    assert sorted(rotation.calls) == sorted(rejected)  # one rotation per secret, not two
    for arn in rejected:
        assert pulls(stack_env, current(sm, arn)) == 200


def test_a_hanging_registry_and_a_broken_secret_are_reported_and_the_others_still_swept(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    release = threading.Event()

    def hang(_: Any) -> Reply:
        release.wait(60)
        return Reply(503)

    with RecordingServer(handler=hang) as hanging:
        env = {
            **stack_env,
            "REGCRED_ALLOWED_REGISTRY_HOSTS": f"{stack_env['REGCRED_ALLOWED_REGISTRY_HOSTS']} {hanging.url}",
        }
        deployment = Deployment.from_env(env)
        stuck, _ = stack_managed_secret(sm, stack_env, admin_secret)
        sm.tag_resource(SecretId=stuck, Tags=[{"Key": config.REGISTRY, "Value": hanging.url}])
        value = current(sm, stuck)
        sm.put_secret_value(
            SecretId=stuck,
            SecretString=render(
                SecretValue(value.username, value.password, hanging.host_port, "dockerhub", value.token_id)
            ),
            VersionStages=[CURRENT],
        )
        broken, _ = stack_managed_secret(sm, stack_env, admin_secret)
        sm.put_secret_value(SecretId=broken, SecretString="not json", VersionStages=[CURRENT])
        good = [stack_managed_secret(sm, stack_env, admin_secret)[0] for _ in range(3)]
        started = time.monotonic()
        summary = sweeper(aws, env, deployment=deployment, parallelism=2, secret_deadline_s=3.0).sweep(
            [stuck, broken, *good]
        )
        took = time.monotonic() - started
        release.set()
    by_arn = {r.arn: r for r in summary.reports}
    assert by_arn[stuck].failure is Failure.UNREACHABLE and by_arn[stuck].valid is None
    assert hanging.paths() == ["/v2/"]
    assert by_arn[broken].failure is Failure.SECRET_FORMAT and by_arn[broken].error
    assert SweepRecord.parse(tags(sm, broken)[config.SWEEP]).next_action == NextAction.FIX  # type: ignore[union-attr]
    assert all(by_arn[a].valid is True for a in good)
    assert summary.counts()["errors"] == 1
    # The hang cost its own deadline, not the run's: far less than the 60 s the server would wait.
    assert took < 30, took


# -- the function: the schedule, and the fan-out through SQS ---------------------------------------


@pytest.fixture
def region_stack(stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The sweep function's environment in a region where only this test's secrets exist."""
    region = "eu-north-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_REGION", region)
    endpoint = stack_env["AWS_ENDPOINT_URL"]
    clients = {
        n: boto3.client(n, endpoint_url=endpoint, region_name=region)
        for n in ("secretsmanager", "batch", "dynamodb", "sqs", "iam")
    }
    for leftover in clients["secretsmanager"].list_secrets().get("SecretList", []):
        clients["secretsmanager"].delete_secret(SecretId=leftover["ARN"], ForceDeleteWithoutRecovery=True)
    queue = clients["sqs"].create_queue(QueueName=f"sweep-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    monkeypatch.setenv("REGCRED_SWEEP_QUEUE_URL", queue)
    monkeypatch.setenv("REGCRED_COALESCE_TABLE", coalesce_table(clients["dynamodb"]))
    monkeypatch.setenv("REGCRED_SWEEP_PERIOD", "15m")
    app = load("sweep")
    app._sweeper = None
    yield {"app": app, "queue": queue, **clients}
    app._sweeper = None


def test_the_scheduled_event_sweeps_every_managed_secret_below_the_threshold(
    region_stack: dict[str, Any],
    stack_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sm = region_stack["secretsmanager"]
    admin = dockerhub_admin_secret(sm, stack_env)
    arns = [stack_managed_secret(sm, stack_env, admin)[0] for _ in range(3)]
    monkeypatch.setenv("REGCRED_SWEEP_FANOUT_THRESHOLD", "10")
    schedule = json.loads((EVENTS / "sweep_schedule.json").read_text())
    result = region_stack["app"].handler(schedule, LambdaContext())
    assert result["swept"] == 3 and result["invalid"] == 0 and result["fanned_out"] == 0
    assert {r["arn"] for r in result["reports"]} == set(arns)
    out, _ = capfd.readouterr()
    blobs = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    valid = [b for b in blobs if "CredentialValid" in b]
    assert len(valid) == 3 and {b["CredentialValid"][0] for b in valid} == {1.0}
    assert all(
        sorted(b["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["secret", "service"] for b in valid
    )
    fleet = [b for b in blobs if "SecretsSwept" in b]
    assert fleet and fleet[0]["SecretsSwept"] == [3.0] and fleet[0]["InvalidCredentials"] == [0.0]


def test_above_the_threshold_the_sweep_fans_out_and_workers_report_partial_failures(
    region_stack: dict[str, Any], stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sm, sqs, app = region_stack["secretsmanager"], region_stack["sqs"], region_stack["app"]
    admin = dockerhub_admin_secret(sm, stack_env)
    arns = [stack_managed_secret(sm, stack_env, admin)[0] for _ in range(12)]
    monkeypatch.setenv("REGCRED_SWEEP_FANOUT_THRESHOLD", "5")
    result = app.handler({"source": "aws.scheduler", "detail": {}}, LambdaContext())
    assert result["fanned_out"] == 12 and result["swept"] == 0
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=region_stack["queue"], MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        messages += got
    assert sorted(json.loads(m["Body"])["secret"] for m in messages) == sorted(arns)
    # The workers take them in batches of 10; one message that the sweep did not send fails alone
    queue_arn = f"arn:aws:sqs:eu-north-1:123456789012:{region_stack['queue'].rsplit('/', 1)[-1]}"
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "eu-north-1",
        }
        for m in messages
    ]
    records.insert(3, {**records[0], "messageId": "poison", "body": '{"secret": "../../etc"}'})
    failures: list[str] = []
    for start in range(0, len(records), 10):
        reply = app.handler({"Records": records[start : start + 10]}, LambdaContext())
        assert set(reply) == {"batchItemFailures"}
        failures += [f["itemIdentifier"] for f in reply["batchItemFailures"]]
    assert failures == ["poison"]
    for arn in arns:
        record = SweepRecord.parse(tags(sm, arn)[config.SWEEP])
        assert record is not None and record.valid is True


# -- the CLI: regcred sweep and regcred status after a rotation, a retirement and a revocation ------------


def test_status_after_a_rotation_a_retirement_and_a_revocation_at_the_vendor(
    aws: dict[str, Any], stack_env: dict[str, str], admin_secret: str
) -> None:
    sm = aws["secretsmanager"]
    name = f"batch/{uuid.uuid4().hex[:8]}"
    done = onboard(stack_env, name, admin_secret, stack_env["REGCRED_SEED_IMAGE"])
    assert done.returncode == 0, done.stderr

    def status() -> dict[str, Any]:
        done = regcred(stack_env, "status", name, "--output", "json")
        assert done.returncode == 0, done.stderr
        body: dict[str, Any] = json.loads(done.stdout)
        return body

    # Not swept yet: nothing recorded, and nothing claimed about a proof
    assert status()["last_sweep"] is None and status()["valid_as_of"] is None
    # After a rotation: the previous credential is live and due for retirement after its grace period
    assert regcred(stack_env, "rotate", name, "--local").returncode == 0
    assert regcred(stack_env, "sweep", name, "--local").returncode == 0
    after_rotation = status()
    assert after_rotation["previous"] == "live" and after_rotation["next_action"] == "retire"
    assert after_rotation["last_sweep"]["valid"] is True and after_rotation["valid_as_of"]
    # After the grace period: the sweep retires it
    sm.tag_resource(SecretId=name, Tags=[{"Key": config.GRACE, "Value": "0s"}])
    swept = json.loads(regcred(stack_env, "sweep", name, "--local", "--output", "json").stdout)
    assert swept["retired"] == 1 and swept["exit_code"] == 0
    after_retirement = status()
    assert (
        after_retirement["previous"] == "retired" and after_retirement["last_sweep"]["previous"] == "retired"
    )
    # Next: the rotation ahead of the token's expiry, which on this secret (no rotation function) is the
    # operator's to enable
    assert after_retirement["next_action"] == "enable_rotation"
    assert after_retirement["next_at"] > after_retirement["last_sweep"]["at"]
    # After a revocation at the vendor: the sweep sees the registry refuse it (exit 1), and with rotation off
    # on this secret the next action is the operator's
    hub(stack_env).revoke(current(sm, name).token_id or "")
    refused = regcred(stack_env, "sweep", name, "--output", "json")
    body = json.loads(refused.stdout)
    assert (
        refused.returncode == 1 and body["invalid"] == 1 and body["reports"][0]["rotation"] == "not_enabled"
    )
    after_revocation = status()
    assert after_revocation["last_failure"] == "credentials_rejected"
    assert after_revocation["last_sweep"]["valid"] is False
    assert after_revocation["next_action"] == "enable_rotation"
    text = regcred(stack_env, "status", name).stdout
    assert "last failure:    credentials_rejected" in text and "next:            enable_rotation now" in text
    # `regcred sweep --local` rotates it here: fresh again
    assert regcred(stack_env, "sweep", name, "--local").returncode == 1  # it found the refusal, then rotated
    assert pulls(stack_env, current(sm, name)) == 200
