"""Fault injection, a standing test layer: every AWS and HTTP call a responder makes fails in each way it can, and
the responders' invariants still hold.

Faults: throttled, a 5xx, no connection, and a timeout after the service acted (the response is lost: the
ambiguous case, where a blind retry repeats the action). Each is injected once (the first attempt of the call:
botocore's standard retries, or the responder's own for GitHub, must absorb it) or for a whole delivery (every
attempt fails: the invocation fails and is delivered again, as Lambda retries an asynchronous invocation).

Invariants:
- a drift alarm transition ends in exactly one pipeline execution, however its handling fails and is retried;
- an approval dispatches exactly one deployment, however often it is delivered or retried;
- the deploy token never appears in a log record, in printed output or in an exception message;
- every failed invocation goes through the responder's own failure log and ``Failed`` metric.

AWS faults are injected at botocore's HTTP layer (its ``before-send`` event), below botocore's retry loop, on the
clients the responders build for themselves, so the retry configuration under test is the one Lambda runs.
GitHub is a loopback server (127.0.0.1, always stopped) scripted to answer 429, 5xx or too late; refused
connections are raised by a wrapper around the responder's HTTP opener, exactly as urllib raises them.
"""

from __future__ import annotations

import enum
import http.server
import json
import logging
import re
import threading
import time
import traceback
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber
from moto.sagemaker.models import SageMakerModelBackend

from lambdas.local import import_app
from tests.support.functional_moto import Clients, empty_backends, module_mock
from tools.local_http import BackgroundServer

retrain = import_app("retrain_on_alarm")
notify = import_app("notify_pipeline")
dispatch = import_app("dispatch_deployment")

from responder_common.errors import ResponderError  # noqa: E402

REGION = "eu-west-1"
ACCOUNT = "123456789012"
EVENTS = Path(__file__).resolve().parent / "events"
ALARM = "acme-dev-customer-churn-drift"
PIPELINE = "acme-dev-customer-churn"
GROUP = "acme-dev-customer-churn"
TABLE = "acme-dev-responder-state"
SECRET_NAME = "acme/github-token"
TOKEN = "ghp_faultLayerToken0123456789abcdefABCDEF"
DEFINITION = json.dumps(
    {"Version": "2020-12-01", "Parameters": [{"Name": "DataVersion", "Type": "String"}], "Steps": []}
)


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


# ------------------------------------------------------------------------------------------ AWS faults
class Fault(enum.StrEnum):
    THROTTLE = "throttle"
    SERVER_ERROR = "5xx"
    CONNECTION = "connection"
    TIMEOUT = "timeout"  # the service acted; the response never came back


# How AWS answers each fault, by wire protocol: (HTTP status, error code).
ERROR_ANSWERS = {
    "json": {Fault.THROTTLE: (400, "ThrottlingException"), Fault.SERVER_ERROR: (503, "ServiceUnavailable")},
    "query": {Fault.THROTTLE: (400, "Throttling"), Fault.SERVER_ERROR: (503, "ServiceUnavailable")},
}
NOWHERE = "http://fault-injected.invalid/"


def error_response(protocol: str, fault: Fault, url: str) -> AWSResponse:
    status, code = ERROR_ANSWERS["query" if protocol == "query" else "json"][fault]
    if protocol == "query":
        body = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error></ErrorResponse>"
        headers = {"Content-Type": "text/xml"}
    else:
        body = json.dumps({"__type": code, "message": "injected"})
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


@dataclass
class Wire:
    """Sees every attempt of every AWS call made by the clients it is attached to, numbers the calls (a call and
    its retries share botocore's invocation id) and fails the attempts of one chosen call.

    ``persistent`` fails every attempt of that call (botocore gives up: the invocation fails), otherwise only the
    first attempt fails. ``disarm()`` lets the call through again (the next delivery of the event).
    """

    target: int | None = None
    fault: Fault = Fault.THROTTLE
    persistent: bool = False
    calls: list[str] = field(default_factory=list)
    injected: int = 0
    _index: dict[str, int] = field(default_factory=dict)
    _attempts: dict[str, int] = field(default_factory=dict)

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        # More specific than moto's own ``before-send`` handler, so this one runs first.
        client.meta.events.register_first(
            f"before-send.{service}", partial(self._before_send, protocol=client.meta.service_model.protocol)
        )

    def disarm(self) -> None:
        self.target = None

    def _before_send(self, request: Any, event_name: str, protocol: str, **_: Any) -> AWSResponse | None:
        invocation = str(request.headers.get("amz-sdk-invocation-id", id(request)))
        if invocation not in self._index:
            self._index[invocation] = len(self.calls)
            self.calls.append(event_name.split(".", 1)[1])
        attempt = self._attempts[invocation] = self._attempts.get(invocation, 0) + 1
        if self._index[invocation] != self.target or (attempt > 1 and not self.persistent):
            return None
        self.injected += 1
        if self.fault is Fault.CONNECTION:
            raise EndpointConnectionError(endpoint_url=request.url)
        if self.fault is Fault.TIMEOUT:
            botocore_stubber(event_name, request=request)  # moto performs the call; its answer is lost
            raise ReadTimeoutError(endpoint_url=request.url)
        response = error_response(protocol, self.fault, request.url)
        # Every before-send handler runs; pointing this attempt elsewhere keeps moto from performing the call.
        request.url = NOWHERE
        return response


@pytest.fixture
def honour_client_request_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """StartPipelineExecution as AWS documents it: "A unique, case-sensitive identifier that you provide to ensure
    the idempotency of the operation. An idempotent operation completes no more than once." moto starts a new
    execution for every call; a retried start with the same token must return the first one."""
    original = SageMakerModelBackend.start_pipeline_execution

    def start(self: Any, pipeline_name: str, *args: Any) -> dict[str, str]:
        token = args[-1]
        for pipeline in self.pipelines.values():
            for arn, execution in pipeline.pipeline_executions.items():
                if token and execution.client_request_token == token:
                    return {"PipelineExecutionArn": arn}
        return original(self, pipeline_name, *args)

    monkeypatch.setattr(SageMakerModelBackend, "start_pipeline_execution", start)


@pytest.fixture(autouse=True)
def no_botocore_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry sleeps, recorded instead of slept (only botocore's: its endpoint module's ``time``)."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=slept.append, time=time.time))
    return slept


# ------------------------------------------------------------------------------------------ observation
class Context:
    """A Lambda context. ``remaining_ms`` is what the idempotency layer records as the in-progress deadline."""

    function_name = "acme-dev-responder"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:acme-dev-responder"
    memory_limit_in_mb = 256
    aws_request_id = "7b5c1f0e-2c7a-4f3e-9d55-0a0b0c0d0e0f"
    log_group_name = "/aws/lambda/acme-dev-responder"
    log_stream_name = "2024/05/01/[$LATEST]abc"

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def rendered(record: logging.LogRecord) -> str:
    """Everything a log record carries: message, every attribute, and the whole exception chain."""
    parts = [record.getMessage(), repr(record.__dict__)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
    return "\n".join(parts)


def exception_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error.args)


@dataclass
class Delivery:
    """What one invocation of a handler did: its result or the error it raised, its log records and its metrics."""

    result: dict[str, Any] | None
    error: BaseException | None
    records: list[logging.LogRecord]
    printed: str

    @property
    def metrics(self) -> list[str]:
        names = []
        for line in self.printed.splitlines():
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict) and "_aws" in document:
                for directive in document["_aws"].get("CloudWatchMetrics", []):
                    names.extend(metric["Name"] for metric in directive.get("Metrics", []))
        return names

    def reported_failure(self, function: str) -> bool:
        logged = [r for r in self.records if r.getMessage() == f"{function} failed"]
        return len(logged) == 1 and "Failed" in self.metrics

    def everything(self) -> str:
        text = [rendered(r) for r in self.records] + [self.printed]
        if self.error is not None:
            text.append(exception_text(self.error))
        return "\n".join(text)


def invoke(
    app: Any,
    event: dict[str, Any],
    context: Context,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> Delivery:
    """``app.handler(event, context)`` as Lambda calls it, capturing everything it logs and prints."""
    caplog.clear()
    capsys.readouterr()
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    with caplog.at_level(logging.DEBUG):  # botocore's DEBUG records too: they print request and response bodies
        try:
            result = app.handler(json.loads(json.dumps(event)), context)
        except Exception as raised:  # the handler re-raises for Lambda: kept for the assertions
            error = raised
    return Delivery(result=result, error=error, records=list(caplog.records), printed=capsys.readouterr().out)


def cold_start(app: Any, monkeypatch: pytest.MonkeyPatch, wire: Wire, env: dict[str, str]) -> Any:
    """A new container: the environment read afresh, new clients (the responders' own), all attached to ``wire``."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app.runtime.cache_clear()
    rt = app.runtime()
    for client in aws_clients(rt):
        wire.attach(client)
    return rt


def aws_clients(rt: Any) -> list[Any]:
    found: dict[int, Any] = {}

    def visit(value: Any, depth: int) -> None:
        if depth > 4 or value is None or isinstance(value, str | int | float | bool | dict | list | tuple):
            return
        if hasattr(value, "meta") and hasattr(value.meta, "service_model"):
            found[id(value)] = value
            return
        for attribute in getattr(value, "__dict__", {}).values():
            visit(attribute, depth + 1)

    visit(rt, 0)
    return list(found.values())


@pytest.fixture(scope="module")
def moto_clients() -> Iterator[Clients]:
    """One moto mock and one set of test-side clients for the module (tests/support/functional_moto.py: ~65 ms a
    test); :func:`aws` empties the backends before each test, so every test still starts from nothing."""
    with module_mock(REGION) as clients:
        yield clients


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_clients: Clients) -> SimpleNamespace:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    empty_backends()  # whatever the test before left behind
    dynamodb, sns, sqs = moto_clients.dynamodb, moto_clients.sns, moto_clients.sqs
    sagemaker, secrets = moto_clients.sagemaker, moto_clients.secretsmanager
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn = sns.create_topic(Name="acme-dev-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    sagemaker.create_pipeline(
        PipelineName=PIPELINE, PipelineDefinition=DEFINITION, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline"
    )
    secrets.create_secret(Name=SECRET_NAME, SecretString=TOKEN)

    def notifications() -> list[dict[str, Any]]:
        received = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return received

    def executions() -> list[dict[str, Any]]:
        return sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]

    return SimpleNamespace(
        topic_arn=topic_arn, secrets=secrets, notifications=notifications, executions=executions, sns=sns
    )


# ------------------------------------------------------------------------------------------ retrain_on_alarm
def alarm_event() -> dict[str, Any]:
    event = load("cloudwatch_alarm_sns")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    # A transition happening now: the ledger's cooldown and daily cap are computed from the real clock.
    message["StateChangeTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def retrain_env(aws: SimpleNamespace) -> dict[str, str]:
    target = {"model": "customer-churn", "pipelineName": PIPELINE, "cooldownMinutes": 360, "maxPerDay": 2}
    return {"ALERTS_TOPIC_ARN": aws.topic_arn, "STATE_TABLE": TABLE, "RETRAIN_TARGETS": json.dumps({ALARM: target})}


# Lambda retries a failed asynchronous invocation after a minute or more, past the function's timeout, so an
# in-progress idempotency record left by the failed attempt has expired by then: 1 ms left reproduces that.
RETRY_CONTEXT_MS = 1


# The calls of one clean handling, in order (checked by test_retrain_trace_is_the_calls_the_matrix_faults).
RETRAIN_CALLS = [
    "dynamodb.PutItem",  # idempotency record: in progress
    "sagemaker.ListPipelineExecutions",  # one still Executing?
    "dynamodb.UpdateItem",  # ledger claim, same UTC day: refused (no ledger item yet)
    "dynamodb.UpdateItem",  # ledger claim, first start of the day: granted
    "sagemaker.DescribePipeline",  # which parameters it takes
    "sagemaker.StartPipelineExecution",
    "sns.Publish",
    "dynamodb.UpdateItem",  # idempotency record: completed
]


def test_retrain_trace_is_the_calls_the_matrix_faults(aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    wire = Wire()
    cold_start(retrain, monkeypatch, wire, retrain_env(aws))
    retrain.handler(alarm_event(), Context(RETRY_CONTEXT_MS))
    assert wire.calls == RETRAIN_CALLS


@pytest.mark.usefixtures("honour_client_request_tokens")
@pytest.mark.parametrize("persistent", [False, True], ids=["once", "whole-delivery"])
@pytest.mark.parametrize("fault", list(Fault))
@pytest.mark.parametrize("call", range(len(RETRAIN_CALLS)), ids=[f"{i}-{c}" for i, c in enumerate(RETRAIN_CALLS)])
def test_a_drift_transition_ends_in_exactly_one_execution(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    call: int,
    fault: Fault,
    persistent: bool,
) -> None:
    wire = Wire(target=call, fault=fault, persistent=persistent)
    event = alarm_event()
    cold_start(retrain, monkeypatch, wire, retrain_env(aws))
    first = invoke(retrain, event, Context(RETRY_CONTEXT_MS), caplog, capsys)
    assert wire.injected >= 1
    if not persistent:
        assert first.error is None, first.everything()  # botocore's standard retries absorb a single fault
    deliveries = [first]
    wire.disarm()
    while deliveries[-1].error is not None and len(deliveries) < 3:  # Lambda: the first try and two retries
        assert deliveries[-1].reported_failure("retrain_on_alarm"), deliveries[-1].everything()
        cold_start(retrain, monkeypatch, wire, retrain_env(aws))
        deliveries.append(invoke(retrain, event, Context(RETRY_CONTEXT_MS), caplog, capsys))
    assert deliveries[-1].error is None, deliveries[-1].everything()
    assert len(aws.executions()) == 1
    started = {n["Message"] for n in aws.notifications()}
    assert started and all("Retraining started" in m for m in started)


def test_a_network_error_on_start_does_not_cancel_the_retraining(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 15 item 2: StartPipelineExecution unreachable for a whole delivery; the claim must not survive it."""
    wire = Wire(target=RETRAIN_CALLS.index("sagemaker.StartPipelineExecution"), fault=Fault.CONNECTION, persistent=True)
    event = alarm_event()
    cold_start(retrain, monkeypatch, wire, retrain_env(aws))
    failed = invoke(retrain, event, Context(RETRY_CONTEXT_MS), caplog, capsys)
    assert failed.error is not None and failed.reported_failure("retrain_on_alarm")
    wire.disarm()
    cold_start(retrain, monkeypatch, wire, retrain_env(aws))
    retried = invoke(retrain, event, Context(RETRY_CONTEXT_MS), caplog, capsys)
    assert retried.result is not None and retried.result["outcomes"][0]["outcome"] == "RetrainStarted"
    assert len(aws.executions()) == 1


def test_concurrent_deliveries_of_one_transition_start_one_execution_after_redelivery(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A delivery that finds the transition in progress elsewhere fails (reported, retried by Lambda) rather than
    reporting success: if the other invocation was its own lost write, nobody else would ever handle it."""
    wire = Wire()
    event = alarm_event()
    rt = cold_start(retrain, monkeypatch, wire, retrain_env(aws))
    (change,) = retrain.parse_event(event)
    # The first invocation is still working: its in-progress record is there (a minute of its time left).
    rt.retrainer.persistence.configure(rt.retrainer.config, key_prefix="alarm")
    rt.retrainer.persistence.save_inprogress(data=change.idempotency_key, remaining_time_in_millis=60_000)
    busy = invoke(retrain, event, Context(60_000), caplog, capsys)
    assert isinstance(busy.error, ResponderError) and busy.reported_failure("retrain_on_alarm")
    assert aws.executions() == []


# ------------------------------------------------------------------------------------------ dispatch_deployment
@dataclass
class Answer:
    """One scripted answer of the fake GitHub: ``accepted`` when GitHub would have started the workflow."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class GitHub:
    """GitHub's workflow_dispatch endpoint on 127.0.0.1, answering from a script (then 204), recording requests."""

    def __init__(self, token: str = TOKEN) -> None:
        self.script: list[Answer] = []
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = {"method": "POST", "path": self.path, "body": json.loads(self.rfile.read(length) or b"{}")}
                outer.requests.append(request)
                answer = outer.script.pop(0) if outer.script else Answer()
                if self.headers.get("Authorization") != f"Bearer {token}":
                    answer = Answer(401)
                if answer.accepted:
                    outer.accepted.append(request)
                time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def do_GET(self) -> None:
                outer.requests.append({"method": "GET", "path": self.path, "auth": self.headers.get("Authorization")})
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = BackgroundServer(Handler, name="fake-github")
        self.url = self.server.url

    def __enter__(self) -> GitHub:
        self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop()


class RefusingOpener:
    """The responder's opener, but the first ``refusals`` opens fail before any byte is sent, as urllib reports a
    refused connection or a connect timeout (``URLError`` wrapping the socket error)."""

    def __init__(self, opener: Callable[..., Any], reason: OSError, refusals: int) -> None:
        self.opener, self.reason, self.refusals = opener, reason, refusals

    def __call__(self, request: Any, timeout: float) -> Any:
        if self.refusals > 0:
            self.refusals -= 1
            raise urllib.error.URLError(self.reason)
        return self.opener(request, timeout=timeout)


def approval_event() -> dict[str, Any]:
    return load("model_package_state_change")


def dispatch_env(aws: SimpleNamespace, api_url: str) -> dict[str, str]:
    hook = {"kind": "github-workflow", "repository": "acme/platform", "workflow": "deploy.yml", "ref": "main"}
    return {
        "ALERTS_TOPIC_ARN": aws.topic_arn,
        "STATE_TABLE": TABLE,
        "DEPLOY_HOOK": json.dumps({**hook, "tokenSecretName": SECRET_NAME, "stack": "dev"}),
        "MODEL_PACKAGE_GROUPS": json.dumps({GROUP: "customer-churn"}),
        "GITHUB_API_URL": api_url,
    }


DISPATCH_CALLS = [
    "dynamodb.PutItem",  # approval ledger: dispatching
    "secrets-manager.GetSecretValue",
    "dynamodb.UpdateItem",  # approval ledger: dispatched
    "sns.Publish",
    "dynamodb.UpdateItem",  # approval ledger: notified
]


def dispatch_cold_start(
    aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, wire: Wire, github: GitHub, sleeps: list[float]
) -> Any:
    rt = cold_start(dispatch, monkeypatch, wire, dispatch_env(aws, github.url))
    rt.approvals.dispatcher.sleep = sleeps.append
    rt.approvals.dispatcher.timeout = 0.5
    return rt


def test_dispatch_trace_is_the_calls_the_matrix_faults(aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    wire = Wire()
    with GitHub() as github:
        dispatch_cold_start(aws, monkeypatch, wire, github, [])
        assert dispatch.handler(approval_event(), Context())["outcome"] == "DeploymentDispatched"
    assert wire.calls == DISPATCH_CALLS
    assert len(github.accepted) == 1


def deliver_until_done(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    wire: Wire,
    github: GitHub,
    *,
    extra_deliveries: int = 1,
) -> list[Delivery]:
    """Deliver the approval until it succeeds (Lambda's retries), then ``extra_deliveries`` more times (EventBridge
    delivers at least once), each to a new container; the fault is gone after the first delivery."""
    event = approval_event()
    deliveries: list[Delivery] = []
    sleeps: list[float] = []
    dispatch_cold_start(aws, monkeypatch, wire, github, sleeps)
    deliveries.append(invoke(dispatch, event, Context(), caplog, capsys))
    wire.disarm()
    while deliveries[-1].error is not None and len(deliveries) < 3:
        assert deliveries[-1].reported_failure("dispatch_deployment"), deliveries[-1].everything()
        dispatch_cold_start(aws, monkeypatch, wire, github, sleeps)
        deliveries.append(invoke(dispatch, event, Context(), caplog, capsys))
    for _ in range(extra_deliveries):
        dispatch_cold_start(aws, monkeypatch, wire, github, sleeps)
        deliveries.append(invoke(dispatch, event, Context(), caplog, capsys))
    return deliveries


def assert_secret_never_shown(deliveries: list[Delivery]) -> None:
    for delivery in deliveries:
        assert TOKEN not in delivery.everything()


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "whole-delivery"])
@pytest.mark.parametrize("fault", list(Fault))
@pytest.mark.parametrize("call", range(len(DISPATCH_CALLS)), ids=[f"{i}-{c}" for i, c in enumerate(DISPATCH_CALLS)])
def test_an_approval_dispatches_exactly_one_deployment_whatever_aws_does(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    call: int,
    fault: Fault,
    persistent: bool,
) -> None:
    wire = Wire(target=call, fault=fault, persistent=persistent)
    with GitHub() as github:
        deliveries = deliver_until_done(aws, monkeypatch, caplog, capsys, wire, github)
    assert wire.injected >= 1
    if not persistent:
        assert deliveries[0].error is None, deliveries[0].everything()
    assert len(github.accepted) == 1
    successes = [d for d in deliveries if d.error is None]
    assert successes, deliveries[-1].everything()
    assert sum(d.metrics.count("DeploymentDispatched") for d in deliveries) == 1  # counted once, when it happened
    assert aws.notifications()  # humans heard of it, at least once
    assert_secret_never_shown(deliveries)


@pytest.mark.parametrize(
    ("answers", "accepted_after"),
    [
        ([Answer(429, {"Retry-After": "2"})], 1),
        ([Answer(503)], 1),
        ([Answer(502), Answer(500), Answer(504)], 1),
    ],
    ids=["throttled", "5xx-once", "5xx-three-times"],
)
def test_github_throttling_and_5xx_are_retried_until_one_dispatch_is_accepted(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    answers: list[Answer],
    accepted_after: int,
) -> None:
    with GitHub() as github:
        github.script = list(answers)
        deliveries = deliver_until_done(aws, monkeypatch, caplog, capsys, Wire(), github)
    assert deliveries[0].error is None, deliveries[0].everything()
    assert len(github.accepted) == accepted_after
    assert len(github.requests) == len(answers) + 1
    assert_secret_never_shown(deliveries)


def test_github_failing_for_a_whole_delivery_is_retried_by_lambda_and_dispatches_once(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with GitHub() as github:
        github.script = [Answer(503) for _ in range(10)]
        event = approval_event()
        dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        failed = invoke(dispatch, event, Context(), caplog, capsys)
        assert failed.error is not None and failed.reported_failure("dispatch_deployment")
        github.script = []
        dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        retried = invoke(dispatch, event, Context(), caplog, capsys)
    assert retried.error is None and retried.result is not None
    assert retried.result["outcome"] == "DeploymentDispatched"
    assert len(github.accepted) == 1
    assert_secret_never_shown([failed, retried])


@pytest.mark.parametrize(
    "reason",
    [ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out")],
    ids=["refused", "connect-timeout"],
)
def test_a_connection_that_never_carried_the_request_is_retried(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    reason: OSError,
) -> None:
    with GitHub() as github:
        rt = dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        rt.approvals.dispatcher.opener = RefusingOpener(rt.approvals.dispatcher.opener, reason, refusals=2)
        monkeypatch.setattr(dispatch, "runtime", lambda: rt)
        delivery = invoke(dispatch, approval_event(), Context(), caplog, capsys)
    assert delivery.error is None, delivery.everything()
    assert len(github.accepted) == 1


def test_a_timeout_after_github_received_the_request_is_not_repeated(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GitHub took the request but answered too late: repeating the POST would run a second `pulumi up`. The
    dispatch is recorded as unconfirmed and humans are told to check the workflow's runs."""
    with GitHub() as github:
        github.script = [Answer(204, delay=1.5)]
        deliveries = deliver_until_done(aws, monkeypatch, caplog, capsys, Wire(), github, extra_deliveries=2)
    assert len(github.requests) == 1 and len(github.accepted) == 1
    assert deliveries[0].result is not None and deliveries[0].result["outcome"] == "DispatchUnconfirmed"
    (notification,) = aws.notifications()
    assert "unconfirmed" in notification["Subject"].lower()
    assert "check the runs of workflow deploy.yml" in notification["Message"]


def test_redelivered_and_concurrent_approvals_dispatch_once(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """EventBridge may deliver the same event (same id) twice, even at the same time."""
    with GitHub() as github:
        github.script = [Answer(204, delay=0.2)]  # the first dispatch is still in flight when the second arrives
        rt = dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        first: list[Any] = []
        holder = threading.Thread(target=lambda: first.append(dispatch.process(approval_event(), rt, Context())))
        holder.start()
        deadline = time.monotonic() + 5
        while not github.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(ResponderError) as duplicate:
            dispatch.process(approval_event(), rt, Context())
        holder.join()
        assert type(duplicate.value).__name__ == "DeliveryInProgressError"
        assert first[0]["outcome"] == "DeploymentDispatched"
        replay = invoke(dispatch, approval_event(), Context(), caplog, capsys)  # Lambda's retry of the duplicate
    assert replay.result is not None and replay.result["outcome"] == "DuplicateDelivery"
    assert len(github.accepted) == 1
    assert len(aws.notifications()) == 1


def test_a_failed_notification_after_the_dispatch_does_not_dispatch_again(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 15 item 3: SNS refuses the publish for a whole delivery; Lambda's retry must only notify."""
    wire = Wire(target=DISPATCH_CALLS.index("sns.Publish"), fault=Fault.SERVER_ERROR, persistent=True)
    with GitHub() as github:
        deliveries = deliver_until_done(aws, monkeypatch, caplog, capsys, wire, github, extra_deliveries=0)
    assert deliveries[0].error is not None
    assert deliveries[0].metrics.count("DeploymentDispatched") == 1  # counted when it happened
    assert deliveries[-1].error is None and deliveries[-1].result is not None
    assert (deliveries[-1].result["outcome"], deliveries[-1].result["replayedOutcome"]) == (
        "DuplicateDelivery",
        "DeploymentDispatched",
    )
    assert len(github.accepted) == 1
    assert len(aws.notifications()) == 1


# ------------------------------------------------------------------------------------------ the token
MULTILINE_SECRETS = {
    "comment-line": f"{TOKEN}\n# rotated 2024-05-01 by the platform team",
    "crlf-paste": f"{TOKEN}\r\nsecond-line-of-the-paste",
    "json-with-newline": json.dumps({"token": f"{TOKEN}\nnote"}),
    "inner-space": f"{TOKEN} {TOKEN}",
    "control-character": f"{TOKEN}\x00",
}


@pytest.mark.parametrize("secret", list(MULTILINE_SECRETS.values()), ids=list(MULTILINE_SECRETS))
def test_a_malformed_token_is_refused_without_ever_showing_it(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    secret: str,
) -> None:
    """Issue 15 item 1: a two-line paste made http.client raise ValueError("Invalid header value b'Bearer <token>...")."""
    aws.secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=secret)
    with GitHub() as github:
        dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        delivery = invoke(dispatch, approval_event(), Context(), caplog, capsys)
    assert isinstance(delivery.error, ResponderError)
    assert SECRET_NAME in str(delivery.error) and "whitespace or control characters" in str(delivery.error)
    assert delivery.reported_failure("dispatch_deployment")
    assert github.requests == []
    assert TOKEN not in delivery.everything()
    for line in secret.splitlines():
        assert line not in delivery.everything() or len(line) < 8


def test_a_token_with_surrounding_whitespace_is_used_stripped(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws.secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=f"  {TOKEN}\n")
    with GitHub() as github:
        dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        delivery = invoke(dispatch, approval_event(), Context(), caplog, capsys)
    assert delivery.error is None, delivery.everything()
    assert len(github.accepted) == 1


def test_an_unexpected_error_holding_the_token_is_redacted_in_logs_and_the_raised_error(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The second line of defence: an error nobody anticipated, with the token in its text, raised after the
    token was read. Neither the log records nor the exception Lambda receives may carry it."""

    class LeakySns:
        def publish(self, **_: Any) -> Any:
            raise RuntimeError(f"could not publish: Authorization: Bearer {TOKEN}")

    with GitHub() as github:
        rt = dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        rt.approvals.notifier = dispatch.Notifier(sns=LeakySns(), topic_arn=aws.topic_arn)
        monkeypatch.setattr(dispatch, "runtime", lambda: rt)
        delivery = invoke(dispatch, approval_event(), Context(), caplog, capsys)
    assert isinstance(delivery.error, ResponderError)
    assert str(delivery.error) == "RuntimeError: could not publish: Authorization: Bearer ***"
    assert delivery.reported_failure("dispatch_deployment")
    assert TOKEN not in delivery.everything()
    assert len(github.accepted) == 1


# ------------------------------------------------------------------------------------------ notify_pipeline
NOTIFY_CALLS = ["sagemaker.DescribePipelineExecution", "sns.Publish"]


def failed_pipeline_event() -> dict[str, Any]:
    event = load("pipeline_execution_status_change")
    event["detail"]["currentPipelineExecutionStatus"] = "Failed"
    return event


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "whole-delivery"])
@pytest.mark.parametrize("fault", list(Fault))
@pytest.mark.parametrize("call", range(len(NOTIFY_CALLS)), ids=NOTIFY_CALLS)
def test_a_failed_pipeline_is_always_notified(
    aws: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    call: int,
    fault: Fault,
    persistent: bool,
) -> None:
    env = {"ALERTS_TOPIC_ARN": aws.topic_arn, "PIPELINES": json.dumps({PIPELINE: "customer-churn"})}
    wire = Wire(target=call, fault=fault, persistent=persistent)
    cold_start(notify, monkeypatch, wire, env)
    deliveries = [invoke(notify, failed_pipeline_event(), Context(), caplog, capsys)]
    wire.disarm()
    while deliveries[-1].error is not None and len(deliveries) < 3:
        assert deliveries[-1].reported_failure("notify_pipeline"), deliveries[-1].everything()
        cold_start(notify, monkeypatch, wire, env)
        deliveries.append(invoke(notify, failed_pipeline_event(), Context(), caplog, capsys))
    assert deliveries[-1].error is None, deliveries[-1].everything()
    subjects = {n["Subject"] for n in aws.notifications()}
    assert subjects == {"[mlops] pipeline Failed: customer-churn"}


# ------------------------------------------------------------------------------------------ retry policy
def test_every_client_the_responders_create_uses_botocores_standard_retries(
    aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    envs = {
        retrain: retrain_env(aws),
        notify: {"ALERTS_TOPIC_ARN": aws.topic_arn, "PIPELINES": json.dumps({PIPELINE: "m"})},
        dispatch: dispatch_env(aws, "https://api.github.com"),
    }
    for app, env in envs.items():
        clients = aws_clients(cold_start(app, monkeypatch, Wire(), env))
        assert clients
        for client in clients:
            retries = client.meta.config.retries
            assert retries == {"mode": "standard", "total_max_attempts": 4}, (app.SERVICE, retries)
            assert client.meta.config.read_timeout <= 15 and client.meta.config.connect_timeout <= 5


def test_the_token_is_read_again_after_fifteen_minutes(aws: SimpleNamespace) -> None:
    now = [1000.0]
    reads: list[str] = []

    def counting(**kwargs: Any) -> Any:
        reads.append(kwargs["SecretId"])
        return aws.secrets.get_secret_value(**kwargs)

    tokens = dispatch.TokenSource(
        secrets=SimpleNamespace(get_secret_value=counting), secret_name=SECRET_NAME, clock=lambda: now[0]
    )
    assert tokens.token() == TOKEN
    now[0] += 14 * 60
    assert tokens.token() == TOKEN
    assert len(reads) == 1  # cached within its age
    now[0] += 2 * 60
    aws.secrets.put_secret_value(SecretId=SECRET_NAME, SecretString="ghp_rotatedToken0123456789")
    assert tokens.token() == "ghp_rotatedToken0123456789"
    assert len(reads) == 2


def test_a_rejected_token_is_read_again_on_the_next_try(aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub answering 401 means the cached token may have been rotated: the retry must not reuse it."""
    with GitHub(token="ghp_rotatedToken0123456789") as github:
        rt = dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        with pytest.raises(ResponderError, match="answered 401"):
            dispatch.process(approval_event(), rt, Context())
        aws.secrets.put_secret_value(SecretId=SECRET_NAME, SecretString="ghp_rotatedToken0123456789")
        assert dispatch.process(approval_event(), rt, Context())["outcome"] == "DeploymentDispatched"
    assert len(github.accepted) == 1


def test_a_client_error_from_github_is_not_retried(aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    with GitHub() as github:
        github.script = [Answer(422)]
        rt = dispatch_cold_start(aws, monkeypatch, Wire(), github, [])
        with pytest.raises(ResponderError, match="answered 422"):
            dispatch.process(approval_event(), rt, Context())
    assert len(github.requests) == 1


def test_a_retry_after_beyond_the_cap_is_left_to_lambdas_retry(
    aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    with GitHub() as github:
        github.script = [Answer(429, {"Retry-After": "3600"})]
        dispatch_cold_start(aws, monkeypatch, Wire(), github, sleeps)
        rt = dispatch.runtime()
        with pytest.raises(ResponderError, match=r"Retry-After of 3600 s"):
            dispatch.process(approval_event(), rt, Context())
    assert len(github.requests) == 1 and sleeps == []


def test_http_backoff_has_full_jitter_and_honours_retry_after(
    aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    with GitHub() as github:
        github.script = [Answer(503), Answer(503), Answer(429, {"Retry-After": "3"})]
        rt = dispatch_cold_start(aws, monkeypatch, Wire(), github, sleeps)
        rt.approvals.dispatcher.rand = lambda: 0.5
        assert dispatch.process(approval_event(), rt, Context())["outcome"] == "DeploymentDispatched"
    backoff = rt.approvals.dispatcher.backoff
    assert sleeps[:2] == [0.5 * backoff.base_seconds, 0.5 * min(backoff.max_seconds, backoff.base_seconds * 2)]
    assert sleeps[2] >= 3.0
    assert re.fullmatch(r"\d+(\.\d+)?", str(sleeps[2]))
