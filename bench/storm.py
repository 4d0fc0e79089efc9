"""Benchmark: a storm of 10,000 events through RemediationQueue and the remediate handler's batch path, in
process, against moto (Secrets Manager, Batch, DynamoDB, IAM) and the local stack's real registry for the
probes. Two runs, one JSON line each:

- ``storm``: 3 secrets whose tokens were revoked at the vendor, 2 healthy ones; mixed failure classes,
  success events, duplicate deliveries, array children, out-of-order delivery, a tenth of the failures from
  ECS tasks that failed to start (real tasks in moto, named in their task definition's
  repositoryCredentials; one in twenty in the old ARN format, which ECS cannot tag), and 10 poison messages
  (not JSON, JSON that is no event, a rotation event naming another account's secret);
- ``storm_throttled``: the same storm (new secrets, table, jobs and tasks) while Batch answers 10 % of
  TagResource requests with TooManyRequestsException (HTTP 429), ECS 10 % of its TagResource requests with
  ThrottlingException (HTTP 400), and DynamoDB 10 % of its writes (PutItem, UpdateItem) with
  ProvisionedThroughputExceededException or ThrottlingException (HTTP 400). The answer takes the
  place of moto's, before the request reaches it, as AWS answers a request it throttled; botocore's own
  retries (regcred.aws: standard mode, 6 attempts, its backoff really slept) handle it. ``throttled``
  counts the answers, ``redelivered`` the messages delivered again (the poison ones, and any whose AWS call
  was still throttled after the retries).

The event source mapping is simulated: the messages are taken in batches of RemediationBatchSize by a pool
of RemediationMaxConcurrency workers (both the template's defaults), each worker one execution environment
(its own remediator: clients, caches, claims; the table and the account are shared), each batch one
invocation of the handler. A message the handler reports failed, or every message of an invocation that
raised, is delivered again (at once: the visibility timeout is not waited for), and after the queue's
maxReceiveCount goes to the dead-letter queue. Each moto request is served under one lock (moto's backends
are not thread-safe; AWS is), and so are Powertools Metrics' writes (one metric set per process, shared by
the workers that stand for separate containers). The workers' CPU is one interpreter's: ``events_per_s``
is that of one process on one core, not of a fleet of containers; the throttled run's extra time is
botocore's backoff, which each container would wait too.

Required in each run, else exit 1: ``lost_events`` 0 (every message that is not poison was handled: its
batch reported it done), the poison messages and only they in the dead-letter queue, one rotation per dead
secret, every taggable job and task tagged (``tagged`` == ``taggable``: a distinct failed Batch job, not an
array or multi-node child, or an ECS task in the long ARN format, with a pull-related class), no more
invocations at once than ``max_concurrency``; in the calm run, at most 1.05 AWS calls per event
(``aws_calls_per_event``: the API calls the function's code made; ``aws_requests_per_event`` adds
botocore's retries).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import hashlib
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    POWERTOOLS_LOG_LEVEL="WARNING",
    POWERTOOLS_SERVICE_NAME="regcred-remediate",
    POWERTOOLS_METRICS_NAMESPACE="regcred",
    POWERTOOLS_TRACE_DISABLED="true",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.core.botocore_stubber import MockRawResponse  # noqa: E402
from moto.core.models import botocore_stubber  # noqa: E402

from devstack.cfn import load_template  # noqa: E402
from devstack.lambda_local import LambdaContext, load  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from regcred import aws, config, labels  # noqa: E402
from regcred.failures import FailureClass, classify  # noqa: E402
from regcred.http.transport import Transport  # noqa: E402
from regcred.jobs import is_child_job  # noqa: E402
from regcred.observability import metrics  # noqa: E402
from regcred.providers.dockerhub import DockerHubProvider  # noqa: E402
from regcred.registry import Credential  # noqa: E402
from regcred.remediation import Remediator, Settings  # noqa: E402
from regcred.remediation_batch import EventClaims  # noqa: E402
from regcred.routing import Deployment, parse_origin  # noqa: E402
from regcred.secret import SecretValue, render  # noqa: E402

EVENTS = 10_000
POISON = 10
DEAD, HEALTHY = 3, 2
SEED = 20261128
THROTTLE_RATE = 0.10
ECS_SHARE = 0.10  # of the failure events, from ECS tasks
OLD_ARN_SHARE = 0.05  # of those, tasks in the old ARN format
TASKS_PER_SECRET = 300
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:regcred-bench-RemediationQueue"
ACCOUNT = "123456789012"
# Real messages (tests/corpus) by the class they stand for.
MESSAGES = {
    "auth": "CannotPullContainerError: Error response from daemon: "
    'Head "https://{reg}/v2/acme/app/manifests/1.0": unauthorized: incorrect username or password',
    "auth_or_not_found": "CannotPullContainerError: Error response from daemon: pull access denied for "
    "acme/app, repository does not exist or may require 'docker login': "
    "denied: requested access to the resource is denied",
    "rate_limit": "CannotPullContainerError: Error response from daemon: toomanyrequests: You have reached "
    "your pull rate limit. You may increase the limit by authenticating and upgrading: "
    "https://www.docker.com/increase-rate-limit",
    "not_found": "CannotPullContainerError: Error response from daemon: manifest for acme/app:1.0 not found: "
    "manifest unknown: manifest unknown",
    "network": "CannotPullContainerError: Error response from daemon: Get https://{reg}/v2/: net/http: "
    "request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
    "platform_mismatch": "CannotPullContainerError: pull image manifest has been retried 1 time(s): "
    "image Manifest does not contain descriptor matching platform 'linux/arm64'",
    "secret_retrieval": "ResourceInitializationError: unable to pull secrets or registry auth: execution "
    "resource retrieval failed: unable to retrieve secret from asm: service call has been retried "
    "1 time(s): AccessDeniedException: User is not authorized to perform: secretsmanager:GetSecretValue",
    "other": "CannotStartContainerError: Error response from daemon: OCI runtime create failed: "
    'container_linux.go:349: starting container process caused exec: "run.sh": executable file not found',
}


def template_settings() -> tuple[int, int, int]:
    """RemediationMaxConcurrency and RemediationBatchSize (their defaults), and RemediationQueue's
    maxReceiveCount, as deployed."""
    template = load_template()
    params = template["Parameters"]
    queue = template["Resources"]["RemediationQueue"]["Properties"]
    return (
        int(params["RemediationMaxConcurrency"]["Default"]),
        int(params["RemediationBatchSize"]["Default"]),
        int(queue["RedrivePolicy"]["maxReceiveCount"]),
    )


# -- AWS: moto behind one lock, throttling in front of it, every call and request counted ----------------


def throttle_response(service: str, url: str, provisioned: bool) -> AWSResponse:
    """What AWS answers a request it throttled: Batch (REST JSON) HTTP 429 TooManyRequestsException, ECS
    (JSON 1.1) HTTP 400 ThrottlingException, DynamoDB (JSON 1.0) HTTP 400 with one of its two throttling
    codes."""
    if service == "batch":
        status, code = 429, "TooManyRequestsException"
        body: dict[str, str] = {"message": "Too Many Requests"}
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:"}
    elif service == "ecs":
        status = 400
        body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
        headers = {"Content-Type": "application/x-amz-json-1.1"}
    else:
        status = 400
        code = "ProvisionedThroughputExceededException" if provisioned else "ThrottlingException"
        body = {
            "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
            "message": "The level of configured provisioned throughput for the table was exceeded."
            if code.startswith("Provisioned")
            else "Rate of requests exceeds the allowed throughput.",
        }
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    headers["x-amzn-RequestId"] = str(uuid.uuid4())
    return AWSResponse(url, status, headers, MockRawResponse(json.dumps(body)))  # type: ignore[arg-type]


@dataclass
class Books:
    """What one container's clients did (one thread each: no lock)."""

    rng: random.Random
    calls: Counter[str] = field(default_factory=Counter)  # API calls the code made
    requests: Counter[str] = field(default_factory=Counter)  # HTTP requests, retries included
    throttled: Counter[str] = field(default_factory=Counter)
    tagged: set[str] = field(default_factory=set)  # job ARNs whose TagResource succeeded


@dataclass
class Account:
    """The AWS the workers share: moto, serving one request at a time, with optional throttling."""

    throttle: dict[tuple[str, str], float] = field(default_factory=dict)
    books: list[Books] = field(default_factory=list)
    moto: threading.Lock = field(default_factory=threading.Lock)

    def container(self) -> tuple[boto3.session.Session, Books]:
        """A container's session (its clients share botocore's loaded models) and books."""
        books = Books(random.Random(SEED + len(self.books)))
        self.books.append(books)
        return boto3.session.Session(), books

    def client(self, service: str, session: boto3.session.Session, books: Books) -> Any:
        """A client as the function builds it (regcred.aws: retries, timeouts), in front of moto."""
        client = aws.client(service, session)
        events = client.meta.events
        events.unregister("before-send", botocore_stubber)
        events.register(
            "before-send", lambda request, event_name, **_: self._send(books, service, request, event_name)
        )
        events.register(
            "before-parameter-build",
            lambda model, params, context, **_: _call(books, service, model, params, context),
        )
        events.register(
            "after-call",
            lambda http_response, model, context, **_: _done(books, model, http_response, context),
        )
        return client

    def total(self, what: str) -> Counter[str]:
        found: Counter[str] = Counter()
        for books in self.books:
            found.update(getattr(books, what))
        return found

    def tagged(self) -> set[str]:
        return set().union(*(b.tagged for b in self.books))

    def _send(self, books: Books, service: str, request: Any, event_name: str) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        name = f"{service}:{operation}"
        books.requests[name] += 1
        rate = self.throttle.get((service, operation), 0.0)
        if rate > 0 and books.rng.random() < rate:
            books.throttled[name] += 1
            return throttle_response(service, request.url, books.rng.random() < 0.5)
        with self.moto:
            response: AWSResponse | None = botocore_stubber(event_name=event_name, request=request)
        if response is None:
            # Never past moto to a real endpoint (moto stopped, a URL it does not serve).
            raise RuntimeError(f"{name}: not served by moto")
        return response


def _call(books: Books, service: str, model: Any, params: dict[str, Any], context: dict[str, Any]) -> None:
    books.calls[f"{service}:{model.name}"] += 1
    if model.name == "TagResource":
        context["bench_tagged"] = params.get("resourceArn")


def _done(books: Books, model: Any, http_response: Any, context: dict[str, Any]) -> None:
    arn = context.get("bench_tagged")
    if arn and model.name == "TagResource" and http_response.status_code == 200:
        books.tagged.add(arn)


@contextlib.contextmanager
def shared_metrics() -> Iterator[None]:
    """Powertools Metrics keeps one metric set per process: the workers (one container each in Lambda)
    write it one at a time."""
    provider = metrics.provider
    lock = threading.RLock()
    originals = {name: getattr(provider, name) for name in ("add_metric", "flush_metrics")}

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name, method in originals.items():
        setattr(provider, name, locked(method))
    try:
        yield
    finally:
        for name in originals:
            delattr(provider, name)


# -- the queue and the event source mapping --------------------------------------------------------------


@dataclass
class Message:
    id: str
    body: str
    poison: bool
    receives: int = 0
    sent_ms: int = 0


class Queue:
    """RemediationQueue as the event source mapping sees it: at-least-once, no order, a redrive policy."""

    def __init__(self, bodies: list[tuple[str, bool]], max_receives: int) -> None:
        now = int(time.time() * 1000)
        self.visible: deque[Message] = deque(
            Message(str(uuid.uuid4()), body, is_poison, 0, now) for body, is_poison in bodies
        )
        self.max_receives = max_receives
        self.dead: list[Message] = []
        self.done: list[Message] = []
        self.in_flight = 0
        self.redelivered = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> list[Message] | None:
        """Up to ``n`` messages; [] when none is visible now, None when the queue is drained."""
        with self._lock:
            if not self.visible:
                return None if self.in_flight == 0 else []
            batch = [self.visible.popleft() for _ in range(min(n, len(self.visible)))]
            for message in batch:
                message.receives += 1
            self.in_flight += len(batch)
            return batch

    def settle(self, batch: list[Message], failed: set[str]) -> None:
        with self._lock:
            self.in_flight -= len(batch)
            for message in batch:
                if message.id not in failed:
                    self.done.append(message)
                elif message.receives >= self.max_receives:
                    self.dead.append(message)  # SQS moves it on the receive after its last
                else:
                    self.redelivered += 1
                    self.visible.append(message)


def sqs_event(batch: list[Message]) -> dict[str, Any]:
    """The event the mapping invokes the function with (AWS Lambda developer guide, SQS event example)."""
    return {
        "Records": [
            {
                "messageId": m.id,
                "receiptHandle": f"AQEB{m.id}/{m.receives}",
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": str(m.receives),
                    "SentTimestamp": str(m.sent_ms),
                    "SenderId": "AIDAIE6VAXUQU2DKHA7DK",
                    "ApproximateFirstReceiveTimestamp": str(m.sent_ms + 5),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(m.body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
            for m in batch
        ]
    }


@dataclass
class Mapping:
    """The event source mapping: ``concurrency`` workers, each an execution environment taking batches."""

    app: Any
    queue: Queue
    concurrency: int
    batch_size: int
    container: Callable[[], Remediator]
    invocations: int = 0
    failed_invocations: int = 0
    peak: int = 0
    _running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        local = threading.local()
        # Each worker's own remediator, as each container builds its own (the handler's _get_remediator).
        original = self.app._get_remediator
        self.app._get_remediator = lambda: local.remediator
        workers = [
            threading.Thread(target=self._worker, args=(local,), name=f"container-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            self._stop.set()  # an interrupted run: the workers take no further batch
            self.app._get_remediator = original

    def _worker(self, local: threading.local) -> None:
        local.remediator = self.container()  # the container's init: clients, caches
        while not self._stop.is_set():
            batch = self.queue.take(self.batch_size)
            if batch is None:
                return
            if not batch:
                time.sleep(0.005)  # the others' batches are in flight: some may come back
                continue
            with self._lock:
                self._running += 1
                self.invocations += 1
                self.peak = max(self.peak, self._running)
            try:
                response = self.app.handler(sqs_event(batch), LambdaContext())
                failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            except Exception:
                # The invocation failed as a whole: every message of it comes back.
                failed = {m.id for m in batch}
                with self._lock:
                    self.failed_invocations += 1
            finally:
                with self._lock:
                    self._running -= 1
            self.queue.settle(batch, failed)


# -- the storm -------------------------------------------------------------------------------------------


@dataclass
class Tasks:
    """ECS tasks (in moto) per secret, each handed out once, and the sample event their events are made of."""

    template: dict[str, Any]
    free: dict[str, list[tuple[str, str]]]  # secret ARN -> (task ARN, task definition ARN)

    def event(self, rng: random.Random, arn: str, image: str, reason: str) -> dict[str, Any]:
        task, definition = self.free[arn].pop()
        if rng.random() < OLD_ARN_SHARE:
            # The old format names no cluster: ECS cannot tag it (regcred.ecs), so it is never asked.
            prefix, _, rest = task.partition(":task/")
            task = f"{prefix}:task/{rest.rsplit('/', 1)[-1]}"
        event = copy.deepcopy(self.template)
        event.update(id=str(uuid.UUID(int=rng.getrandbits(128))), region="us-east-1", account=ACCOUNT)
        event["resources"] = [task]
        detail = event["detail"]
        detail.update(
            taskArn=task,
            taskDefinitionArn=definition,
            clusterArn=f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/storm",
            stoppedReason=reason,
        )
        detail["containers"][0].update(name="app", image=image, taskArn=task, reason=reason)
        return event


def ecs_tasks(secrets: list[tuple[str, bool]], image: str, run: str) -> Tasks:
    """A task definition per secret (its repositoryCredentials name the secret) and its tasks."""
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName="storm")
    free: dict[str, list[tuple[str, str]]] = {}
    for i, (arn, _) in enumerate(secrets):
        definition = ecs.register_task_definition(
            family=f"{run}-{i}",
            containerDefinitions=[
                {
                    "name": "app",
                    "image": image,
                    "memory": 128,
                    "repositoryCredentials": {"credentialsParameter": arn},
                }
            ],
            executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ecs-execution",
        )["taskDefinition"]["taskDefinitionArn"]
        free[arn] = []
        for _ in range(TASKS_PER_SECRET // 10):
            started = ecs.run_task(cluster="storm", taskDefinition=definition, count=10, launchType="FARGATE")
            free[arn] += [(task["taskArn"], definition) for task in started["tasks"]]
    template = json.loads((ROOT / "events" / "remediate_ecs_task_auth_failure.json").read_text())
    return Tasks(template, free)


def build_events(
    rng: random.Random, secrets: list[tuple[str, bool]], template: dict[str, Any], registry: str, tasks: Tasks
) -> list[dict[str, Any]]:
    """Failures spread over the secrets and classes, with redeliveries, children and successes; a tenth
    from ECS tasks."""
    image = f"{registry}/acme/app:1.0"
    events: list[dict[str, Any]] = []
    while len(events) < EVENTS - POISON:
        arn, dead = rng.choice(secrets)
        roll = rng.random()
        if dead and roll < 0.6:
            kind = "auth"
        elif roll < 0.35:
            kind = "auth_or_not_found"
        else:
            kind = rng.choice(
                ["rate_limit", "not_found", "network", "platform_mismatch", "secret_retrieval", "other"]
            )
        reason = MESSAGES[kind].format(reg=registry)
        if rng.random() < ECS_SHARE and tasks.free[arn]:
            event = tasks.event(rng, arn, image, reason)
        else:
            event = batch_event(rng, template, arn, image, reason)
        events.append(event)
        if rng.random() < 0.15 and len(events) < EVENTS - POISON:
            redelivery = copy.deepcopy(event)
            redelivery["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
            events.append(redelivery)
    return events[: EVENTS - POISON]


def batch_event(
    rng: random.Random, template: dict[str, Any], arn: str, image: str, reason: str
) -> dict[str, Any]:
    event = copy.deepcopy(template)
    job = str(uuid.UUID(int=rng.getrandbits(128)))
    if rng.random() < 0.05:
        job = f"{job}:{rng.randrange(100)}"  # an array child: cannot be tagged
    detail = event["detail"]
    event["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
    detail.update(jobId=job, jobArn=f"arn:aws:batch:us-east-1:{ACCOUNT}:job/{job}")
    detail["container"]["image"] = image
    detail["container"]["repositoryCredentials"] = {"credentialsParameter": arn}
    detail["container"]["executionRoleArn"] = f"arn:aws:iam::{ACCOUNT}:role/batch-execution"
    detail["container"]["reason"] = reason
    detail["attempts"][0]["container"]["reason"] = reason
    if rng.random() < 0.03:
        detail["status"] = "SUCCEEDED"  # a retry that succeeded, delivered in the same stream
    return event


def poison(rotation_sample: dict[str, Any]) -> list[str]:
    """Messages no rule sends: not JSON, JSON that is no event, a rotation event of another account."""
    bodies = ["job failed to pull", "{not json", '["an", "array"]', "null"]
    bodies += [json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {}})] * 3
    for i in range(POISON - len(bodies)):
        event = copy.deepcopy(rotation_sample)
        event["id"] = str(uuid.UUID(int=i + 1))
        secret = event["detail"]["additionalEventData"]["SecretId"]
        event["detail"]["additionalEventData"]["SecretId"] = secret.replace(ACCOUNT, "210987654321")
        bodies.append(json.dumps(event))
    return bodies


def shuffled(rng: random.Random, bodies: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Out of order: EventBridge and SQS give no ordering guarantee."""
    out = list(bodies)
    for i in range(0, len(out) - 1, 7):
        j = min(len(out) - 1, i + rng.randrange(1, 50))
        out[i], out[j] = out[j], out[i]
    return out


def taggable_jobs(events: list[dict[str, Any]]) -> set[str]:
    """Failed Batch jobs that are not children, and ECS tasks in the long ARN format, of a pull class."""
    found = set()
    for event in events:
        detail = event["detail"]
        if event["source"] == "aws.ecs":
            long_format = detail["taskArn"].count("/") == 2
            if long_format and classify(detail["stoppedReason"]) is not FailureClass.OTHER:
                found.add(detail["taskArn"])
            continue
        if (
            detail["status"] == "FAILED"
            and classify(detail["container"]["reason"]) is not FailureClass.OTHER
            and not is_child_job(detail["jobId"])
        ):
            found.add(detail["jobArn"])
    return found


def managed_secrets(env: dict[str, str], hub: DockerHubProvider, run: str) -> list[tuple[str, bool]]:
    setup = boto3.client("secretsmanager")
    registry = env["REGCRED_REGISTRY"]
    secrets: list[tuple[str, bool]] = []
    for i in range(DEAD + HEALTHY):
        name = f"{run}/{i}"
        issued = hub.issue(labels.label_for(name, f"onboard-{uuid.uuid4()}"), None)
        value = SecretValue(issued.username, issued.password, registry, "dockerhub", issued.token_id)
        arn = setup.create_secret(
            Name=name,
            SecretString=render(value),
            Tags=[
                {"Key": config.MANAGED, "Value": "true"},
                {"Key": config.PROVIDER, "Value": "dockerhub"},
                {"Key": config.API, "Value": env["REGCRED_DOCKERHUB_API"]},
                {"Key": config.REGISTRY, "Value": registry},
            ],
        )["ARN"]
        setup.rotate_secret(
            SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
        )
        dead = i < DEAD
        if dead:
            hub.revoke(issued.token_id)
        secrets.append((arn, dead))
    return secrets


def storm(
    name: str, env: dict[str, str], hub: DockerHubProvider, throttle: dict[tuple[str, str], float]
) -> dict[str, Any]:
    rng = random.Random(SEED)
    max_concurrency, batch_size, max_receives = template_settings()
    registry = env["REGCRED_REGISTRY"]
    deployment = Deployment.from_env(env)
    table = f"coalesce-{name}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    secrets = managed_secrets(env, hub, name)
    template = json.loads((ROOT / "events" / "remediate_batch_auth_failure.json").read_text())
    rotation = json.loads((ROOT / "events" / "remediate_rotation_failed.json").read_text())
    tasks = ecs_tasks(secrets, f"{registry}/acme/app:1.0", name)
    events = build_events(rng, secrets, template, registry, tasks)
    bad = poison(rotation)
    messages = [(json.dumps(e), False) for e in events] + [(b, True) for b in bad]
    queue = Queue(shuffled(rng, messages), max_receives)
    taggable = taggable_jobs(events)
    account = Account(throttle=throttle)

    def container() -> Remediator:
        session, books = account.container()
        return Remediator(
            sm=account.client("secretsmanager", session, books),
            batch=account.client("batch", session, books),
            iam=account.client("iam", session, books),
            ecs=account.client("ecs", session, books),
            sns=None,
            coalescer=EventClaims(account.client("dynamodb", session, books), table, 900),
            settings=Settings(cooldown_s=900),
            deployment=deployment,
        )

    app = load("remediate")
    mapping = Mapping(app, queue, max_concurrency, batch_size, container)
    # The harness's own objects (10,000 prepared messages, moto's state) are not scanned by every collection
    # during the run: a container holds none of them.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    try:
        with (
            open(os.devnull, "w") as sink,  # the function's logs and metrics
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            shared_metrics(),
        ):
            mapping.run()
    finally:
        gc.unfreeze()
    elapsed = time.perf_counter() - started
    handled = sum(1 for m in queue.done if not m.poison)
    calls, requests = account.total("calls"), account.total("requests")
    total_calls, total_requests = sum(calls.values()), sum(requests.values())
    return {
        "bench": name,
        "events": len(messages),
        "poison": len(bad),
        # Every message that is not poison ends handled (its batch reported it done), and only those.
        "lost_events": len(events) - handled,
        "dead_lettered": len(queue.dead),
        "dead_lettered_poison_only": all(m.poison for m in queue.dead) and len(queue.dead) == len(bad),
        "max_concurrency": max_concurrency,
        "peak_concurrency": mapping.peak,
        "batch_size": batch_size,
        "invocations": mapping.invocations,
        "failed_invocations": mapping.failed_invocations,
        "redelivered": queue.redelivered,
        "dead_secrets": DEAD,
        "rotations": calls["secretsmanager:RotateSecret"],
        "tagged": len(account.tagged() & taggable),
        "taggable": len(taggable),
        "tag_calls": calls["batch:TagResource"],
        "ecs_events": sum(1 for e in events if e["source"] == "aws.ecs"),
        "ecs_tagged": len({a for a in account.tagged() & taggable if ":ecs:" in a}),
        "ecs_tag_calls": calls["ecs:TagResource"],
        "aws_calls_per_event": round(total_calls / len(messages), 4),
        "aws_requests_per_event": round(total_requests / len(messages), 4),
        "throttled": dict(sorted(account.total("throttled").items())),
        "events_per_s": round(len(messages) / elapsed, 1),
        "seconds": round(elapsed, 1),
        "calls_by_api": dict(sorted(calls.items())),
    }


def failures(result: dict[str, Any], calm: bool) -> list[str]:
    problems = []
    if result["lost_events"] != 0:
        problems.append("events lost")
    if not result["dead_lettered_poison_only"]:
        problems.append("the dead-letter queue does not hold exactly the poison messages")
    if result["rotations"] != result["dead_secrets"]:
        problems.append("rotations differ from the dead secrets")
    if result["tagged"] != result["taggable"]:
        problems.append("taggable jobs left untagged")
    if result["peak_concurrency"] > result["max_concurrency"]:
        problems.append("more invocations at once than max_concurrency")
    if calm and result["aws_calls_per_event"] > 1.05:
        problems.append("more than 1.05 AWS calls per event")
    if not calm and not result["throttled"]:
        problems.append("nothing was throttled")
    return problems


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = Stack.up(Path(root))
        try:
            env = stack.env
            deployment = Deployment.from_env(env)
            hub = DockerHubProvider(
                Credential(env["REGCRED_DOCKERHUB_ADMIN_USER"], env["REGCRED_DOCKERHUB_ADMIN_TOKEN"]),
                api=parse_origin(env["REGCRED_DOCKERHUB_API"], what="REGCRED_DOCKERHUB_API"),
                transport=Transport(local_origins=deployment.local_origins),
            )
            # The workers are threads of one interpreter, which runs one at a time: on one CPU the lock they
            # pass (the GIL) does not bounce between cores, which cost a third of the run. The stack's
            # servers, started before, keep every CPU.
            if hasattr(os, "sched_setaffinity"):  # Linux
                os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
            with mock_aws(config={"batch": {"use_docker": False}}):
                calm = storm("storm", env, hub, {})
                throttled = storm(
                    "storm_throttled",
                    env,
                    hub,
                    {
                        ("batch", "TagResource"): THROTTLE_RATE,
                        ("ecs", "TagResource"): THROTTLE_RATE,
                        ("dynamodb", "PutItem"): THROTTLE_RATE,
                        ("dynamodb", "UpdateItem"): THROTTLE_RATE,
                    },
                )
        finally:
            stack.down()
    problems = []
    for result, is_calm in ((calm, True), (throttled, False)):
        print(json.dumps(result))
        problems += [f"{result['bench']}: {p}" for p in failures(result, is_calm)]
    if problems:
        print("storm: requirement not met: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
