"""The integration tier: LocalStack and moto's server on 127.0.0.1, started once per test session.

``emulators`` creates LocalStack's Python 3.13 environment (``.venv-localstack``) on first use, starts
both servers on free loopback ports, yields their endpoints and always stops both. The tier is skipped,
with the reason, only when no Python 3.13 exists to run LocalStack.

Tests share the two servers, so each test names its resources with the ``unique`` suffix.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tools.emulators import EmulatorUnavailableError, Endpoints, ensure_localstack_venv, running_emulators
from tools.loop_harness import (
    client,
    create_drift_alarm,
    create_encrypted_topic,
    create_state_table,
    is_alarm_notification,
    lambda_sns_event,
    receive_matching,
    responder,
    subscribe_queue,
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
