"""A drift alarm reaches the retraining responder through a KMS-encrypted SNS topic, and retrains once.

LocalStack runs CloudWatch (whose alarm actions fire), KMS, SNS, SQS and DynamoDB; moto's server runs
SageMaker. The responder is called with the SNS envelope exactly as SQS received it from the topic.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import RetrainRig

pytestmark = pytest.mark.integration

# Fields of CloudWatch's alarm notification (AWS's documented "Message" JSON) and of its Trigger.
NOTIFICATION_FIELDS = {
    "AlarmName",
    "AlarmDescription",
    "AWSAccountId",
    "NewStateValue",
    "NewStateReason",
    "StateChangeTime",
    "Region",
    "AlarmArn",
    "OldStateValue",
    "Trigger",
}
TRIGGER_FIELDS = {
    "MetricName",
    "Namespace",
    "Statistic",
    "Dimensions",
    "Period",
    "EvaluationPeriods",
    "ComparisonOperator",
    "Threshold",
}
ENVELOPE_FIELDS = {"Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature"}


def test_topic_is_encrypted_with_the_customer_managed_key(retrain_rig: RetrainRig) -> None:
    attributes = retrain_rig.localstack("sns").get_topic_attributes(TopicArn=retrain_rig.topic_arn)["Attributes"]
    assert attributes["KmsMasterKeyId"] == retrain_rig.key_arn


def test_alarm_notification_reaches_the_queue_through_sns(retrain_rig: RetrainRig) -> None:
    envelope = retrain_rig.fire("ALARM")
    assert set(envelope) >= ENVELOPE_FIELDS
    assert (envelope["Type"], envelope["TopicArn"]) == ("Notification", retrain_rig.topic_arn)


def test_alarm_notification_has_the_documented_shape(retrain_rig: RetrainRig) -> None:
    message = json.loads(retrain_rig.fire("ALARM")["Message"])
    assert set(message) >= NOTIFICATION_FIELDS
    assert set(message["Trigger"]) >= TRIGGER_FIELDS
    assert (message["AlarmName"], message["NewStateValue"]) == (retrain_rig.alarm, "ALARM")
    assert message["AlarmArn"].endswith(f":alarm:{retrain_rig.alarm}")
    assert message["Trigger"]["MetricName"] == "feature_baseline_drift_sessions"


def test_delivered_alarm_starts_exactly_one_execution(retrain_rig: RetrainRig) -> None:
    retrain_rig.deliver(retrain_rig.fire("ALARM"))
    assert len(retrain_rig.executions()) == 1


def test_execution_records_the_alarm_as_its_data_version(retrain_rig: RetrainRig) -> None:
    retrain_rig.deliver(retrain_rig.fire("ALARM"))
    (execution,) = retrain_rig.executions()
    parameters = retrain_rig.moto("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in parameters}["DataVersion"].startswith(f"alarm-{retrain_rig.alarm}-")


def test_second_delivery_of_the_same_notification_starts_none(retrain_rig: RetrainRig) -> None:
    envelope = retrain_rig.fire("ALARM")
    retrain_rig.deliver(envelope)
    retrain_rig.deliver(envelope)  # SNS delivers at least once; a new cold start gets it again
    assert len(retrain_rig.executions()) == 1


def test_second_alarm_within_the_cooldown_starts_none(retrain_rig: RetrainRig) -> None:
    retrain_rig.deliver(retrain_rig.fire("ALARM"))
    retrain_rig.fire("OK", reason="drift back under the threshold")
    retrain_rig.deliver(retrain_rig.fire("ALARM"))
    assert len(retrain_rig.executions()) == 1


def test_alarm_returning_to_ok_starts_nothing(retrain_rig: RetrainRig) -> None:
    retrain_rig.fire("ALARM")
    retrain_rig.deliver(retrain_rig.fire("OK", reason="drift back under the threshold"))
    assert retrain_rig.executions() == []
