"""The responders against moto (DynamoDB, SNS→SQS, SageMaker, Secrets Manager), Stubber and a local HTTP server."""

from __future__ import annotations

import copy
import http.server
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.local import import_app
from tests.support.functional_moto import Clients, empty_backends, module_mock
from tests.support.types import FUNCTION
from tools.local_http import BackgroundServer
from verify.mock_engine import OfflinePlan

retrain = import_app("retrain_on_alarm")
notify = import_app("notify_pipeline")
dispatch = import_app("dispatch_deployment")

from responder_common.errors import (  # noqa: E402
    DeliveryInProgressError,
    DispatchError,
    InvalidSecretError,
    MalformedEventError,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"
EVENTS = Path(__file__).resolve().parent / "events"
ALARM = "acme-dev-customer-churn-drift"
PIPELINE = "acme-dev-customer-churn"
TABLE = "acme-dev-responder-state"
DEFINITION = json.dumps(
    {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "DataVersion", "Type": "String", "DefaultValue": "unversioned"},
            {"Name": "CodeVersion", "Type": "String", "DefaultValue": "unknown"},
        ],
        "Steps": [],
    }
)
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def sns_alarm(at: datetime, *, alarm: str = ALARM, state: str = "ALARM") -> dict[str, Any]:
    event = load("cloudwatch_alarm_sns")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message.update(
        AlarmName=alarm, NewStateValue=state, StateChangeTime=at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    )
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def eventbridge_alarm(at: datetime) -> dict[str, Any]:
    event = load("cloudwatch_alarm_state_change")
    event["detail"]["state"]["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return event


class Clock:
    """An injectable clock the test moves forward."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Serialized:
    """A client proxy making each call atomic, as the real service is (moto's backends take no locks)."""

    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


class AlwaysExecuting:
    """A SageMaker client whose pipeline has an execution still Executing (moto's finish at once)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def list_pipeline_executions(self, **_: Any) -> dict[str, Any]:
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/running0001"
        return {"PipelineExecutionSummaries": [{"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Executing"}]}


class Aws(SimpleNamespace):
    sagemaker: Any
    dynamodb: Any
    sns: Any
    sqs: Any
    secrets: Any  # Secrets Manager
    topic_arn: str
    queue_url: str

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification published to the alerts topic so far (drains the subscribed queue)."""
        received = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def executions(self) -> list[dict[str, Any]]:
        return self.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]


def responder_world(definition: str, *, dynamodb: Any, sns: Any, sqs: Any, sagemaker: Any, secrets: Any) -> Aws:
    """The retrain responder's world in moto: its TTL'd state table, the alerts topic with a reader queue
    subscribed, and the model's pipeline (``definition``: the parameters the test's pipeline declares)."""
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    topic_arn = sns.create_topic(Name="acme-dev-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    sagemaker.create_pipeline(
        PipelineName=PIPELINE, PipelineDefinition=definition, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline"
    )
    return Aws(
        sagemaker=sagemaker,
        dynamodb=dynamodb,
        sns=sns,
        sqs=sqs,
        secrets=secrets,
        topic_arn=topic_arn,
        queue_url=queue_url,
    )


@contextmanager
def moto_responder_aws(definition: str = DEFINITION) -> Iterator[Aws]:
    """:func:`responder_world` in a mock of its own, with clients of its own (test_responder_new_data_moto.py)."""
    with mock_aws():
        yield responder_world(
            definition,
            dynamodb=boto3.client("dynamodb", region_name=REGION),
            sns=boto3.client("sns", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
            sagemaker=boto3.client("sagemaker", region_name=REGION),
            secrets=boto3.client("secretsmanager", region_name=REGION),
        )


@pytest.fixture(scope="module")
def moto_clients() -> Iterator[Clients]:
    """One moto mock and one set of test-side clients for the module (tests/support/functional_moto.py: ~60 ms a
    test); :func:`aws` empties the backends before each test, so every test still starts from nothing."""
    with module_mock(REGION) as clients:
        yield clients


@pytest.fixture
def aws(moto_clients: Clients) -> Aws:
    empty_backends()  # whatever the test before left behind
    clients = moto_clients
    return responder_world(
        DEFINITION,
        dynamodb=clients.dynamodb,
        sns=clients.sns,
        sqs=clients.sqs,
        sagemaker=clients.sagemaker,
        secrets=clients.secretsmanager,
    )


def retrain_settings(*, cooldown: int = 360, per_day: int = 2) -> Any:
    target = retrain.RetrainTarget(
        model="customer-churn", pipeline_name=PIPELINE, cooldown_minutes=cooldown, max_per_day=per_day
    )
    return retrain.Settings(alerts_topic_arn="", state_table=TABLE, targets={ALARM: target})


def retrain_runtime(aws: Aws, *, clock: Clock, sagemaker: Any = None, **limits: Any) -> Any:
    settings = retrain_settings(**limits)
    settings = retrain.Settings(alerts_topic_arn=aws.topic_arn, state_table=TABLE, targets=settings.targets)
    return retrain.build_runtime(
        settings,
        sagemaker=sagemaker or aws.sagemaker,
        dynamodb=Serialized(aws.dynamodb),
        sns=aws.sns,
        clock=clock,
    )


def outcome(result: dict[str, Any]) -> str:
    (only,) = result["outcomes"]
    return only["outcome"]


# ------------------------------------------------------------------------------------------ retrain_on_alarm
def test_storm_of_duplicate_and_concurrent_alarms_starts_exactly_one_execution(aws: Aws) -> None:
    """Deliveries that find the transition in progress elsewhere are deferred: they raise, Lambda retries them,
    and on retry they replay the first delivery's outcome. Nothing else may fail."""
    clock = Clock(T0)
    deliveries = [sns_alarm(T0) if i % 2 else eventbridge_alarm(T0) for i in range(50)]
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    deferred: list[dict[str, Any]] = []
    barrier = threading.Barrier(len(deliveries))

    def deliver(event: dict[str, Any]) -> None:
        rt = retrain_runtime(aws, clock=clock)  # concurrent deliveries land in different containers
        barrier.wait()
        try:
            results.extend(retrain.process(event, rt)["outcomes"])
        except DeliveryInProgressError:
            deferred.append(event)
        except BaseException as error:  # collected: the assertion below shows them
            errors.append(error)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the threads as much as possible
    try:
        threads = [threading.Thread(target=deliver, args=(event,)) for event in deliveries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)

    assert errors == []
    for event in deferred:  # Lambda's retries of the deferred deliveries, after the first one finished
        results.extend(retrain.process(event, retrain_runtime(aws, clock=clock))["outcomes"])
    assert len(results) == len(deliveries)
    assert len(aws.executions()) == 1
    first_hand = [r for r in results if r["outcome"] == "RetrainStarted"]
    assert len(first_hand) == 1
    assert all(r["outcome"] == "DuplicateDelivery" for r in results if r not in first_hand)
    assert len(aws.notifications()) == 1


def test_a_redelivered_transition_is_reported_as_a_duplicate_not_a_second_start(aws: Aws) -> None:
    rt = retrain_runtime(aws, clock=Clock(T0))
    assert outcome(retrain.process(sns_alarm(T0), rt)) == "RetrainStarted"
    (replay,) = retrain.process(sns_alarm(T0), rt)["outcomes"]
    assert replay["outcome"] == "DuplicateDelivery"
    assert replay["replayedOutcome"] == "RetrainStarted"
    assert len(aws.executions()) == 1


def test_started_execution_records_why_in_its_parameters(aws: Aws) -> None:
    retrain.process(sns_alarm(T0), retrain_runtime(aws, clock=Clock(T0)))
    (execution,) = aws.executions()
    parameters = aws.sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert parameters == [{"Name": "DataVersion", "Value": f"alarm-{ALARM}-20240501T120000000Z"}]
    assert execution["PipelineExecutionDisplayName"].startswith("alarm-20240501T120000000Z-")


def test_second_alarm_within_the_cooldown_starts_nothing(aws: Aws) -> None:
    clock = Clock(T0)
    rt = retrain_runtime(aws, clock=clock)
    assert outcome(retrain.process(sns_alarm(T0), rt)) == "RetrainStarted"
    clock.now = T0 + timedelta(hours=1)
    assert outcome(retrain.process(sns_alarm(clock.now), rt)) == "SkippedCooldown"
    assert len(aws.executions()) == 1


def test_alarm_after_the_cooldown_starts_again(aws: Aws) -> None:
    clock = Clock(T0)
    rt = retrain_runtime(aws, clock=clock)
    retrain.process(sns_alarm(T0), rt)
    clock.now = T0 + timedelta(minutes=361)
    assert outcome(retrain.process(sns_alarm(clock.now), rt)) == "RetrainStarted"
    assert len(aws.executions()) == 2


def test_daily_cap_holds_until_the_next_utc_day(aws: Aws) -> None:
    clock = Clock(T0)
    rt = retrain_runtime(aws, clock=clock, cooldown=0, per_day=2)
    decided = []
    for minutes in (0, 10, 20):
        clock.now = T0 + timedelta(minutes=minutes)
        decided.append(outcome(retrain.process(sns_alarm(clock.now), rt)))
    clock.now = T0 + timedelta(days=1)
    decided.append(outcome(retrain.process(sns_alarm(clock.now), rt)))
    assert decided == ["RetrainStarted", "RetrainStarted", "SkippedDailyCap", "RetrainStarted"]
    assert len(aws.executions()) == 3


def test_an_executing_execution_is_not_doubled(aws: Aws) -> None:
    rt = retrain_runtime(aws, clock=Clock(T0), sagemaker=AlwaysExecuting(aws.sagemaker))
    assert outcome(retrain.process(sns_alarm(T0), rt)) == "SkippedAlreadyRunning"
    assert aws.executions() == []
    (notification,) = aws.notifications()
    assert "SkippedAlreadyRunning" in notification["Message"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (sns_alarm(T0, state="OK"), "IgnoredNotInAlarm"),
        (sns_alarm(T0, state="INSUFFICIENT_DATA"), "IgnoredNotInAlarm"),
        (sns_alarm(T0, alarm="acme-dev-some-other-alarm"), "IgnoredUnknownAlarm"),
    ],
)
def test_other_states_and_unknown_alarms_start_nothing(aws: Aws, event: dict[str, Any], expected: str) -> None:
    assert outcome(retrain.process(event, retrain_runtime(aws, clock=Clock(T0)))) == expected
    assert aws.executions() == []
    assert aws.notifications() == []


def foreign_sns_alarm(*, topic_arn: str = "", alarm_arn: str = "") -> dict[str, Any]:
    event = sns_alarm(T0)
    if topic_arn:
        event["Records"][0]["Sns"]["TopicArn"] = topic_arn
    if alarm_arn:
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        message["AlarmArn"] = alarm_arn
        event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def foreign_eventbridge_alarm(**fields: str) -> dict[str, Any]:
    return {**eventbridge_alarm(T0), **fields}


@pytest.mark.parametrize(
    "event",
    [
        foreign_sns_alarm(topic_arn="arn:aws:sns:eu-west-1:210987654321:acme-dev-retrain"),
        foreign_sns_alarm(topic_arn="arn:aws:sns:us-east-1:123456789012:acme-dev-retrain"),
        foreign_sns_alarm(alarm_arn=f"arn:aws:cloudwatch:eu-west-1:210987654321:alarm:{ALARM}"),
        foreign_sns_alarm(alarm_arn=f"arn:aws:cloudwatch:us-west-2:123456789012:alarm:{ALARM}"),
        foreign_eventbridge_alarm(account="210987654321"),
        foreign_eventbridge_alarm(region="us-east-1"),
    ],
    ids=["sns-topic-account", "sns-topic-region", "alarm-account", "alarm-region", "eb-account", "eb-region"],
)
def test_alarms_from_another_account_or_region_are_ignored_and_counted(aws: Aws, event: dict[str, Any]) -> None:
    result = retrain.process(event, retrain_runtime(aws, clock=Clock(T0)), Context())
    assert outcome(result) == "IgnoredForeignOrigin"
    assert aws.executions() == []
    assert aws.notifications() == []


# ------------------------------------------------------------------------------------------ handlers (dead-letter path)
class Context:
    function_name = "acme-dev-retrain-on-alarm"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:acme-dev-retrain-on-alarm"
    memory_limit_in_mb = 256
    aws_request_id = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    log_group_name = "/aws/lambda/acme-dev-retrain-on-alarm"
    log_stream_name = "2024/05/01/[$LATEST]abc"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


@pytest.fixture
def retrain_env(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    target = {"model": "customer-churn", "pipelineName": PIPELINE, "cooldownMinutes": 360, "maxPerDay": 2}
    monkeypatch.setenv("ALERTS_TOPIC_ARN", aws.topic_arn)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("RETRAIN_TARGETS", json.dumps({ALARM: target}))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    retrain.runtime.cache_clear()
    yield
    retrain.runtime.cache_clear()


def malformed_events() -> list[dict[str, Any]]:
    bad_json = sns_alarm(T0)
    bad_json["Records"][0]["Sns"]["Message"] = "{oops"
    missing = eventbridge_alarm(T0)
    del missing["detail"]["alarmName"]
    wrong_type = eventbridge_alarm(T0)
    wrong_type["detail-type"] = "EC2 Instance State-change Notification"
    return [bad_json, missing, wrong_type]


@pytest.mark.parametrize("event", malformed_events(), ids=["bad-json", "missing-field", "wrong-detail-type"])
def test_malformed_event_is_logged_with_context_and_reraised(
    retrain_env: None, event: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(MalformedEventError) as raised:
        retrain.handler(copy.deepcopy(event), Context())
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == "retrain_on_alarm failed"
    assert record.__dict__["error_type"] == "MalformedEventError"
    assert record.__dict__["event"] == event
    assert record.exc_info is not None and record.exc_info[1] is raised.value


def test_handler_starts_the_pipeline_from_the_environment(retrain_env: None, aws: Aws) -> None:
    result = retrain.handler(sns_alarm(T0), Context())
    assert outcome(result) == "RetrainStarted"
    assert len(aws.executions()) == 1


# ------------------------------------------------------------------------------------------ notify_pipeline
def pipeline_event(status: str) -> dict[str, Any]:
    event = load("pipeline_execution_status_change")
    event["detail"]["currentPipelineExecutionStatus"] = status
    return event


def notify_runtime(aws: Aws, sagemaker: Any) -> Any:
    settings = notify.Settings(alerts_topic_arn=aws.topic_arn, pipelines={PIPELINE: "customer-churn"})
    return notify.build_runtime(settings, sagemaker=sagemaker, sns=aws.sns)


def test_failed_execution_is_notified_with_its_failure_reason(aws: Aws) -> None:
    event = pipeline_event("Failed")
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_pipeline_execution",
            {"FailureReason": "Step Train failed: ClientError: AlgorithmError: out of memory"},
            {"PipelineExecutionArn": event["detail"]["pipelineExecutionArn"]},
        )
        notify.process(event, notify_runtime(aws, client))
    (notification,) = aws.notifications()
    assert notification["Subject"] == "[mlops] pipeline Failed: customer-churn"
    assert "Failure reason: Step Train failed: ClientError: AlgorithmError: out of memory" in notification["Message"]
    assert event["detail"]["pipelineExecutionArn"] in notification["Message"]


def test_succeeded_execution_is_notified_without_describing_it(aws: Aws) -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client):  # no stubbed response: a DescribePipelineExecution call would fail the test
        result = notify.process(pipeline_event("Succeeded"), notify_runtime(aws, client))
    assert result["outcome"] == "PipelineNotified"
    assert [n["Subject"] for n in aws.notifications()] == ["[mlops] pipeline Succeeded: customer-churn"]


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException", "ThrottlingException"])
def test_failed_execution_is_notified_even_when_its_details_cannot_be_read(aws: Aws, code: str) -> None:
    """Issue 15: a describe failure used to lose the "pipeline Failed" notification altogether."""
    event = pipeline_event("Failed")
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error("describe_pipeline_execution", service_error_code=code, http_status_code=400)
        result = notify.process(event, notify_runtime(aws, client))
    assert result["outcome"] == "PipelineNotified"
    (notification,) = aws.notifications()
    assert notification["Subject"] == "[mlops] pipeline Failed: customer-churn"
    assert event["detail"]["pipelineExecutionArn"] in notification["Message"]
    assert f"Failure reason: could not be read (DescribePipelineExecution failed: {code})" in notification["Message"]


@pytest.mark.parametrize("field", [{"account": "210987654321"}, {"region": "us-east-1"}], ids=["account", "region"])
def test_pipeline_events_from_another_account_or_region_are_ignored(aws: Aws, field: dict[str, str]) -> None:
    event = {**pipeline_event("Failed"), **field}
    result = notify.process(event, notify_runtime(aws, aws.sagemaker), Context())
    assert result["outcome"] == "IgnoredForeignOrigin"
    assert aws.notifications() == []


def test_executing_status_publishes_nothing(aws: Aws) -> None:
    result = notify.process(pipeline_event("Executing"), notify_runtime(aws, aws.sagemaker))
    assert result["outcome"] == "IgnoredNotFinal"
    assert aws.notifications() == []


# ------------------------------------------------------------------------------------------ dispatch_deployment
class FakeGitHub:
    """A local HTTP server on 127.0.0.1 recording workflow_dispatch requests and answering ``status``."""

    def __init__(self, status: int = 204, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self._answer()

            def do_GET(self) -> None:
                outer.requests.append(
                    {"method": "GET", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                )
                self._answer()

            def _answer(self) -> None:
                self.send_response(outer.status)
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = BackgroundServer(Handler, name="fake-github")
        self.url = self.server.url

    def __enter__(self) -> FakeGitHub:
        self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop()


TOKEN = "ghp_example_token_never_logged"


def dispatch_runtime(aws: Aws, api_url: str, kind: str = "github-workflow", secret: str = TOKEN) -> Any:
    secrets = aws.secrets
    try:
        secrets.create_secret(Name="acme/github-token", SecretString=secret)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId="acme/github-token", SecretString=secret)
    hook = {"kind": kind, "repository": "acme/platform", "workflow": "deploy.yml", "ref": "main", "stack": "dev"}
    hook["tokenSecretName"] = "acme/github-token"
    settings = dispatch.Settings.from_env(
        {
            "ALERTS_TOPIC_ARN": aws.topic_arn,
            "STATE_TABLE": TABLE,
            "DEPLOY_HOOK": json.dumps(hook),
            "MODEL_PACKAGE_GROUPS": json.dumps({PIPELINE: "customer-churn"}),
            "GITHUB_API_URL": api_url,
        }
    )
    # GitHub's 5xx are retried with backoff: the sleeps are skipped here (tests/functional/test_responder_faults.py
    # checks them).
    return dispatch.build_runtime(
        settings, sns=aws.sns, secrets=secrets, dynamodb=aws.dynamodb, sleep=lambda _seconds: None
    )


def package_event(status: str = "Approved") -> dict[str, Any]:
    event = load("model_package_state_change")
    event["detail"]["ModelApprovalStatus"] = status
    return event


def test_approval_dispatches_the_workflow_with_the_documented_request(aws: Aws) -> None:
    with FakeGitHub() as github:
        result = dispatch.process(package_event(), dispatch_runtime(aws, github.url))
    (request,) = github.requests
    assert request["path"] == "/repos/acme/platform/actions/workflows/deploy.yml/dispatches"
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["accept"] == "application/vnd.github+json"
    assert request["headers"]["x-github-api-version"] == "2022-11-28"
    assert request["body"] == {
        "ref": "main",
        "inputs": {
            "model": "customer-churn",
            "model_package_arn": package_event()["detail"]["ModelPackageArn"],
            "stack": "dev",
        },
    }
    assert result["httpStatus"] == 204
    (notification,) = aws.notifications()
    assert notification["Subject"] == "[mlops] model approved: customer-churn version 3"
    assert "workflow deploy.yml of acme/platform on main for stack dev." in notification["Message"]


def test_approval_in_a_stack_dispatches_that_stack_only(aws: Aws, stack_plans: dict[str, OfflinePlan]) -> None:
    """The function's environment as the program builds it (prod, a github-workflow hook) names its own stack,
    so deploy.yml updates prod only instead of its default (every stack, dev -> staging -> prod)."""
    (function,) = [
        f
        for f in stack_plans["prod"].of_type(FUNCTION)
        if f.inputs["environment"]["variables"]["POWERTOOLS_SERVICE_NAME"] == "dispatch_deployment"
    ]
    variables = dict(function.inputs["environment"]["variables"])
    secrets = aws.secrets
    secrets.create_secret(Name=json.loads(variables["DEPLOY_HOOK"])["tokenSecretName"], SecretString=TOKEN)
    with FakeGitHub() as github:
        variables.update(
            ALERTS_TOPIC_ARN=aws.topic_arn,
            STATE_TABLE=TABLE,
            MODEL_PACKAGE_GROUPS=json.dumps({PIPELINE: "customer-churn"}),
            GITHUB_API_URL=github.url,
        )
        runtime = dispatch.build_runtime(
            dispatch.Settings.from_env(variables), sns=aws.sns, secrets=secrets, dynamodb=aws.dynamodb
        )
        assert dispatch.process(package_event(), runtime)["outcome"] == "DeploymentDispatched"
    (request,) = github.requests
    assert request["body"]["inputs"] == {
        "model": "customer-churn",
        "model_package_arn": package_event()["detail"]["ModelPackageArn"],
        "stack": "prod",
    }


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_the_token_never_follows_it(aws: Aws, status: int) -> None:
    """Issue 15 item 4: urlopen re-issued a redirected POST as a GET, Authorization header included, to whatever
    host the Location named, and reported the answer as a dispatch."""
    with (
        FakeGitHub() as elsewhere,
        FakeGitHub(status, {"Location": f"{elsewhere.url}/collect"}) as github,
        pytest.raises(DispatchError) as raised,
    ):
        dispatch.process(package_event(), dispatch_runtime(aws, github.url))
    assert elsewhere.requests == []
    assert raised.value.status == status
    assert "redirect refused" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert aws.notifications() == []


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_answer_is_a_dispatch(aws: Aws, status: int) -> None:
    with FakeGitHub(status) as github:
        result = dispatch.process(package_event(), dispatch_runtime(aws, github.url))
    assert (result["outcome"], result["httpStatus"]) == ("DeploymentDispatched", status)


def test_a_token_pasted_with_a_comment_line_is_refused_before_any_request(aws: Aws) -> None:
    """Issue 15 item 1: the newline made http.client raise ValueError with the whole header (token) in it."""
    with FakeGitHub() as github, pytest.raises(InvalidSecretError) as raised:
        dispatch.process(package_event(), dispatch_runtime(aws, github.url, secret=f"{TOKEN}\n# rotated in May"))
    assert github.requests == []
    assert TOKEN not in str(raised.value) and "rotated" not in str(raised.value)
    assert str(raised.value) == (
        "secret acme/github-token holds a token with whitespace or control characters inside it (a second line "
        "or a comment?): store the token alone; the value is not shown"
    )


def test_the_same_approval_delivered_twice_dispatches_once(aws: Aws) -> None:
    """Issue 15 item 3: EventBridge redelivers an event with the same id; one approval, one `pulumi up`."""
    with FakeGitHub() as github:
        first = dispatch.process(package_event(), dispatch_runtime(aws, github.url))
        again = dispatch.process(package_event(), dispatch_runtime(aws, github.url))  # a new container
    assert first["outcome"] == "DeploymentDispatched"
    assert (again["outcome"], again["replayedOutcome"]) == ("DuplicateDelivery", "DeploymentDispatched")
    assert len(github.requests) == 1
    assert len(aws.notifications()) == 1


@pytest.mark.parametrize("field", [{"account": "210987654321"}, {"region": "us-east-1"}], ids=["account", "region"])
def test_approvals_from_another_account_or_region_dispatch_nothing(aws: Aws, field: dict[str, str]) -> None:
    with FakeGitHub() as github:
        result = dispatch.process({**package_event(), **field}, dispatch_runtime(aws, github.url), Context())
    assert result["outcome"] == "IgnoredForeignOrigin"
    assert github.requests == []
    assert aws.notifications() == []


@pytest.mark.parametrize("status", [403, 422, 500])
def test_error_answer_from_github_raises_without_the_token(aws: Aws, status: int) -> None:
    with FakeGitHub(status) as github, pytest.raises(DispatchError) as raised:
        dispatch.process(package_event(), dispatch_runtime(aws, github.url))
    assert raised.value.status == status
    assert TOKEN not in str(raised.value)
    assert aws.notifications() == []


def test_kind_none_notifies_and_calls_nothing(aws: Aws) -> None:
    with FakeGitHub() as github:
        result = dispatch.process(package_event(), dispatch_runtime(aws, github.url, kind="none"))
    assert github.requests == []
    assert result["outcome"] == "ApprovalNotified"
    assert len(aws.notifications()) == 1


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_statuses_other_than_approved_dispatch_nothing(aws: Aws, status: str) -> None:
    with FakeGitHub() as github:
        result = dispatch.process(package_event(status), dispatch_runtime(aws, github.url))
    assert github.requests == []
    assert result["outcome"] == "IgnoredNotApproved"
    assert aws.notifications() == []


def test_the_token_is_read_once_within_its_cache_age(aws: Aws) -> None:
    calls: list[str] = []
    rt = dispatch_runtime(aws, "http://127.0.0.1:9")
    dispatcher = rt.approvals.dispatcher
    assert dispatcher is not None
    secrets = dispatcher.tokens.secrets

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs["SecretId"])
        return secrets.get_secret_value(**kwargs)

    dispatcher.tokens.secrets = SimpleNamespace(get_secret_value=counting)
    assert dispatcher.tokens.token() == dispatcher.tokens.token() == TOKEN
    assert calls == ["acme/github-token"]
