"""New curated data retrains its model, once per load: the real path as far as the emulators go.

``mlops.ingestion.write_curated_dataset`` writes loads into a LocalStack bucket whose notification configuration
sends its events to EventBridge (as ``infra/datalake.py`` configures the curated bucket; LocalStack emits S3's
"Object Created" events itself: no event is forged here). The rule is the program's own pattern
(``infra.responders.object_created_pattern``) on LocalStack's default bus; its target is a KMS-encrypted queue with
a dead-letter queue. What an event source mapping does is played here: gather the queue's messages until a quiet
moment (the batching window), hand them to the cold-started ``retrain_on_alarm`` handler as Lambda's SQS batch,
delete what it did not report failed. Glue (the ingestion's catalogue), DynamoDB (the ledger) and SageMaker (the
pipeline) are moto's server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import pandas as pd
import pytest

from infra.monitoring.settings import RetrainingSettings
from infra.responders import NewDataSource, new_data_targets, object_created_pattern
from infra.training.settings import NewDataRetrainingSettings
from mlops.ingestion import IngestionReport, write_curated_dataset
from tools.customer_activity import curated_customer_activity, customer_activity_table
from tools.emulators import Endpoints
from tools.loop_harness import (
    REGION,
    allow_service_to_send,
    aws_environment,
    create_encrypted_topic,
    create_queue,
    create_state_table,
    patched_environ,
    receive_matching,
    responder,
    subscribe_queue,
)

pytestmark = pytest.mark.integration

TABLE = customer_activity_table()
QUIET_SECONDS = 2.0  # the played batching window: no new message for this long closes the batch
# Fields of S3's "Object Created" EventBridge event (AWS: "EventBridge event message structure").
ENVELOPE_FIELDS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
DETAIL_FIELDS = {"version", "bucket", "object", "request-id", "requester", "reason"}


def curated_load(days: list[str], customers: int = 40) -> pd.DataFrame:
    frame = curated_customer_activity(customers=customers)
    return pd.DataFrame(frame[frame["dt"].isin(days)]).reset_index(drop=True)


@dataclass
class NewDataRig:
    """A curated bucket on LocalStack sending its events to EventBridge, the model's rule → queue, and the
    responder's state, pipeline and alerts."""

    endpoints: Endpoints
    localstack: Callable[[str], Any]
    moto: Callable[[str], Any]
    bucket: str
    database: str
    source: NewDataSource
    rule_arn: str
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    alerts_topic_arn: str
    alerts_url: str
    state_table: str
    pipeline: str
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def load(self, batch_id: str, days: list[str]) -> IngestionReport:
        """``mlops.ingestion`` commits a load: S3 on LocalStack (it notifies EventBridge), Glue on moto."""
        routing = {**aws_environment(self.endpoints), "AWS_ENDPOINT_URL_S3": self.endpoints.localstack}
        with patched_environ(routing):
            import boto3

            return write_curated_dataset(
                curated_load(days), TABLE, bucket=self.bucket, database=self.database,
                boto3_session=boto3.Session(region_name=REGION), batch_id=batch_id,
            )  # fmt: skip

    def gather(self, *, expect: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The queue's messages until ``expect`` arrived and then none for QUIET_SECONDS (the batching window)."""
        sqs = self.localstack("sqs")
        messages: list[dict[str, Any]] = []
        deadline, last = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            batch = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
            messages.extend(batch)
            if batch:
                last = time.monotonic()
            elif len(messages) >= expect and time.monotonic() - last >= QUIET_SECONDS:
                return messages
        raise TimeoutError(f"expected {expect} message(s) on the new-data queue, got {len(messages)}")

    def lambda_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Lambda's SQS event for ``messages`` (what the event source mapping hands the function)."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def environment(self) -> dict[str, str]:
        return {
            "ALERTS_TOPIC_ARN": self.alerts_topic_arn,
            "STATE_TABLE": self.state_table,
            "RETRAIN_TARGETS": "{}",
            "NEW_DATA_TARGETS": json.dumps(new_data_targets([self.source])),
        }

    def deliver(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Invoke the cold-started handler with the batch; delete what it did not report failed (as Lambda does)."""
        with responder("retrain_on_alarm", self.environment(), self.endpoints) as invoke:
            result = invoke(self.lambda_event(messages))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.localstack("sqs").delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.delivered.append(result)
        return result

    def executions(self) -> list[dict[str, Any]]:
        return self.moto("sagemaker").list_pipeline_executions(PipelineName=self.pipeline)["PipelineExecutionSummaries"]

    def parameters(self, execution: dict[str, Any]) -> dict[str, str]:
        listed = self.moto("sagemaker").list_pipeline_parameters_for_execution(
            PipelineExecutionArn=execution["PipelineExecutionArn"]
        )["PipelineParameters"]
        return {p["Name"]: p["Value"] for p in listed}

    def notification(self, subject_contains: str) -> dict[str, Any]:
        envelope, _ = receive_matching(
            self.localstack("sqs"), self.alerts_url, lambda body: subject_contains in str(body.get("Subject"))
        )
        return envelope


def build_rig(
    emulators: Endpoints,
    localstack: Callable[[str], Any],
    moto: Callable[[str], Any],
    unique: str,
    definition: str,
    *,
    match: str,
) -> NewDataRig:
    s3, events, sqs, kms = localstack("s3"), localstack("events"), localstack("sqs"), localstack("kms")
    account = localstack("sts").get_caller_identity()["Account"]
    bucket, database = f"acme-it-curated-{unique}", f"acme_it_curated_{unique}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    moto("glue").create_database(DatabaseInput={"Name": database})

    pipeline = f"acme-it-churn-{unique}"
    moto("sagemaker").create_pipeline(
        PipelineName=pipeline, PipelineDefinition=definition, RoleArn=f"arn:aws:iam::{account}:role/it-pipeline"
    )
    source = NewDataSource(
        model=f"churn-{unique}",
        settings=NewDataRetrainingSettings(enabled=True, match=match),  # type: ignore[arg-type]
        retraining=RetrainingSettings(cooldown_minutes=360, max_per_day=2),
        pipeline_name=pipeline,
        pipeline_arn=f"arn:aws:sagemaker:{REGION}:{account}:pipeline/{pipeline}",
        bucket_name=bucket,
        table_prefix=TABLE.location_prefix,
    )
    key = kms.create_key(Description=f"new-data {unique}")["KeyMetadata"]["Arn"]
    dead_url, dead_arn = create_queue(sqs, f"acme-it-new-data-dlq-{unique}")
    queue_url = sqs.create_queue(
        QueueName=f"acme-it-new-data-{unique}",
        Attributes={
            "KmsMasterKeyId": key,
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"acme-it-new-data-{unique}"
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps(object_created_pattern(source)), State="ENABLED")[
        "RuleArn"
    ]
    allow_service_to_send(sqs, queue_url, queue_arn, "events.amazonaws.com", rule_arn)
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn, "DeadLetterConfig": {"Arn": dead_arn}}])

    alerts, _ = create_encrypted_topic(localstack("sns"), kms, f"acme-it-alerts-{unique}", account)
    alerts_url, _ = subscribe_queue(localstack("sns"), sqs, alerts, f"acme-it-alerts-{unique}")
    table = create_state_table(moto("dynamodb"), f"acme-it-responder-state-{unique}")
    return NewDataRig(
        endpoints=emulators,
        localstack=localstack,
        moto=moto,
        bucket=bucket,
        database=database,
        source=source,
        rule_arn=rule_arn,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_url=dead_url,
        alerts_topic_arn=alerts,
        alerts_url=alerts_url,
        state_table=table,
        pipeline=pipeline,
    )


@pytest.fixture
def commits_rig(
    emulators: Endpoints,
    localstack: Callable[[str], Any],
    moto: Callable[[str], Any],
    unique: str,
    training_pipeline_definition: str,
) -> NewDataRig:
    """The model retrains on ingestion's commit markers (``retrainOnNewData.match: commits``, the default)."""
    return build_rig(emulators, localstack, moto, unique, training_pipeline_definition, match="commits")


@pytest.fixture
def objects_rig(
    emulators: Endpoints,
    localstack: Callable[[str], Any],
    moto: Callable[[str], Any],
    unique: str,
    training_pipeline_definition: str,
) -> NewDataRig:
    """The model retrains on every object of its table (``retrainOnNewData.match: objects``)."""
    return build_rig(emulators, localstack, moto, unique, training_pipeline_definition, match="objects")


def test_s3_itself_sends_the_documented_object_created_event(commits_rig: NewDataRig) -> None:
    report = commits_rig.load("load-1", ["2024-05-01"])
    (message,) = commits_rig.gather()
    event = json.loads(message["Body"])
    assert set(event) >= ENVELOPE_FIELDS and set(event["detail"]) >= DETAIL_FIELDS
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    assert event["detail"]["bucket"]["name"] == commits_rig.bucket
    assert f"s3://{commits_rig.bucket}/{event['detail']['object']['key']}" == report.commit_marker
    assert {"key", "size", "etag", "sequencer"} <= set(event["detail"]["object"])


def test_a_load_of_many_files_starts_exactly_one_execution_with_the_table_and_its_batch_id(
    commits_rig: NewDataRig,
) -> None:
    report = commits_rig.load("load-2024-05-02", ["2024-05-01", "2024-05-02", "2024-05-03"])
    assert len(report.files) >= 3  # one file per partition at least; only the marker reaches the queue
    messages = commits_rig.gather()
    assert len(messages) == 1
    result = commits_rig.deliver(messages)
    assert result == {"batchItemFailures": []}
    (execution,) = commits_rig.executions()
    assert commits_rig.parameters(execution) == {
        "InputDataUri": f"s3://{commits_rig.bucket}/{TABLE.location_prefix}",
        "DataVersion": "load-2024-05-02",
    }


def test_every_object_of_a_load_reaches_the_queue_but_starts_one_execution(objects_rig: NewDataRig) -> None:
    report = objects_rig.load("load-7", ["2024-05-01", "2024-05-02", "2024-05-03"])
    messages = objects_rig.gather(expect=len(report.files))
    # S3 URL-encodes keys in its events ('dt=' arrives as 'dt%3D'); the handler decodes them.
    keys = [unquote_plus(json.loads(m["Body"])["detail"]["object"]["key"]) for m in messages]
    assert sorted(keys) == sorted(f.removeprefix(f"s3://{objects_rig.bucket}/") for f in report.files)
    objects_rig.deliver(messages)
    (execution,) = objects_rig.executions()
    assert objects_rig.parameters(execution)["DataVersion"] == "load-7"


def test_the_same_events_delivered_again_start_nothing_more(commits_rig: NewDataRig) -> None:
    commits_rig.load("load-1", ["2024-05-01"])
    messages = commits_rig.gather()
    commits_rig.deliver(messages)
    commits_rig.deliver(messages)  # SQS delivers at least once: a new cold start gets the batch again
    assert len(commits_rig.executions()) == 1


def test_a_second_load_within_the_cooldown_is_refused_and_humans_are_told(commits_rig: NewDataRig) -> None:
    commits_rig.load("load-1", ["2024-05-01"])
    commits_rig.deliver(commits_rig.gather())
    commits_rig.notification("retraining started")
    commits_rig.load("load-2", ["2024-05-02"])
    commits_rig.deliver(commits_rig.gather())
    assert len(commits_rig.executions()) == 1
    envelope = commits_rig.notification("SkippedCooldown")
    assert "load load-2" in envelope["Message"] and "less than 360 minutes ago" in envelope["Message"]


def test_nothing_reaches_the_dead_letter_queue(commits_rig: NewDataRig) -> None:
    commits_rig.load("load-1", ["2024-05-01"])
    commits_rig.deliver(commits_rig.gather())
    left = commits_rig.localstack("sqs").receive_message(QueueUrl=commits_rig.dead_letter_url, WaitTimeSeconds=1)
    assert left.get("Messages", []) == []
