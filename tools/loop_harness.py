"""The feedback loop's test harness: AWS emulator clients, in-process responders, events, plumbing, a fake GitHub.

What it is for: running the platform's own code against LocalStack and moto's server on 127.0.0.1
(:mod:`tools.emulators`), with Lambda and GitHub stood in for:

- :func:`client`, :func:`aws_environment`, :func:`patched_environ`: boto3 clients and environment variables
  routed to an emulator, with the fake keys the emulators accept;
- :func:`responder`: a responder in ``lambdas/<function>/app.py`` cold-started in this process, as Lambda would
  run it (its contract environment set, its boto3 clients routed, its powertools metrics captured);
- :func:`lambda_sns_event`, :func:`model_package_state_change_detail`,
  :func:`pipeline_execution_status_change_event`: events in the shapes AWS documents;
- :func:`create_encrypted_topic`, :func:`subscribe_queue`, :func:`create_drift_alarm`, :func:`create_state_table`,
  :func:`route_rule_to_queue`, :func:`receive_matching`, ...: topics, queues, alarms, tables and EventBridge
  rules as the platform declares them, and a way to read what reached a queue;
- :class:`FakeGitHub`: GitHub's ``workflow_dispatch`` endpoint on loopback, recording every request;
- the streaming layer: the table's Kinesis stream as the platform declares it (:func:`create_stream`,
  :func:`activate_encrypted_stream`), rows put on it (:func:`put_rows`) and read back shard by shard as an event
  source mapping reads them (:class:`ShardReader`; the Lambda events come from :mod:`tools.kinesis_events`);
- the inference container: its image's files staged from its Dockerfile (:func:`stage_inference_image`), its
  ``serve`` started as SageMaker starts it (:func:`inference_server`), requests (:func:`http_request`), and its app
  in rows mode in this process (:func:`score_rows_in_process`);
- the platform monitoring engine: seeded data-capture files in the monitoring bucket (:func:`put_capture`), the
  drift job run as its monitoring pipeline's processing step runs it (:func:`run_monitoring_job`), and
  CloudWatch alarms put from ``infra/alarms.py``'s :class:`~infra.alarms.AlarmSpec` (:func:`alarm_request`,
  :func:`put_alarm`, :func:`put_model_drift_alarm`) and watched while LocalStack evaluates them
  (:func:`wait_for_alarm`).

How LocalStack (``localstack-core`` 2026.3.0, ``services/cloudwatch/alarm_scheduler.py``) evaluates a metric
alarm, which the monitoring helpers are designed around: ``PutMetricAlarm`` schedules an evaluation at once and
then every ``EvaluationPeriods x Period`` seconds (a fixed rate from the put). An evaluation reads
``EvaluationPeriods + max(EvaluationPeriods // 3, 2)`` windows of ``Period`` seconds ending at that moment with
``GetMetricData`` (the datapoints ``PutMetricData`` stored, whatever their storage resolution), treats missing
windows as ``TreatMissingData`` says, and calls ``SetAlarmState`` only when the state changes, which fires the
alarm's SNS actions and re-evaluates composite alarms (whose rules LocalStack resolves only as
``ALARM("<alarm ARN>")`` terms joined by ``OR``). Only alarms on one metric with a plain ``Statistic`` are
evaluated (no metric math, no percentiles). Periods of 10, 30 or a multiple of 60 seconds are accepted.

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
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from tools.emulators import Endpoints, stop_process_group
from tools.local_http import BackgroundServer

if TYPE_CHECKING:
    import pandas as pd

    from infra.alarms import AlarmSpec
    from pipelines.monitoring import MonitoringPipelineSettings

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
    not printed: :attr:`metrics` lists the metric names emitted so far, :attr:`output` the other lines
    (the handler's log lines too: its powertools logger writes to the stdout of its cold start, :attr:`logs`).
    """

    function: str
    handler: Callable[[Any, Any], Any]
    metrics: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    logs: io.StringIO = field(default_factory=io.StringIO)
    _logged: int = 0

    def __call__(self, event: Mapping[str, Any]) -> Any:
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                return self.handler(json.loads(json.dumps(event)), FakeLambdaContext(function_name=self.function))
        finally:
            self._collect(captured.getvalue())
            logged = self.logs.getvalue()
            self._collect(logged[self._logged :])
            self._logged = len(logged)

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
        logs = io.StringIO()
        with contextlib.redirect_stdout(logs):  # loggers made at import keep the stdout of their cold start
            handler = _load_handler(function)
        yield Responder(function=function, handler=handler, logs=logs)


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
    """The Model Monitor engine's drift alarm on feature ``sessions`` (:func:`infra.alarms.feature_drift`, threshold
    0.2, its data-quality schedule ``<endpoint>-data-quality``) acting on ``topic_arn``; its hourly period is kept:
    callers move it with ``SetAlarmState`` (Model Monitor does not run here)."""
    from infra.alarms import feature_drift

    spec = feature_drift(model, "sessions", 0.2, endpoint, f"{endpoint}-data-quality", 3600)
    request = alarm_request(spec, name=name, alarm_actions=[topic_arn], ok_actions=[topic_arn] if ok_too else [])
    put_alarm(cloudwatch, request)
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
        self._server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not running")
        return self._server.url

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

        self._server = BackgroundServer(Handler, name="fake-github")
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()


# ---------------------------------------------------------------------------------------------
# The platform monitoring engine: capture, the drift job as its pipeline runs it, alarms from their specs

EMULATOR_ALARM_PERIOD_SECONDS = 10
"""The period the monitoring alarms get on LocalStack, instead of their spec's (the monitor's schedule, an hour).

LocalStack evaluates an alarm every ``EvaluationPeriods x Period`` seconds, so an hourly period would keep a test
waiting for hours; 10 s is the shortest period CloudWatch accepts. (On AWS a period under 60 s needs
high-resolution data, ``StorageResolution=1``; LocalStack evaluates whatever resolution was stored, and the drift
job rightly publishes standard-resolution data for its hourly alarms.)"""
ALARM_EVALUATION_MARGIN_SECONDS = 10.0
"""Slack on top of one evaluation interval when waiting for an alarm (a loaded machine, SNS delivery)."""

# AlarmSpec.metric keys (pulumi-aws MetricAlarm arguments) → PutMetricAlarm parameters. "dimensions" is converted
# from a mapping to CloudWatch's list of Name/Value pairs; any other key (metric_queries: metric math) is refused.
_ALARM_PARAMETERS = {
    "namespace": "Namespace",
    "metric_name": "MetricName",
    "statistic": "Statistic",
    "extended_statistic": "ExtendedStatistic",
    "unit": "Unit",
    "period": "Period",
    "evaluation_periods": "EvaluationPeriods",
    "datapoints_to_alarm": "DatapointsToAlarm",
    "threshold": "Threshold",
    "comparison_operator": "ComparisonOperator",
    "treat_missing_data": "TreatMissingData",
}


def alarm_request(
    spec: AlarmSpec,
    *,
    name: str,
    alarm_actions: list[str] | tuple[str, ...] = (),
    ok_actions: list[str] | tuple[str, ...] = (),
    insufficient_data_actions: list[str] | tuple[str, ...] = (),
    period: int | None = None,
) -> dict[str, Any]:
    """The ``PutMetricAlarm`` request of ``spec`` (an alarm of ``infra/alarms.py``) named ``name``.

    Everything the alarm watches and how it decides (namespace, metric, dimensions, statistic, threshold,
    comparison, evaluation periods, datapoints to alarm, missing data) comes from the spec; ``period`` replaces
    the spec's period only (see :data:`EMULATOR_ALARM_PERIOD_SECONDS`). Raises ``ValueError`` for a spec this
    function cannot express (metric math) and ``TypeError`` for a dimension value that is not a plain string
    (a Pulumi output).
    """
    metric = dict(spec.metric)
    unsupported = sorted(set(metric) - set(_ALARM_PARAMETERS) - {"dimensions"})
    if unsupported:
        raise ValueError(f"alarm {name}: spec keys {unsupported} have no PutMetricAlarm equivalent here")
    dimensions = []
    for key, value in (metric.get("dimensions") or {}).items():
        if not isinstance(value, str):
            raise TypeError(f"alarm {name}: dimension {key} is {value!r}, not a plain string")
        dimensions.append({"Name": key, "Value": value})
    request: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": spec.description,
        "ActionsEnabled": True,
        "AlarmActions": list(alarm_actions),
        "OKActions": list(ok_actions),
        "InsufficientDataActions": list(insufficient_data_actions),
        "Dimensions": dimensions,
    }
    for key, parameter in _ALARM_PARAMETERS.items():
        if metric.get(key) is not None:
            request[parameter] = metric[key]
    if period is not None:
        request["Period"] = period
    return request


def put_alarm(cloudwatch: Any, request: Mapping[str, Any]) -> str:
    """Put the metric alarm ``request`` describes (:func:`alarm_request`); returns its ARN."""
    cloudwatch.put_metric_alarm(**request)
    return describe_alarm(cloudwatch, request["AlarmName"])["AlarmArn"]


def put_model_drift_alarm(
    cloudwatch: Any,
    *,
    name: str,
    model: str,
    feature_alarm_arns: list[str],
    alarm_actions: list[str],
    ok_actions: list[str],
) -> str:
    """The composite "model drift" alarm over the feature alarms, ruled by :func:`infra.alarms.model_drift_rule`.

    The stack builds the rule from the feature alarms' names; it is given their ARNs here, which AWS accepts
    alike, because LocalStack looks a rule's alarms up by ARN only (a name leaves the composite unevaluated).
    Returns the composite's ARN.
    """
    from infra import alarms

    cloudwatch.put_composite_alarm(
        AlarmName=name,
        AlarmDescription=alarms.model_drift_description(model, retraining=True),
        AlarmRule=alarms.model_drift_rule(feature_alarm_arns),
        ActionsEnabled=True,
        AlarmActions=alarm_actions,
        OKActions=ok_actions,
    )
    return describe_alarm(cloudwatch, name)["AlarmArn"]


def describe_alarm(cloudwatch: Any, name: str) -> dict[str, Any]:
    """The metric or composite alarm ``name`` as ``DescribeAlarms`` returns it (``KeyError`` when absent)."""
    response = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    found = [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]
    if not found:
        raise KeyError(f"no alarm named {name}")
    return found[0]


def recent_datapoints(alarm: Mapping[str, Any]) -> list[float]:
    """The datapoints the alarm's last state change was computed from (``StateReasonData.recentDatapoints``;
    empty when it was set by hand or has never changed state)."""
    try:
        data = json.loads(alarm.get("StateReasonData") or "{}")
    except ValueError:
        return []
    return [float(v) for v in data.get("recentDatapoints", [])] if isinstance(data, dict) else []


def evaluation_timeout(request: Mapping[str, Any]) -> float:
    """How long a datapoint published now may wait for the alarm of ``request`` to read it on LocalStack: one
    evaluation interval (``EvaluationPeriods x Period``) plus :data:`ALARM_EVALUATION_MARGIN_SECONDS`."""
    return request["EvaluationPeriods"] * request["Period"] + ALARM_EVALUATION_MARGIN_SECONDS


def wait_for_alarm(
    cloudwatch: Any,
    name: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    interval: float = 0.25,
    reset_unread_after: float | None = None,
) -> dict[str, Any]:
    """Poll ``DescribeAlarms`` until alarm ``name`` satisfies ``until``; return it as described then.

    ``reset_unread_after``: if the alarm still does not match after that many seconds and its last evaluation read
    no datapoint, set it back to INSUFFICIENT_DATA once. LocalStack records a state's reason only when the state
    changes: an alarm whose first evaluation ran before a just-published datapoint was readable (a race seen on a
    loaded machine) stays in the same state with the old reason forever. The reset forces no outcome: the next
    scheduled evaluation decides, from the datapoints.

    Raises ``TimeoutError`` naming the last state, reason and datapoints seen if ``timeout`` seconds pass first.
    """
    started = time.monotonic()
    deadline = started + timeout
    reset = False
    while True:
        alarm = describe_alarm(cloudwatch, name)
        if until(alarm):
            return alarm
        if (
            reset_unread_after is not None
            and not reset
            and time.monotonic() - started > reset_unread_after
            and not recent_datapoints(alarm)
        ):
            cloudwatch.set_alarm_state(
                AlarmName=name, StateValue="INSUFFICIENT_DATA", StateReason="harness: re-evaluate from the datapoints"
            )
            reset = True
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"alarm {name} still {alarm['StateValue']} after {timeout:.0f}s "
                f"(reason {alarm.get('StateReason')!r}, datapoints {recent_datapoints(alarm)})"
            )
        time.sleep(interval)


def in_state(*states: str, evaluated: bool = False) -> Callable[[dict[str, Any]], bool]:
    """Matches an alarm in one of ``states``; with ``evaluated``, only once its state was computed from datapoints
    (LocalStack's initial INSUFFICIENT_DATA, or a state set by hand, has none)."""

    def match(alarm: dict[str, Any]) -> bool:
        return alarm["StateValue"] in states and (not evaluated or bool(recent_datapoints(alarm)))

    return match


def metric_values(
    cloudwatch: Any, namespace: str, metric: str, dimensions: Mapping[str, str], *, minutes: int = 5
) -> list[float]:
    """The highest value of one metric per 10-second bucket over the last ``minutes``, newest first.

    Give every dimension of the metric: LocalStack matches the dimensions given as a subset."""
    now = dt.datetime.now(dt.UTC)
    query = {
        "Id": "m",
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": EMULATOR_ALARM_PERIOD_SECONDS,
            "Stat": "Maximum",
        },
    }
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[query], StartTime=now - dt.timedelta(minutes=minutes), EndTime=now + dt.timedelta(minutes=1)
    )["MetricDataResults"][0]
    return [float(v) for v in result["Values"]]


def collect_messages(
    sqs: Any, queue_url: str, until: Callable[[list[dict[str, Any]]], bool], *, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Every message body received on ``queue_url`` until the bodies so far satisfy ``until`` (deleted as read).

    Raises ``TimeoutError`` with what did arrive if ``timeout`` seconds pass first.
    """
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(bodies):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{queue_url}: the {len(bodies)} message(s) received within {timeout:.0f}s: {bodies}")
        wait = max(0, min(1, int(deadline - time.monotonic())))
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            bodies.append(json.loads(message["Body"]))
    return bodies


def alarm_notifications(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CloudWatch alarm notifications (the SNS envelopes' ``Message``, parsed) among queue ``bodies``."""
    found = []
    for body in bodies:
        if body.get("Type") != "Notification":
            continue
        try:
            message = json.loads(body.get("Message", ""))
        except ValueError:
            continue
        if isinstance(message, dict) and "AlarmName" in message and "NewStateValue" in message:
            found.append(message)
    return found


def seeded_requests(customers: int, seed: int, *, shift: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Raw ``customer_activity`` rows a client sends the endpoint (``customers`` x 3 days, seeded), with
    ``shift`` added to numeric raw columns (``{"monthly_spend": 15.0}``: what drift looks like)."""
    from pipelines.local_run import synthetic_customer_activity

    rows = synthetic_customer_activity(customers=customers, days=3, seed=seed)
    for column, delta in (shift or {}).items():
        rows[column] = rows[column] + delta
    return rows


def put_capture(
    s3: Any,
    capture_uri: str,
    *,
    endpoint: str,
    hour: dt.datetime,
    rows: pd.DataFrame,
    variant: str = "AllTraffic",
    batch: int = 5,
) -> str:
    """Write ``rows`` as SageMaker data capture of ``endpoint``: one JSON line per request of ``batch`` rows
    (:func:`tools.synthetic_capture.capture_lines`: the request as the client sent it, the predictions, the
    event metadata), at ``<capture_uri><endpoint>/<variant>/yyyy/mm/dd/hh/`` for ``hour``. Returns the object's URI."""
    from tools.synthetic_capture import capture_lines

    bucket, _, prefix = capture_uri.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    key = f"{prefix}{endpoint}/{variant}/{hour:%Y/%m/%d/%H}/{hour:%Y%m%dT%H}-{uuid.uuid4().hex[:8]}.jsonl"
    stamp = hour.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = capture_lines(rows, batch=batch, prefix=f"{endpoint}-{hour:%H}", inference_time=stamp)
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return f"s3://{bucket}/{key}"


def publish_code_bundle(s3: Any, code_uri: str) -> int:
    """Publish the step code bundle (:func:`pipelines.bundle.code_bundle`) under ``code_uri``, as the training
    layer does; returns the number of files."""
    from pipelines.bundle import code_bundle

    bucket, _, prefix = code_uri.removeprefix("s3://").partition("/")
    bundle = code_bundle()
    for key, data in sorted(bundle.items()):
        s3.put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{key}", Body=data)
    return len(bundle)


@dataclass(frozen=True)
class MonitoringRun:
    """One run of the drift job: its command line, exit status and output, and the report it wrote to S3."""

    arguments: list[str]
    returncode: int
    output: str
    report_uri: str | None
    report: dict[str, Any] | None


@dataclass(frozen=True)
class MonitoringJob:
    """The monitoring pipeline's processing step, staged under ``root`` and ready to run (:func:`run_monitoring_jobs`)."""

    settings: MonitoringPipelineSettings
    endpoints: Endpoints
    root: Path
    command: list[str]
    arguments: list[str]
    environment: dict[str, str]
    reports_before: frozenset[str]


def prepare_monitoring_job(
    settings: MonitoringPipelineSettings, endpoints: Endpoints, *, execution_start: dt.datetime, workdir: Path
) -> MonitoringJob:
    """Stage the monitoring pipeline's one processing step here, as SageMaker would run it.

    The step's ``CreateProcessingJob`` request is :func:`pipelines.monitoring.processing_arguments` of
    ``settings``: its processing inputs (``monitor.py`` and the ``mlops`` package of the published code bundle)
    are downloaded from S3 under ``workdir`` (standing for ``/opt/ml/processing``); its container arguments are
    taken as they are, with the ``Execution.StartDateTime`` execution variable resolved to ``execution_start``;
    its entrypoint will run in a clean interpreter (``sys.executable`` for ``python3``) with the step's
    environment plus the emulators' routing. The job itself reads capture and baseline from S3 (moto), writes
    its report there and publishes its metrics to CloudWatch (LocalStack).
    """
    from pipelines.monitoring import PROCESSING_ROOT, processing_arguments

    request = processing_arguments(settings)
    root = workdir.resolve()

    def local(value: str) -> str:
        return str(root) + value[len(PROCESSING_ROOT) :] if value.startswith(PROCESSING_ROOT) else value

    s3 = client(endpoints.moto, "s3")
    for item in request["ProcessingInputs"]:
        source = item["S3Input"]
        bucket, _, prefix = source["S3Uri"].removeprefix("s3://").partition("/")
        keys = [uri.removeprefix(f"s3://{bucket}/") for uri in _keys(s3, source["S3Uri"])]
        if not keys:
            raise FileNotFoundError(f"processing input {item['InputName']}: nothing at {source['S3Uri']}")
        for key in keys:
            relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            target = Path(local(source["LocalPath"])) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    specification = request["AppSpecification"]
    variables = {"Execution.StartDateTime": execution_start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    arguments = [variables[a["Get"]] if isinstance(a, dict) else str(a) for a in specification["ContainerArguments"]]
    interpreter, script = specification["ContainerEntrypoint"]
    if interpreter != "python3":
        raise ValueError(f"unexpected entrypoint {specification['ContainerEntrypoint']}")
    # Nothing of this process's environment that could change what the job imports or where it connects.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV", "MLOPS_"))}
    environment.update(aws_environment(endpoints))
    environment.update({k: local(v) for k, v in request["Environment"].items()})
    return MonitoringJob(
        settings=settings,
        endpoints=endpoints,
        root=root,
        command=[sys.executable, local(script), *arguments],
        arguments=arguments,
        environment=environment,
        reports_before=frozenset(_keys(s3, _report_partition(settings))),
    )


def run_monitoring_jobs(jobs: list[MonitoringJob], *, timeout: float = 300.0) -> list[MonitoringRun]:
    """Run staged jobs side by side (one process each); their runs in the same order, each with the report it
    wrote (the one new object under its model's report partition), if exactly one."""
    processes = [
        subprocess.Popen(  # noqa: S603 (each step's own entrypoint and arguments)
            job.command,
            cwd=job.root,
            env=job.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for job in jobs
    ]
    deadline = time.monotonic() + timeout
    runs = []
    for job, process in zip(jobs, processes, strict=True):
        try:
            output, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        s3 = client(job.endpoints.moto, "s3")
        written = sorted(set(_keys(s3, _report_partition(job.settings))) - job.reports_before)
        report = None
        if len(written) == 1:
            bucket, _, key = written[0].removeprefix("s3://").partition("/")
            report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        runs.append(
            MonitoringRun(
                arguments=job.arguments,
                returncode=process.returncode,
                output=output,
                report_uri=written[0] if len(written) == 1 else None,
                report=report,
            )
        )
    return runs


def run_monitoring_job(
    settings: MonitoringPipelineSettings, endpoints: Endpoints, *, execution_start: dt.datetime, workdir: Path
) -> MonitoringRun:
    """:func:`prepare_monitoring_job`, then run it (:func:`run_monitoring_jobs`)."""
    job = prepare_monitoring_job(settings, endpoints, execution_start=execution_start, workdir=workdir)
    return run_monitoring_jobs([job])[0]


def _report_partition(settings: MonitoringPipelineSettings) -> str:
    """Where the job writes its model's reports: ``<reports_uri>model=<model>/`` (its ``--out`` and model name)."""
    return f"{settings.reports_uri}model={settings.model_name}/"


def _keys(s3: Any, uri: str) -> list[str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])]


# ---------------------------------------------------------------------------------------------
# The streaming layer: Kinesis on LocalStack


def create_stream(kinesis: Any, name: str, *, capacity_mode: str = "ON_DEMAND", shard_count: int | None = None) -> None:
    """``CreateStream`` as ``infra/streaming/component.py`` declares the stream (capacity mode, shards); it returns
    at once, the stream becomes ACTIVE later (LocalStack's Kinesis takes ~7 s on first use): see
    :func:`activate_encrypted_stream`."""
    request: dict[str, Any] = {"StreamName": name, "StreamModeDetails": {"StreamMode": capacity_mode}}
    if capacity_mode == "PROVISIONED":
        request["ShardCount"] = shard_count or 1
    kinesis.create_stream(**request)


def activate_encrypted_stream(
    kinesis: Any, name: str, key_arn: str, *, retention_hours: int = 24, timeout: float = 60.0
) -> dict[str, Any]:
    """Wait until stream ``name`` is ACTIVE, give it the declared retention and server-side encryption with
    ``key_arn`` (``encryption_type=KMS``: the stack's ``StartStreamEncryption``), wait again; its summary."""
    waiter = kinesis.get_waiter("stream_exists")
    config = {"Delay": 0.5, "MaxAttempts": int(timeout / 0.5)}
    waiter.wait(StreamName=name, WaiterConfig=config)
    if retention_hours > 24:  # 24 h is every new stream's retention
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=retention_hours)
        waiter.wait(StreamName=name, WaiterConfig=config)
    kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key_arn)
    waiter.wait(StreamName=name, WaiterConfig=config)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def put_rows(
    kinesis: Any, stream: str, rows: list[Mapping[str, Any]], *, partition_key: str = "customer_id"
) -> list[dict[str, str]]:
    """``PutRecord`` each row as JSON, one call at a time in order, keyed by its ``partition_key`` column (a producer's
    choice that keeps each entity's records in one shard, in order); each record's ``ShardId`` and ``SequenceNumber``."""
    placed = []
    for row in rows:
        data = json.dumps(row).encode()
        response = kinesis.put_record(StreamName=stream, Data=data, PartitionKey=str(row[partition_key]))
        placed.append({"ShardId": response["ShardId"], "SequenceNumber": response["SequenceNumber"]})
    return placed


@dataclass
class ShardReader:
    """Reads every shard of a stream as a Kinesis event source mapping does: one iterator per shard, from
    ``TRIM_HORIZON`` (the platform's starting position), each ``GetRecords`` continuing where the last one ended."""

    kinesis: Any
    stream: str
    iterators: dict[str, str]

    @classmethod
    def open(cls, kinesis: Any, stream: str, *, position: str = "TRIM_HORIZON") -> ShardReader:
        shards = kinesis.list_shards(StreamName=stream)["Shards"]
        iterators = {
            shard["ShardId"]: kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType=position
            )["ShardIterator"]
            for shard in shards
        }
        return cls(kinesis, stream, iterators)

    def read(self, expected: int, *, timeout: float = 20.0) -> dict[str, list[dict[str, Any]]]:
        """Poll every shard until ``expected`` new records were read in all; the records by shard, in sequence order
        (shards without new records left out). Raises ``TimeoutError`` with the count read if time runs out."""
        found: dict[str, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + timeout
        while sum(map(len, found.values())) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.stream}: read {sum(map(len, found.values()))} of {expected} records in {timeout:.0f}s"
                )
            got = 0
            for shard, iterator in self.iterators.items():
                response = self.kinesis.get_records(ShardIterator=iterator, Limit=1000)
                self.iterators[shard] = response["NextShardIterator"]
                if response["Records"]:
                    found.setdefault(shard, []).extend(response["Records"])
                    got += len(response["Records"])
            if not got:
                time.sleep(0.2)
        return found


# ---------------------------------------------------------------------------------------------
# The inference container, run here

INFERENCE_DIR = REPO_ROOT / "containers" / "inference"
SERVER_START_TIMEOUT_SECONDS = 60.0


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        keyword, _, arguments = text.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def stage_inference_image(root: Path) -> dict[str, str]:
    """Lay out under ``root`` (standing for the container's ``/``) the files the inference image's ``COPY`` lines
    take from the repository (``containers/inference/Dockerfile``; not the pip requirements, whose packages come
    from this environment); returns the image's ``ENV`` with its paths moved under ``root``.

    What runs is then the image's own code at the image's paths: ``<root>/usr/local/bin/serve`` with
    ``PYTHONPATH=<root>/opt/program``, importing only what the image copies.
    """
    import shlex
    import shutil

    environment: dict[str, str] = {}
    for keyword, arguments in _dockerfile_instructions(INFERENCE_DIR / "Dockerfile"):
        if keyword == "ENV":
            for item in shlex.split(arguments):
                name, _, value = item.partition("=")
                environment[name] = value
        if keyword != "COPY":
            continue
        words = [w for w in shlex.split(arguments) if not w.startswith("--")]
        chmod = next((w.split("=", 1)[1] for w in shlex.split(arguments) if w.startswith("--chmod=")), None)
        *sources, destination = words
        # The requirements file, for pip (this environment has the packages).
        if destination.startswith("/tmp/"):  # noqa: S108 (a path inside the image)
            continue
        for source in sources:
            origin = REPO_ROOT / source
            if origin.is_dir():
                target = root / destination.lstrip("/")
                shutil.copytree(origin, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
                continue
            target = root / destination.lstrip("/")
            if destination.endswith("/"):
                target = target / origin.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
            if chmod:
                target.chmod(int(chmod, 8))
    if "PYTHONPATH" in environment:
        environment["PYTHONPATH"] = os.pathsep.join(
            str(root / p.lstrip("/")) for p in environment["PYTHONPATH"].split(":") if p
        )
    return environment


@dataclass
class InferenceServer:
    """A running inference server: its URL, its process (group) and its log."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def inference_server(
    root: Path, model_dir: Path, environment: Mapping[str, str], *, timeout: float = SERVER_START_TIMEOUT_SECONDS
) -> Iterator[InferenceServer]:
    """The inference image staged under ``root`` (:func:`stage_inference_image`), started as SageMaker starts it:
    ``serve``, with the port in ``SAGEMAKER_BIND_TO_PORT`` and the model in ``SM_MODEL_DIR`` (``model_dir``),
    plus ``environment`` (the endpoint's container environment). Bound to 127.0.0.1 (SageMaker's container binds
    every interface), one worker. Yields once ``GET /ping`` answers 200; stopped with SIGTERM to its process
    group (SIGKILL after 15 s). Raises ``RuntimeError`` with the log if it exits or does not answer in time."""
    image_env = stage_inference_image(root)
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env = {
        **base,
        **image_env,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(model_dir),
        "INFERENCE_HOST": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        **environment,
    }
    program = root / "opt" / "program"
    program.mkdir(parents=True, exist_ok=True)
    log_path = root / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (the image's own entrypoint)
            [sys.executable, str(root / "usr" / "local" / "bin" / "serve")],
            cwd=program,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops its workers too
        )
    server = InferenceServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the inference server exited with {process.returncode}:\n{server.log()[-2000:]}")
            with contextlib.suppress(OSError):
                if http_request(server.url + "/ping", timeout=1)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the inference server did not answer /ping in {timeout:.0f}s:\n{server.log()[-2000:]}"
                )
            time.sleep(0.1)
        yield server
    finally:
        stop_process_group(process, timeout=15)


_NOT_INHERITED = ("AWS_", "PYTHON", "VIRTUAL_ENV", "MLOPS_", "INFERENCE_", "SAGEMAKER_", "SM_")
"""What a server started here does not take from this process's environment: it gets its own."""


def http_request(
    url: str, document: Any | None = None, *, method: str | None = None, timeout: float = 10.0
) -> tuple[int, Any]:
    """One HTTP request (``document`` sent as JSON, POST); (status, the answer's JSON, or its text)."""
    import urllib.error
    import urllib.request

    data = None if document is None else json.dumps(document).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def score_rows_in_process(model_dir: Path, records: list[Mapping[str, Any]]) -> list[float]:
    """The inference server's app in **rows** request mode, in this process, with the model of ``model_dir``:
    ``records`` (raw columns) POSTed to ``/invocations`` through ASGI; the predictions it answers."""
    import asyncio

    from containers.inference.inference_server.app import InferenceApp
    from containers.inference.inference_server.model import load_model
    from containers.inference.inference_server.settings import Settings

    app = InferenceApp(load_model(model_dir), Settings(model_dir=str(model_dir), coalesce=False))
    body = json.dumps({"instances": list(records)}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/invocations",
        "raw_path": b"/invocations",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if status != 200:
        raise RuntimeError(f"rows mode answered {status}: {answer.decode('utf-8', 'replace')}")
    return [float(p) for p in json.loads(answer)["predictions"]]
