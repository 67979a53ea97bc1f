"""The feedback loop's test harness: AWS emulator clients, in-process responders, events, plumbing, a fake GitHub.

What it is for: running the platform's own code against LocalStack and moto's server on 127.0.0.1
(:mod:`tools.emulators`) without Lambda, CloudWatch's real alarm evaluation or GitHub:

- :func:`client`, :func:`aws_environment`, :func:`patched_environ`: boto3 clients and environment variables
  routed to an emulator, with the fake keys the emulators accept;
- :func:`responder`: a responder in ``lambdas/<function>/app.py`` cold-started in this process, as Lambda would
  run it (its contract environment set, its boto3 clients routed, its powertools metrics captured);
- :func:`lambda_sns_event`, :func:`model_package_state_change_detail`,
  :func:`pipeline_execution_status_change_event`: events in the shapes AWS documents;
- :func:`create_encrypted_topic`, :func:`subscribe_queue`, :func:`create_drift_alarm`, :func:`create_state_table`,
  :func:`route_rule_to_queue`, :func:`receive_matching`, ...: topics, queues, alarms, tables and EventBridge
  rules as the platform declares them, and a way to read what reached a queue;
- :class:`FakeGitHub`: GitHub's ``workflow_dispatch`` endpoint on loopback, recording every request.

Who uses it: the feedback-loop drill (:mod:`tools.drill`, ``make drill``) and the integration tier
(``tests/integration``). It never runs inside the Pulumi program or the Lambda functions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import importlib.util
import io
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tools.emulators import Endpoints

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
REGION = "eu-west-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # emulators accept any
METRICS_NAMESPACE = "MLOps/Responders"
RESPONDERS = ("retrain_on_alarm", "notify_pipeline", "dispatch_deployment")
LAMBDA_TIMEOUT_MS = 60_000


# ---------------------------------------------------------------------------------------------
# Clients and environment


def client(endpoint: str, service: str) -> Any:
    """A boto3 client of ``service`` at ``endpoint`` (an emulator), in the drill's region, with fake keys."""
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, **CREDENTIALS)  # type: ignore[call-overload]


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore the previous values."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def aws_environment(endpoints: Endpoints) -> dict[str, str]:
    """What a responder (or awswrangler) needs to reach the emulators: region, fake keys, endpoint routing."""
    return {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_EC2_METADATA_DISABLED": "true",
        **endpoints.environment(),
    }


# ---------------------------------------------------------------------------------------------
# Responders, run in process


@dataclass(frozen=True)
class FakeLambdaContext:
    """The parts of Lambda's context object that handlers and powertools read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return LAMBDA_TIMEOUT_MS


class ResponderMissingError(FileNotFoundError):
    """A responder's ``lambdas/<function>/app.py`` does not exist."""


def handler_path(function: str) -> Path:
    """``lambdas/<function>/app.py``."""
    return LAMBDAS_DIR / function / "app.py"


def _is_common(module: str) -> bool:
    return module == "responder_common" or module.startswith("responder_common.")


@contextlib.contextmanager
def _isolated_import_state() -> Iterator[None]:
    """Restore ``sys.path`` and the ``responder_common`` modules after a cold start, so the copies a
    responder loaded here never replace those other code (or tests) in this process imported."""
    saved_path = list(sys.path)
    saved = {name: module for name, module in sys.modules.items() if _is_common(name)}
    try:
        yield
    finally:
        for name in [m for m in sys.modules if _is_common(m) or m.startswith("_drill_responder_")]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path[:] = saved_path


def _load_handler(function: str) -> Callable[[Any, Any], Any]:
    """Import ``lambdas/<function>/app.py`` afresh (a cold start) and return its ``handler``.

    The archive puts ``responder_common`` next to ``app.py``; here ``lambdas/`` goes on ``sys.path``
    instead, and cached ``responder_common`` modules are dropped so their settings are read again.
    Call it inside :func:`_isolated_import_state`.
    """
    path = handler_path(function)
    if not path.is_file():
        raise ResponderMissingError(f"responder {function} not found at {path.relative_to(REPO_ROOT)}")
    for name in [m for m in sys.modules if _is_common(m)]:
        del sys.modules[name]
    sys.path.insert(0, str(LAMBDAS_DIR))
    module_name = f"_drill_responder_{function}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module.handler


@dataclass
class Responder:
    """A cold-started responder. Calling it invokes the handler as Lambda would, with a fresh context.

    powertools writes metrics to stdout as CloudWatch embedded-metric-format lines; they are captured,
    not printed: :attr:`metrics` lists the metric names emitted so far, :attr:`output` the other lines.
    """

    function: str
    handler: Callable[[Any, Any], Any]
    metrics: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    def __call__(self, event: Mapping[str, Any]) -> Any:
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                return self.handler(json.loads(json.dumps(event)), FakeLambdaContext(function_name=self.function))
        finally:
            self._collect(captured.getvalue())

    def _collect(self, text: str) -> None:
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and "_aws" in record:
                for directive in record["_aws"].get("CloudWatchMetrics", []):
                    self.metrics.extend(metric["Name"] for metric in directive.get("Metrics", []))
            elif line.strip():
                self.output.append(line)


@contextlib.contextmanager
def responder(function: str, environment: Mapping[str, str], endpoints: Endpoints) -> Iterator[Responder]:
    """A cold-started responder (see :class:`Responder`) with its environment set while the block runs.

    ``environment`` is the function's contract variables (``ALERTS_TOPIC_ARN``, ``STATE_TABLE``, ...);
    the powertools variables, the region, fake keys and the endpoint routing are added. The variables
    stay set while the block runs (clients may be created lazily) and are restored afterwards.
    """
    values = {
        **aws_environment(endpoints),
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        **environment,
    }
    with patched_environ(values), _isolated_import_state():
        yield Responder(function=function, handler=_load_handler(function))


# ---------------------------------------------------------------------------------------------
# Event shapes (as AWS documents them)


def lambda_sns_event(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The Lambda event SNS would send for ``envelope`` (an SNS notification as delivered to SQS).

    SQS gets ``SigningCertURL``/``UnsubscribeURL``; Lambda's ``Sns`` record spells them
    ``SigningCertUrl``/``UnsubscribeUrl``. Everything else is carried over unchanged.
    """
    renamed = {"SigningCertURL": "SigningCertUrl", "UnsubscribeURL": "UnsubscribeUrl"}
    record = {renamed.get(key, key): value for key, value in envelope.items()}
    record.setdefault("MessageAttributes", {})
    record.setdefault("Subject", None)
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": record,
            }
        ]
    }


def _json_ready(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def model_package_state_change_detail(sagemaker: Any, model_package_arn: str) -> dict[str, Any]:
    """The ``detail`` of a "SageMaker Model Package State Change" event: the described model package."""
    return _json_ready(sagemaker.describe_model_package(ModelPackageName=model_package_arn))


def pipeline_execution_status_change_event(
    sagemaker: Any, execution_arn: str, *, account: str, previous_status: str = "Executing"
) -> dict[str, Any]:
    """A "SageMaker Model Building Pipeline Execution Status Change" event for ``execution_arn``."""
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    detail = {
        "pipelineArn": described["PipelineArn"],
        "pipelineExecutionArn": execution_arn,
        "pipelineExecutionDisplayName": described.get("PipelineExecutionDisplayName", ""),
        "currentPipelineExecutionStatus": described["PipelineExecutionStatus"],
        "previousPipelineExecutionStatus": previous_status,
        "executionStartTime": _json_ready(described.get("CreationTime")),
        "executionEndTime": _json_ready(described.get("LastModifiedTime")),
        "pipelineExecutionDescription": described.get("PipelineExecutionDescription", ""),
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": _json_ready(dt.datetime.now(dt.UTC)),
        "region": REGION,
        "resources": [described["PipelineArn"], execution_arn],
        "detail": detail,
    }


# ---------------------------------------------------------------------------------------------
# SNS / SQS / EventBridge plumbing on LocalStack


def create_queue(sqs: Any, name: str) -> tuple[str, str]:
    """A queue: (URL, ARN)."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def allow_service_to_send(sqs: Any, queue_url: str, queue_arn: str, service: str, source_arn: str) -> None:
    """A queue policy letting ``service`` (sns/events.amazonaws.com) send messages from ``source_arn`` only."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


def subscribe_queue(sns: Any, sqs: Any, topic_arn: str, queue_name: str) -> tuple[str, str]:
    """Subscribe a new queue to ``topic_arn`` (envelopes, not raw delivery): (queue URL, subscription ARN)."""
    url, arn = create_queue(sqs, queue_name)
    allow_service_to_send(sqs, url, arn, "sns.amazonaws.com", topic_arn)
    subscription = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)
    return url, subscription["SubscriptionArn"]


def alarm_notification_key_policy(account: str) -> dict[str, Any]:
    """A key policy for a topic that CloudWatch alarms publish to (they need the key to encrypt)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountRoot",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",  # a key policy's resource is the key itself
            },
            {
                "Sid": "CloudWatchAlarms",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
        ],
    }


def create_state_table(dynamodb: Any, table: str) -> str:
    """The responders' state table as ``infra/responders/component.py`` declares it: key ``pk``, TTL on ``expires_at``."""
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return table


def create_drift_alarm(cloudwatch: Any, *, name: str, model: str, endpoint: str, topic_arn: str, ok_too: bool) -> str:
    """A feature-drift alarm on Model Monitor's metric (as ``infra/alarms.py`` defines it) acting on ``topic_arn``."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=f"Feature drift of {model} (Model Monitor data-quality)",
        Namespace="aws/sagemaker/Endpoints/data-metrics",
        MetricName="feature_baseline_drift_sessions",
        Dimensions=[
            {"Name": "Endpoint", "Value": endpoint},
            {"Name": "MonitoringSchedule", "Value": f"{endpoint}-data-quality"},
        ],
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=0.2,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic_arn],
        OKActions=[topic_arn] if ok_too else [],
    )
    return name


def create_encrypted_topic(sns: Any, kms: Any, name: str, account: str) -> tuple[str, str]:
    """An SNS topic encrypted with a new customer-managed key CloudWatch may use: (topic ARN, key ARN)."""
    key = kms.create_key(
        Description=f"{name} topic key",
        Policy=json.dumps(alarm_notification_key_policy(account)),
    )["KeyMetadata"]["Arn"]
    topic = sns.create_topic(Name=name, Attributes={"KmsMasterKeyId": key})["TopicArn"]
    return topic, key


def receive_matching(
    sqs: Any,
    queue_url: str,
    match: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 20.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll ``queue_url`` until a message whose JSON body satisfies ``match`` arrives.

    Returns (that body, every body received before it); received messages are deleted. Raises
    ``TimeoutError`` naming what did arrive if nothing matches within ``timeout`` seconds.
    """
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait = max(0, min(1, int(deadline - time.monotonic())))
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        for message in response.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if match(body):
                return body, seen
            seen.append(body)
    raise TimeoutError(f"no matching message on {queue_url} within {timeout:.0f}s; received {len(seen)}: {seen}")


def is_alarm_notification(alarm_name: str, state: str = "ALARM") -> Callable[[dict[str, Any]], bool]:
    """Matches an SNS envelope holding CloudWatch's notification of ``alarm_name`` entering ``state``."""

    def match(body: dict[str, Any]) -> bool:
        if body.get("Type") != "Notification":
            return False
        try:
            message = json.loads(body.get("Message", ""))
        except ValueError:
            return False
        return message.get("AlarmName") == alarm_name and message.get("NewStateValue") == state

    return match


def model_package_event_pattern() -> dict[str, Any]:
    """The EventBridge pattern of the approval responder: approved, completed model packages only."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelApprovalStatus": ["Approved"], "ModelPackageStatus": ["Completed"]},
    }


def route_rule_to_queue(events: Any, sqs: Any, rule: str, pattern: Mapping[str, Any], queue_name: str) -> str:
    """An EventBridge rule on the default bus with ``pattern`` whose target is a new queue; returns its URL."""
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")["RuleArn"]
    url, arn = create_queue(sqs, queue_name)
    allow_service_to_send(sqs, url, arn, "events.amazonaws.com", rule_arn)
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])
    return url


# ---------------------------------------------------------------------------------------------
# A fake GitHub API on loopback


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake GitHub API received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeGitHub:
    """GitHub's ``workflow_dispatch`` endpoint on 127.0.0.1: answers 204 and records every request.

    ``POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`` with a bearer token gets
    204 No Content (what GitHub returns); anything else 404. Use as a context manager.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[RecordedRequest] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def dispatches(self) -> list[RecordedRequest]:
        """The workflow_dispatch requests received so far."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/dispatches")]

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                fake.requests.append(RecordedRequest("POST", self.path, dict(self.headers.items()), body))
                parts = self.path.split("?")[0].strip("/").split("/")
                is_dispatch = len(parts) == 7 and parts[0] == "repos" and parts[3:5] == ["actions", "workflows"]
                authorised = self.headers.get("Authorization", "") in (f"Bearer {fake.token}", f"token {fake.token}")
                if is_dispatch and parts[6] == "dispatches" and authorised:
                    self.send_response(204)
                    self.end_headers()
                    return
                self._json(401 if is_dispatch else 404, {"message": "Bad credentials" if is_dispatch else "Not Found"})

            def do_GET(self) -> None:
                fake.requests.append(RecordedRequest("GET", self.path, dict(self.headers.items()), None))
                self._json(404, {"message": "Not Found"})

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-github", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
