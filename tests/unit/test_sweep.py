"""The sweep's pure decisions (when to rotate, what comes next), its record, settings and job-definition
index, and the claims that keep two sweeps from acting twice (on moto's DynamoDB, in-process)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from regcred import config
from regcred.coalesce import Coalescer
from regcred.errors import ConfigurationError
from regcred.routing import Deployment, route_of
from regcred.store import SecretState
from regcred.sweep import (
    Failure,
    JobDefinitionIndex,
    NextAction,
    SweepRecord,
    SweepSettings,
    plan_next,
    rotation_due,
    select_images,
)
from tests.aws_setup import coalesce_table

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def cfg(**tags: str) -> config.SecretConfig:
    return config.SecretConfig.from_tags({config.MANAGED: "true", config.PROVIDER: "dockerhub", **tags}, "s")


# -- when to rotate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "fraction", "period_s", "due_before_expiry"),
    [
        (timedelta(hours=1), 0.25, 900, timedelta(minutes=30)),  # a one-hour token, 15-minute sweeps
        (timedelta(days=90), 0.25, 900, timedelta(days=22, hours=12, minutes=15)),
        (timedelta(hours=1), 0.5, 300, timedelta(minutes=35)),
    ],
)
def test_rotation_is_due_at_the_last_sweep_before_the_fraction_is_crossed(
    lifetime: timedelta, fraction: float, period_s: int, due_before_expiry: timedelta
) -> None:
    expires = NOW + lifetime
    due, at = rotation_due(NOW, NOW, expires, fraction, period_s)
    assert not due and at == expires - due_before_expiry
    assert rotation_due(at - timedelta(seconds=1), NOW, expires, fraction, period_s)[0] is False  # type: ignore[operator]
    assert rotation_due(at, NOW, expires, fraction, period_s)[0] is True  # type: ignore[arg-type]
    # A sweep at that moment still finds the token above its fraction: it is never rotated too late.
    assert expires - at >= lifetime * fraction  # type: ignore[operator]


def test_without_an_expiry_or_issue_time_nothing_is_due() -> None:
    assert rotation_due(NOW, None, NOW + timedelta(hours=1), 0.25, 900) == (False, None)
    assert rotation_due(NOW, NOW, None, 0.25, 900) == (False, None)
    assert rotation_due(NOW, NOW, NOW - timedelta(hours=1), 0.25, 900) == (False, None)


def test_an_expired_token_is_due_at_once() -> None:
    due, _ = rotation_due(NOW, NOW - timedelta(hours=2), NOW - timedelta(minutes=1), 0.25, 900)
    assert due


# -- what comes next -------------------------------------------------------------------------------


def plan(c: config.SecretConfig, **kw: Any) -> tuple[NextAction, datetime | None]:
    options: dict[str, Any] = {
        "now": NOW,
        "period_s": 900,
        "can_mint": True,
        "rotation_enabled": True,
        "rejected": False,
        "issued_at": None,
        "expires_at": None,
        "previous_live": False,
        **kw,
    }
    return plan_next(c, **options)


def test_next_is_a_check_when_nothing_is_due() -> None:
    assert plan(cfg()) == (NextAction.CHECK, NOW + timedelta(minutes=15))


def test_a_rejected_credential_is_rotated_now_or_handed_to_an_operator() -> None:
    assert plan(cfg(), rejected=True) == (NextAction.ROTATE, NOW)
    assert plan(cfg(), rejected=True, can_mint=False) == (NextAction.IMPORT, NOW)
    assert plan(cfg(), rejected=True, rotation_enabled=False) == (NextAction.ENABLE_ROTATION, NOW)


def test_the_earliest_of_retirement_and_rotation_comes_next() -> None:
    promoted = NOW - timedelta(hours=1)
    c = cfg(**{config.GRACE: "24h", config.PROMOTED_AT: promoted.strftime("%Y-%m-%dT%H:%M:%SZ")})
    expiry = {"issued_at": NOW, "expires_at": NOW + timedelta(days=90)}
    assert plan(c, previous_live=True, **expiry) == (NextAction.RETIRE, promoted + timedelta(hours=24))
    short = {"issued_at": NOW, "expires_at": NOW + timedelta(hours=1)}
    assert plan(c, previous_live=True, **short) == (NextAction.ROTATE, NOW + timedelta(minutes=30))
    # A retirement that is overdue is due now, not in the past
    old = cfg(**{config.GRACE: "1h", config.PROMOTED_AT: "2026-01-01T00:00:00Z"})
    assert plan(old, previous_live=True) == (NextAction.RETIRE, NOW)
    # An import-only provider's expiry asks for an import, at the time the rotation would be due
    assert plan(cfg(), can_mint=False, **short) == (NextAction.IMPORT, NOW + timedelta(minutes=30))


def test_the_rotate_fraction_tag_moves_the_rotation() -> None:
    short = {"issued_at": NOW, "expires_at": NOW + timedelta(hours=1)}
    assert plan(cfg(**{config.ROTATE_FRACTION: "0.5"}), **short) == (
        NextAction.ROTATE,
        NOW + timedelta(minutes=15),
    )


@pytest.mark.parametrize("bad", ["1", "0", "0.95", "0.01", "1/4", "abc", "0.2.5", "\u0660.\u0665"])
def test_a_bad_rotate_fraction_is_refused_with_the_tag_named(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="regcred:rotate-fraction"):
        cfg(**{config.ROTATE_FRACTION: bad})


# -- the record ------------------------------------------------------------------------------------


def test_the_record_round_trips_within_the_tag_rules() -> None:
    record = SweepRecord(
        at=NOW,
        valid=False,
        failure="credentials_rejected",
        ratelimit_remaining=76,
        ratelimit_limit=100,
        previous="in_grace",
        orphans_revoked=2,
        orphans_at=NOW,
        rotation="started",
        next_action=NextAction.WAIT_ROTATION,
        next_at=NOW + timedelta(minutes=15),
    )
    text = record.tag_text()
    assert len(text) <= 256 and config.tag_value(text) == text
    assert SweepRecord.parse(text) == record


@pytest.mark.parametrize(
    "text", ["", "valid=1", "at=yesterday valid=1", "x" * 300, "at=2026-12-02T00:00:00Z=== valid=maybe"]
)
def test_a_record_without_a_readable_time_is_ignored(text: str) -> None:
    assert SweepRecord.parse(text) is None


def test_a_record_with_odd_counts_reads_them_as_unknown() -> None:
    parsed = SweepRecord.parse("at=2026-12-02T00:00:00Z valid=1 ratelimit=lots/- orphans=-3 next=rotate")
    assert parsed is not None and parsed.valid is True
    assert (
        parsed.ratelimit_remaining is None and parsed.orphans_revoked == 0 and parsed.next_action == "rotate"
    )


# -- settings --------------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    s = SweepSettings.from_env(
        {
            "REGCRED_SWEEP_PERIOD": "5m",
            "REGCRED_SWEEP_PARALLELISM": "32",
            "REGCRED_SWEEP_SECRET_DEADLINE": "45s",
            "REGCRED_SWEEP_FANOUT_THRESHOLD": "1000",
            "REGCRED_PER_SECRET_METRICS": "false",
            "REGCRED_SWEEP_QUEUE_URL": "https://sqs.example/1/q",
        }
    )
    assert (s.period_s, s.parallelism, s.secret_deadline_s, s.fanout_threshold) == (300, 32, 45.0, 1000)
    assert s.per_secret_metrics is False and s.queue_url == "https://sqs.example/1/q"
    assert s.lease_s == 240  # shorter than a period: the next scheduled sweep may claim the secret
    assert SweepSettings.from_env({}) == SweepSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGCRED_SWEEP_PARALLELISM", "0"),
        ("REGCRED_SWEEP_PARALLELISM", "65"),
        ("REGCRED_SWEEP_PARALLELISM", "many"),
        ("REGCRED_SWEEP_PERIOD", "10s"),
        ("REGCRED_SWEEP_SECRET_DEADLINE", "1h"),
        ("REGCRED_SWEEP_FANOUT_THRESHOLD", "-1"),
    ],
)
def test_a_bad_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        SweepSettings.from_env({name: value})


# -- the job-definition index and probe images -----------------------------------------------------

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batch/app-AbCdEf"


def state(arn: str = ARN, name: str = "batch/app") -> SecretState:
    return SecretState(arn=arn, name=name, tags={}, versions={}, rotation_enabled=True)


def test_the_index_finds_a_secret_by_arn_partial_arn_or_name_and_nothing_else() -> None:
    index = JobDefinitionIndex(
        {
            ARN: ["acme/a:1"],
            ARN[:-7]: ["acme/b:1", "acme/a:1"],
            "batch/app": ["acme/c:1"],
            "batch/app-AbCdEf": ["acme/not-mine:1"],  # another secret's name (ends like our suffix)
            "batch/ap": ["acme/not-mine:2"],
        }
    )
    assert set(index.images_for(state())) == {"acme/a:1", "acme/b:1", "acme/c:1"}
    assert index.images_for(state(arn=ARN.replace("app", "other"), name="batch/other")) == ()


def test_probe_images_off_the_secrets_registry_are_skipped_never_kept() -> None:
    route = route_of(cfg(**{config.REGISTRY: "registry-1.docker.io"}), Deployment())
    probe = select_images(
        [
            ("acme/app:1", None),
            ("docker.io/acme/app:1", None),  # the same image, spelled out
            ("ghcr.io/acme/app:1", None),
            ("Not An Image", None),
        ],
        route,
    )
    assert probe.images == ("registry-1.docker.io/acme/app:1",)
    assert len(probe.skipped) == 2 and any("ghcr.io" in s for s in probe.skipped)


# -- claims ----------------------------------------------------------------------------------------


def test_local_claims_have_exactly_one_owner_across_threads() -> None:
    coalescer = Coalescer(None, None, 60)
    owners: list[bool] = []
    barrier = threading.Barrier(16)

    def claim() -> None:
        barrier.wait()
        owners.append(coalescer.claim("sweep#x").owner)

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert owners.count(True) == 1


@mock_aws
def test_a_released_claim_can_be_taken_again_and_only_its_owner_releases_it() -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    coalesce_table(ddb, "t")
    clock = [1000.0]
    first = Coalescer(ddb, "t", 600, now=lambda: clock[0])
    second = Coalescer(ddb, "t", 600, now=lambda: clock[0])
    assert first.claim("sweep#a").owner and not second.claim("sweep#a").owner
    # A sweep that does not own the claim cannot release it
    second.release("sweep#a")
    assert not Coalescer(ddb, "t", 600, now=lambda: clock[0]).claim("sweep#a").owner
    # Its owner can (its work failed): the next try claims at once
    first.release("sweep#a")
    assert Coalescer(ddb, "t", 600, now=lambda: clock[0]).claim("sweep#a").owner
    # A claim that expired and was taken by another is not released by the first owner
    clock[0] += 700
    third = Coalescer(ddb, "t", 600, now=lambda: clock[0])
    assert third.claim("sweep#b").owner
    clock[0] += 700
    fourth = Coalescer(ddb, "t", 600, now=lambda: clock[0])
    assert fourth.claim("sweep#b").owner
    third.release("sweep#b")
    assert not Coalescer(ddb, "t", 600, now=lambda: clock[0]).claim("sweep#b").owner


# -- rate-limit headroom ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "count"), [("76;w=21600", 76), (" 100 ", 100), ("0", 0), ("", None), ("lots", None)]
)
def test_ratelimit_headers_are_read_as_counts(header: str, count: int | None) -> None:
    from regcred.sweep_plan import ratelimit_count

    assert ratelimit_count(header) == count


@mock_aws
def test_the_lowest_rate_limit_headroom_the_registry_reports_is_recorded_and_published() -> None:
    from regcred.registry import ImageCheck, PullCheck, PullStatus
    from regcred.rotation import Rotator
    from regcred.secret import SecretValue, render
    from regcred.sweep import Sweeper

    sm = boto3.client("secretsmanager", region_name="us-east-1")
    tags = {config.MANAGED: "true", config.PROVIDER: "dockerhub", config.IMAGES: "acme/a:1 acme/b:1"}
    arn = sm.create_secret(
        Name="batch/hub",
        SecretString=render(
            SecretValue("acme", "dckr_pat_" + "x" * 8, "registry-1.docker.io", "dockerhub", "t")
        ),
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )["ARN"]
    seen: list[tuple[str, ...]] = []

    def check(route: Any, credential: Any, images: Any, **_: Any) -> PullCheck:
        seen.append(tuple(images))
        headroom = {
            "registry-1.docker.io/acme/a:1": "76;w=21600",
            "registry-1.docker.io/acme/b:1": "12;w=21600",
        }
        return PullCheck(
            route.registry_name,
            tuple(ImageCheck(i, PullStatus.OK, "", 200, headroom[i], "100;w=21600") for i in images),
        )

    sweeper = Sweeper(sm, rotator=Rotator(sm, check=check, deployment=Deployment()))
    report = sweeper.sweep_secret(arn)
    assert seen == [("registry-1.docker.io/acme/a:1", "registry-1.docker.io/acme/b:1")]
    assert report.valid is True and (report.ratelimit_remaining, report.ratelimit_limit) == (12, 100)
    # The secret names no admin secret: its orphans cannot be looked for. That is reported, and costs
    # nothing of the proof.
    assert report.failure is Failure.MISCONFIGURED, report.failure
    assert "regcred:admin-secret" in (report.detail or ""), report.detail
    record = SweepRecord.parse(config.tags_to_dict(sm.describe_secret(SecretId=arn)["Tags"])[config.SWEEP])
    assert record is not None and (record.ratelimit_remaining, record.ratelimit_limit) == (12, 100)
