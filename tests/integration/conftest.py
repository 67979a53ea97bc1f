"""The integration tier: LocalStack and moto's server on 127.0.0.1, started once per test session.

``emulators`` creates LocalStack's Python 3.13 environment (``.venv-localstack``) on first use, starts
both servers on free loopback ports, yields their endpoints and always stops both. The tier is skipped,
with the reason, only when no Python 3.13 exists to run LocalStack.

Tests share the two servers, so each test names its resources with the ``unique`` suffix.

Rigs: ``retrain_rig`` (an alarm moved by hand → SNS → the retraining responder) and ``platform_monitoring``
(the platform engine's drift job, run on seeded capture, whose metrics LocalStack's alarms evaluate; built once
per module, because waiting for LocalStack's alarm schedule is the slow part and every scenario shares it).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra import alarms
from infra.alarms import PLATFORM_METRICS_NAMESPACE
from infra.monitoring.reports import REPORTS_PREFIX
from mlops.features import get_spec
from mlops.monitoring.drift import BASELINE_FILE
from mlops.monitoring.drift.baseline import baseline_from_raw
from pipelines.monitoring import MonitoringPipelineSettings
from tools.emulators import EmulatorUnavailableError, Endpoints, ensure_localstack_venv, running_emulators
from tools.loop_harness import (
    EMULATOR_ALARM_PERIOD_SECONDS,
    REGION,
    MonitoringRun,
    alarm_notifications,
    alarm_request,
    client,
    collect_messages,
    create_drift_alarm,
    create_encrypted_topic,
    create_state_table,
    describe_alarm,
    evaluation_timeout,
    in_state,
    is_alarm_notification,
    lambda_sns_event,
    prepare_monitoring_job,
    publish_code_bundle,
    put_alarm,
    put_capture,
    put_model_drift_alarm,
    receive_matching,
    responder,
    run_monitoring_jobs,
    seeded_requests,
    subscribe_queue,
    wait_for_alarm,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/acme-it-pipeline"


@pytest.fixture(scope="session")
def emulators() -> Iterator[Endpoints]:
    """LocalStack and moto's server on loopback for the whole session; both stopped at the end."""
    try:
        ensure_localstack_venv()
    except EmulatorUnavailableError as exc:
        pytest.skip(f"integration tier skipped: {exc}")
    with running_emulators() as endpoints:
        yield endpoints


@pytest.fixture
def localstack(emulators: Endpoints) -> Callable[[str], Any]:
    """``localstack("sns")``: a client of LocalStack."""
    return lambda service: client(emulators.localstack, service)


@pytest.fixture
def moto(emulators: Endpoints) -> Callable[[str], Any]:
    """``moto("sagemaker")``: a client of moto's server."""
    return lambda service: client(emulators.moto, service)


@pytest.fixture
def unique() -> str:
    """A suffix that keeps this test's resources apart from the other tests' on the shared servers."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def training_pipeline_definition() -> str:
    """A pipeline definition with the training pipeline's parameters and a single Fail step.

    The responder reads only the definition's parameters. Building the real definition costs ~15 s cold
    (the SageMaker SDK's imports); the drill and tests/functional/test_pipeline_moto.py use the real one.
    """
    from pipelines.factory import CODE_VERSION, DATA_VERSION, FAIL_STEP, INPUT_DATA_URI

    return json.dumps(
        {
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": [
                {"Name": INPUT_DATA_URI, "Type": "String", "DefaultValue": "s3://acme-it-curated/customer_activity"},
                {"Name": DATA_VERSION, "Type": "String", "DefaultValue": "unversioned"},
                {"Name": CODE_VERSION, "Type": "String", "DefaultValue": "unknown"},
            ],
            "Steps": [{"Name": FAIL_STEP, "Type": "Fail", "Arguments": {"ErrorMessage": "integration test"}}],
        },
        sort_keys=True,
    )


@dataclass
class RetrainRig:
    """A drift alarm whose actions notify a KMS-encrypted topic delivering to a queue, and a pipeline to retrain.

    ``fire(state)`` moves the alarm and returns the SNS envelope SQS received; ``deliver(envelope)``
    cold-starts the retrain_on_alarm responder and invokes it with the Lambda SNS event for it.
    """

    endpoints: Endpoints
    localstack: Callable[[str], Any]
    moto: Callable[[str], Any]
    alarm: str
    pipeline: str
    model: str
    topic_arn: str
    key_arn: str
    queue_url: str
    subscription_arn: str
    alerts_topic_arn: str
    state_table: str
    cooldown_minutes: int = 360
    max_per_day: int = 2
    results: list[Any] = field(default_factory=list)

    def fire(self, state: str = "ALARM", reason: str = "drift 0.41 > 0.2 on feature sessions") -> dict[str, Any]:
        self.localstack("cloudwatch").set_alarm_state(AlarmName=self.alarm, StateValue=state, StateReason=reason)
        envelope, _ = receive_matching(self.localstack("sqs"), self.queue_url, is_alarm_notification(self.alarm, state))
        return envelope

    def environment(self) -> dict[str, str]:
        return {
            "ALERTS_TOPIC_ARN": self.alerts_topic_arn,
            "STATE_TABLE": self.state_table,
            "RETRAIN_TARGETS": json.dumps(
                {
                    self.alarm: {
                        "model": self.model,
                        "pipelineName": self.pipeline,
                        "cooldownMinutes": self.cooldown_minutes,
                        "maxPerDay": self.max_per_day,
                    }
                }
            ),
        }

    def deliver(self, envelope: dict[str, Any]) -> Any:
        with responder("retrain_on_alarm", self.environment(), self.endpoints) as invoke:
            result = invoke(lambda_sns_event(envelope, self.subscription_arn))
        self.results.append(result)
        return result

    def executions(self) -> list[dict[str, Any]]:
        response = self.moto("sagemaker").list_pipeline_executions(PipelineName=self.pipeline)
        return response["PipelineExecutionSummaries"]


@pytest.fixture
def retrain_rig(
    emulators: Endpoints,
    localstack: Callable[[str], Any],
    moto: Callable[[str], Any],
    unique: str,
    training_pipeline_definition: str,
) -> RetrainRig:
    """Everything the alarm → SNS → SQS → retrain_on_alarm → SageMaker path needs, named for this test."""
    sns, sqs, kms = localstack("sns"), localstack("sqs"), localstack("kms")
    account = localstack("sts").get_caller_identity()["Account"]
    topic, key = create_encrypted_topic(sns, kms, f"acme-it-retrain-{unique}", account)
    queue, subscription = subscribe_queue(sns, sqs, topic, f"acme-it-retrain-{unique}")
    alerts, _ = create_encrypted_topic(sns, kms, f"acme-it-alerts-{unique}", account)

    alarm = f"acme-it-churn-{unique}-feature-drift"
    create_drift_alarm(
        localstack("cloudwatch"),
        name=alarm,
        model="customer-churn",
        endpoint=f"acme-it-churn-{unique}",
        topic_arn=topic,
        ok_too=True,
    )
    table = create_state_table(moto("dynamodb"), f"acme-it-responder-state-{unique}")  # moto: see tools/emulators.py

    pipeline = f"acme-it-churn-{unique}"
    moto("sagemaker").create_pipeline(
        PipelineName=pipeline, PipelineDefinition=training_pipeline_definition, RoleArn=ROLE_ARN
    )
    return RetrainRig(
        endpoints=emulators,
        localstack=localstack,
        moto=moto,
        alarm=alarm,
        pipeline=pipeline,
        model=f"churn-{unique}",
        topic_arn=topic,
        key_arn=key,
        queue_url=queue,
        subscription_arn=subscription,
        alerts_topic_arn=alerts,
        state_table=table,
    )


# --- the platform monitoring engine ----------------------------------------------------------------------------

SPEC_NAME = "customer-churn"
MONITOR_PERIOD_SECONDS = 3600
"""The alarms' spec period (an hourly monitor); LocalStack gets EMULATOR_ALARM_PERIOD_SECONDS instead."""
SHIFT = {"monthly_spend": 15.0}
"""The drifted scenario's capture: a raw column the spec passes through as the feature of the same name."""
TRAINING_CUSTOMERS, TRAINING_SEED = 500, 1
LIVE_CUSTOMERS = 100  # x 3 days: 300 captured rows per scenario


@dataclass
class MonitoringScenario:
    """One model and endpoint of the platform engine, its monitor's run (``None``: it never ran) and its alarms."""

    name: str
    model: str
    endpoint: str
    run: MonitoringRun | None = None
    feature_alarms: dict[str, str] = field(default_factory=dict)
    """feature → drift alarm name (only for scenarios with capture)"""
    model_drift_alarm: str | None = None
    heartbeat_alarm: str = ""
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    """alarm name → the alarm as DescribeAlarms returned it once LocalStack had evaluated it"""


@dataclass
class PlatformMonitoringRig:
    """Four monitored endpoints, after their monitors ran and LocalStack evaluated their alarms.

    - ``drifted``: an hour of capture with ``monthly_spend`` shifted; drift alarms put before the run;
    - ``steady``: an hour of capture of the training distribution (another seed); drift alarms put before the run;
    - ``idle``: nothing captured; the monitor ran over the empty window;
    - ``silent``: the monitor never ran (no metric at all).

    Drift alarms alert on-call; each model's composite model-drift alarm also notifies the retrain topic (as
    ``infra/monitoring/component.py`` wires them). Heartbeat alarms notify the alerts topic.
    """

    endpoints: Endpoints
    scenarios: dict[str, MonitoringScenario]
    retrain_topic_arn: str
    retrain_subscription_arn: str
    alerts_topic_arn: str
    state_table: str
    pipeline: str
    retrain_messages: list[dict[str, Any]]
    """SNS envelopes the retrain topic's subscriber received (until the drifted composite's ALARM, and a second)"""
    alert_messages: list[dict[str, Any]]
    """SNS envelopes the alerts topic's subscriber received (until every expected heartbeat notification)"""

    def localstack(self, service: str) -> Any:
        return client(self.endpoints.localstack, service)

    def moto(self, service: str) -> Any:
        return client(self.endpoints.moto, service)


def _monitoring_settings(
    scenario: MonitoringScenario, *, bucket: str, code_uri: str, baseline_uri: str
) -> MonitoringPipelineSettings:
    """The monitoring pipeline settings of ``scenario``, as infra/monitoring/platform_monitor.py builds them."""
    return MonitoringPipelineSettings(
        model_name=scenario.model,
        pipeline_name=f"{scenario.endpoint}-monitoring",
        feature_spec=SPEC_NAME,
        endpoint_name=scenario.endpoint,
        region=REGION,
        role_arn=f"arn:aws:iam::123456789012:role/{scenario.endpoint}-monitoring-job",
        kms_key_arn=f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-4000-8000-000000000000",
        code_uri=code_uri,
        baseline_uri=baseline_uri,
        capture_uri=f"s3://{bucket}/{scenario.model}/data-capture",
        reports_uri=f"s3://{bucket}/{REPORTS_PREFIX}",
        window_hours=1,
        metrics_namespace=PLATFORM_METRICS_NAMESPACE,
    )


def _put_drift_alarms(cloudwatch: Any, scenario: MonitoringScenario, *, alerts: str, retrain: str) -> float:
    """The scenario's drift alarms, wired as infra/monitoring/component.py wires them: one per feature of the spec
    (alerts on-call) and the composite model-drift alarm over them (alerts and retrains). Returns how long a
    published datapoint may wait for their evaluation."""
    arns, timeout = [], 0.0
    for feature in get_spec(SPEC_NAME).feature_names:
        request = alarm_request(
            alarms.platform_feature_drift(scenario.model, feature, scenario.endpoint, MONITOR_PERIOD_SECONDS),
            name=f"{scenario.model}-drift-{feature}",
            alarm_actions=[alerts],
            ok_actions=[alerts],
            period=EMULATOR_ALARM_PERIOD_SECONDS,
        )
        arns.append(put_alarm(cloudwatch, request))
        scenario.feature_alarms[feature] = request["AlarmName"]
        timeout = evaluation_timeout(request)
    scenario.model_drift_alarm = f"{scenario.model}-model-drift"
    put_model_drift_alarm(
        cloudwatch,
        name=scenario.model_drift_alarm,
        model=scenario.model,
        feature_alarm_arns=arns,
        alarm_actions=[alerts, retrain],
        ok_actions=[alerts],
    )
    return timeout


def _put_heartbeat_alarm(cloudwatch: Any, scenario: MonitoringScenario, *, alerts: str) -> float:
    """The scenario's "monitor not reporting" alarm (alerts on-call); returns how long its evaluation may take."""
    scenario.heartbeat_alarm = f"{scenario.model}-monitor-not-reporting"
    request = alarm_request(
        alarms.monitor_heartbeat(scenario.model, scenario.endpoint, MONITOR_PERIOD_SECONDS),
        name=scenario.heartbeat_alarm,
        alarm_actions=[alerts],
        ok_actions=[alerts],
        period=EMULATOR_ALARM_PERIOD_SECONDS,
    )
    put_alarm(cloudwatch, request)
    return evaluation_timeout(request)


def _notified(alarm: str | None, state: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether queue bodies hold the notification of ``alarm`` entering ``state``."""
    return lambda bodies: any(
        (m["AlarmName"], m["NewStateValue"]) == (alarm, state) for m in alarm_notifications(bodies)
    )


@pytest.fixture(scope="module")
def platform_monitoring(emulators: Endpoints, training_pipeline_definition: str) -> PlatformMonitoringRig:
    """Seeded capture in the monitoring bucket (moto) → the drift job, run as its pipeline runs it → metrics in
    LocalStack's CloudWatch → alarms put from infra/alarms.py's specs, evaluated by LocalStack on their schedule.

    Drift alarms are put before the runs, as the stack deploys them, and reach their verdict at LocalStack's next
    scheduled evaluation (at most 2 x 10 s later). Heartbeat alarms are put after the runs: LocalStack evaluates
    an alarm when it is put, and a heartbeat put before would already be in ALARM from missing data (treated as
    breaching), so its first evaluation is made to read what the runs published instead (or, for ``silent``,
    that nothing was).
    """
    localstack = functools.partial(client, emulators.localstack)
    moto = functools.partial(client, emulators.moto)
    unique = uuid.uuid4().hex[:8]
    sns, sqs, kms = localstack("sns"), localstack("sqs"), localstack("kms")
    cloudwatch, s3 = localstack("cloudwatch"), moto("s3")
    account = localstack("sts").get_caller_identity()["Account"]
    retrain_topic, _ = create_encrypted_topic(sns, kms, f"acme-it-{unique}-retrain", account)
    retrain_queue, retrain_subscription = subscribe_queue(sns, sqs, retrain_topic, f"acme-it-{unique}-retrain")
    alerts_topic, _ = create_encrypted_topic(sns, kms, f"acme-it-{unique}-alerts", account)
    alerts_queue, _ = subscribe_queue(sns, sqs, alerts_topic, f"acme-it-{unique}-alerts")

    bucket = f"acme-it-{unique}-monitoring"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    code_uri = f"s3://{bucket}/code/{unique}"
    publish_code_bundle(s3, code_uri)
    training = seeded_requests(TRAINING_CUSTOMERS, TRAINING_SEED)
    baseline = baseline_from_raw(get_spec(SPEC_NAME), training, source=f"seeded training rows, seed {TRAINING_SEED}")
    baseline_key = f"baselines/{unique}/{BASELINE_FILE}"
    s3.put_object(Bucket=bucket, Key=baseline_key, Body=json.dumps(baseline).encode())

    scenarios = {
        name: MonitoringScenario(name=name, model=f"churn-{unique}-{name}", endpoint=f"acme-it-{unique}-{name}")
        for name in ("drifted", "steady", "idle", "silent")
    }
    drifted, steady, idle, silent = scenarios.values()
    drift_timeout = max(
        _put_drift_alarms(cloudwatch, s, alerts=alerts_topic, retrain=retrain_topic) for s in (drifted, steady)
    )

    execution_start = dt.datetime.now(dt.UTC)
    window_hour = execution_start.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    settings = {
        s.name: _monitoring_settings(s, bucket=bucket, code_uri=code_uri, baseline_uri=f"s3://{bucket}/{baseline_key}")
        for s in (drifted, steady, idle)
    }
    captures = {
        "drifted": seeded_requests(LIVE_CUSTOMERS, 2, shift=SHIFT),
        "steady": seeded_requests(LIVE_CUSTOMERS, 3),
    }
    for name, rows in captures.items():
        put_capture(s3, settings[name].capture_uri, endpoint=scenarios[name].endpoint, hour=window_hour, rows=rows)
    with tempfile.TemporaryDirectory(prefix="it-monitor-") as workdir:
        jobs = [
            prepare_monitoring_job(job, emulators, execution_start=execution_start, workdir=Path(workdir) / name)
            for name, job in settings.items()
        ]
        # Side by side, as each model's own schedule would start them.
        for name, finished in zip(settings, run_monitoring_jobs(jobs), strict=True):
            assert finished.returncode == 0, f"{name}: the drift job exited {finished.returncode}:\n{finished.output}"
            scenarios[name].run = finished

    heartbeat_timeout = max(_put_heartbeat_alarm(cloudwatch, s, alerts=alerts_topic) for s in (steady, idle, silent))
    # Each alarm is awaited in the state its datapoints call for, computed by an evaluation (the silent
    # heartbeat's has no datapoint to show: its ALARM can only come from missing data).
    awaited = [
        *(
            (s, alarm, in_state("ALARM" if s is drifted and f in SHIFT else "OK", evaluated=True), drift_timeout)
            for s in (drifted, steady)
            for f, alarm in s.feature_alarms.items()
        ),
        (steady, steady.heartbeat_alarm, in_state("OK", evaluated=True), heartbeat_timeout),
        (idle, idle.heartbeat_alarm, in_state("ALARM", evaluated=True), heartbeat_timeout),
        (silent, silent.heartbeat_alarm, in_state("ALARM"), heartbeat_timeout),
    ]
    for scenario, alarm, until, timeout in awaited:
        # An alarm that must be read from datapoints may have been evaluated once before they were readable.
        reset = 2.0 if until is not None and scenario is not silent else None
        scenario.alarms[alarm] = wait_for_alarm(cloudwatch, alarm, until, timeout=2 * timeout, reset_unread_after=reset)
    for scenario in (drifted, steady):
        composite = str(scenario.model_drift_alarm)
        scenario.alarms[composite] = describe_alarm(cloudwatch, composite)

    retrain_messages = collect_messages(sqs, retrain_queue, _notified(drifted.model_drift_alarm, "ALARM"))
    # A second longer: another notification (the steady model's composite, say) would arrive by then.
    deadline = time.monotonic() + 1.0
    retrain_messages += collect_messages(sqs, retrain_queue, lambda _: time.monotonic() > deadline)
    expected = [(idle.heartbeat_alarm, "ALARM"), (silent.heartbeat_alarm, "ALARM"), (steady.heartbeat_alarm, "OK")]
    alert_messages = collect_messages(sqs, alerts_queue, lambda b: all(_notified(a, s)(b) for a, s in expected))

    pipeline = f"acme-it-{unique}-churn"
    moto("sagemaker").create_pipeline(
        PipelineName=pipeline, PipelineDefinition=training_pipeline_definition, RoleArn=ROLE_ARN
    )
    return PlatformMonitoringRig(
        endpoints=emulators,
        scenarios=scenarios,
        retrain_topic_arn=retrain_topic,
        retrain_subscription_arn=retrain_subscription,
        alerts_topic_arn=alerts_topic,
        state_table=create_state_table(moto("dynamodb"), f"acme-it-{unique}-responder-state"),
        pipeline=pipeline,
        retrain_messages=retrain_messages,
        alert_messages=alert_messages,
    )
