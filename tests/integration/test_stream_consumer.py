"""End to end on LocalStack: raw rows put into a KMS-encrypted Kinesis stream reach the online store, rejected rows
reach the failure queue (KMS-encrypted SQS), and a batch item failure is retried from where Lambda would retry it.

LocalStack cannot run the function (Lambda execution needs Docker), so the test reads the stream back with
``GetShardIterator``/``GetRecords``, builds the Lambda Kinesis event from those records as the event source mapping
does (:mod:`tests.support.kinesis_events`) and calls the handler. LocalStack has no SageMaker Feature Store either:
the online store is :class:`tests.support.featurestore_fake.FeatureStoreFake`.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlops.features import get_spec
from mlops.features.spec import feature_record
from mlops.featurestore.records import to_put_record_payload, validate_record
from tests.support.featurestore_fake import FeatureStoreFake
from tests.support.kinesis_events import event_from_get_records
from tools.loop_harness import REGION

pytestmark = pytest.mark.integration

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
SPEC = get_spec("customer-churn")


def load_app() -> ModuleType:
    if str(LAMBDAS_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDAS_DIR))
    return importlib.import_module("lambdas.update_online_features.app")


app = load_app()


class Context:
    function_name = "acme-it-update-online-features"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:000000000000:function:acme-it-update-online-features"
    memory_limit_in_mb = 512
    aws_request_id = "0f6b2d8e-5a11-4c1b-9d6e-6d1f2f7c0a01"
    log_group_name = "/aws/lambda/acme-it-update-online-features"
    log_stream_name = "2024/05/01/[$LATEST]it"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def activity(customer: str, day: int, sessions: int) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "event_time": f"2024-05-{day:02d}T08:30:00Z",
        "sessions": sessions,
        "minutes_active": 12.5 * sessions,
        "support_tickets": day % 2,
        "plan": "standard",
        "monthly_spend": 19.0 + day,
        "churned": 0,
    }


@dataclass
class StreamRig:
    """A KMS-encrypted stream with one shard, a KMS-encrypted failure queue, the online store and the function."""

    kinesis: Any
    sqs: Any
    stream_name: str
    stream_arn: str
    shard_id: str
    queue_url: str
    store: FeatureStoreFake
    group: str

    def put(self, payloads: list[dict[str, Any] | bytes]) -> list[str]:
        """Put each payload (a row as JSON, or raw bytes) in order; their sequence numbers."""
        numbers = []
        for payload in payloads:  # one PutRecord each, chained, so the shard keeps this order
            data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
            key = payload["customer_id"] if isinstance(payload, dict) else "raw"
            request: dict[str, Any] = {"StreamName": self.stream_name, "Data": data, "PartitionKey": key}
            if numbers:
                request["SequenceNumberForOrdering"] = numbers[-1]
            numbers.append(self.kinesis.put_record(**request)["SequenceNumber"])
        return numbers

    def read(self, count: int, *, at: str | None = None) -> list[dict[str, Any]]:
        """``count`` records read back from the shard (from its start, or at a sequence number)."""
        position = (
            {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": at}
            if at
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = self.kinesis.get_shard_iterator(StreamName=self.stream_name, ShardId=self.shard_id, **position)[
            "ShardIterator"
        ]
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while len(records) < count and time.monotonic() < deadline:
            response = self.kinesis.get_records(ShardIterator=iterator, Limit=100)
            records.extend(response["Records"])
            iterator = response["NextShardIterator"]
            if not response["Records"]:
                time.sleep(0.2)
        assert len(records) >= count, f"read {len(records)} of {count} records back from {self.stream_name}"
        return records[:count]

    def event(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return event_from_get_records(records, stream_arn=self.stream_arn, shard_id=self.shard_id, region=REGION)

    def runtime(self) -> Any:
        """The function's cold start, from its environment contract, with the fake online store for the client."""
        settings = app.Settings.from_env(
            {
                "FEATURE_TARGETS": json.dumps(
                    [{"model": "churn", "featureGroupName": self.group, "featureSpec": "customer-churn"}]
                ),
                "FAILURE_QUEUE_URL": self.queue_url,
                "PUT_MAX_ATTEMPTS": "2",
            }
        )
        return app.build_runtime(settings, featurestore=self.store, sqs=self.sqs)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The handler, invoked as Lambda invokes it (the fixture routes its runtime to :meth:`runtime`)."""
        try:
            return app.handler(json.loads(json.dumps(event)), Context())
        finally:
            app.metrics.clear_metrics()

    def rejected(self, expected: int) -> list[dict[str, Any]]:
        """Every message of the failure queue (waiting for ``expected``, then a second for any extra)."""
        bodies: list[dict[str, Any]] = []
        deadline, extra = time.monotonic() + 15, None
        while time.monotonic() < deadline:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
            )
            for message in response.get("Messages", []):
                bodies.append({**json.loads(message["Body"]), "_attributes": message.get("MessageAttributes", {})})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if len(bodies) >= expected and extra is None:
                extra = time.monotonic() + 1
            if extra is not None and time.monotonic() > extra:
                break
        return bodies


@pytest.fixture
def rig(localstack: Callable[[str], Any], unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StreamRig]:
    kinesis, kms, sqs = localstack("kinesis"), localstack("kms"), localstack("sqs")
    key = kms.create_key(Description=f"acme-it-{unique} stream and queue key")["KeyMetadata"]["Arn"]
    name = f"acme-it-customer-activity-{unique}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    waiter = kinesis.get_waiter("stream_exists")
    waiter.wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key)
    waiter.wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert (summary["EncryptionType"], summary["KeyId"]) == ("KMS", key)
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    queue_url = sqs.create_queue(
        QueueName=f"acme-it-update-online-features-rejected-{unique}", Attributes={"KmsMasterKeyId": key}
    )["QueueUrl"]
    store = FeatureStoreFake()
    group = f"acme-it-{unique}-customer-churn-v1"
    store.add_spec_group(group, SPEC)
    stream_rig = StreamRig(kinesis, sqs, name, summary["StreamARN"], shard, queue_url, store, group)
    monkeypatch.setattr(app, "runtime", stream_rig.runtime)
    yield stream_rig
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    sqs.delete_queue(QueueUrl=queue_url)


def expected_online(row: dict[str, Any]) -> dict[str, str]:
    """The online record the training path's functions give for a raw row."""
    payload = to_put_record_payload(SPEC, validate_record(SPEC, feature_record(SPEC, row)))
    return {item["FeatureName"]: item["ValueAsString"] for item in payload}


def test_rows_from_the_stream_reach_the_online_store_and_rejects_the_queue(rig: StreamRig) -> None:
    late = activity("c-1", day=2, sessions=3)
    newest = activity("c-1", day=3, sessions=7)
    other = activity("c-2", day=2, sessions=1)
    missing = {k: v for k, v in activity("c-3", 2, 2).items() if k != "monthly_spend"}
    numbers = rig.put([newest, late, other, b"{not json", missing])

    records = rig.read(len(numbers))
    assert [r["SequenceNumber"] for r in records] == numbers
    event = rig.event(records)
    result = rig.invoke(event)

    assert result == {"batchItemFailures": []}
    assert rig.store.online_record(rig.group, "c-1") == expected_online(newest)  # the late row changed nothing
    assert rig.store.online_record(rig.group, "c-2") == expected_online(other)
    assert rig.store.online_record(rig.group, "c-3") is None
    messages = sorted(rig.rejected(2), key=lambda m: int(m["source"]["sequenceNumber"]))
    assert [(m["reason"], m["source"]["sequenceNumber"]) for m in messages] == [
        ("NotUtf8Json", numbers[3]),
        ("InvalidRecord", numbers[4]),
    ]
    assert "monthly_spend" in messages[1]["detail"]
    assert messages[1]["model"] == "churn" and messages[1]["featureGroupName"] == rig.group
    assert {m["source"]["eventSourceARN"] for m in messages} == {rig.stream_arn}
    assert {m["source"]["shardId"] for m in messages} == {rig.shard_id}
    assert json.loads(messages[1]["payload"]["data"]) == missing
    assert messages[0]["_attributes"]["reason"]["StringValue"] == "NotUtf8Json"


def test_a_failed_write_is_retried_from_the_lowest_reported_sequence_number(rig: StreamRig) -> None:
    rows = [activity("c-1", 1, 1), activity("c-2", 1, 2), activity("c-3", 1, 3)]
    numbers = rig.put([rows[0], rows[1], b"[]", rows[2]])
    # c-2's write is throttled beyond the client's attempts (the fake sees one call: botocore's retries are spent)
    rig.store.fault = _throttle_once_for("c-2")
    first = rig.invoke(rig.event(rig.read(len(numbers))))
    assert first == {"batchItemFailures": [{"itemIdentifier": numbers[1]}, {"itemIdentifier": numbers[2]}]}
    assert rig.rejected(0) == []  # the rejection after the checkpoint waits for the retry

    # Lambda retries from the lowest reported sequence number: everything from there on comes again.
    retried = rig.read(len(numbers) - 1, at=numbers[1])
    assert [r["SequenceNumber"] for r in retried] == numbers[1:]
    second = rig.invoke(rig.event(retried))

    assert second == {"batchItemFailures": []}
    for row in rows:
        assert rig.store.online_record(rig.group, row["customer_id"]) == expected_online(row)
    assert [(m["reason"], m["source"]["sequenceNumber"]) for m in rig.rejected(1)] == [("NotAnObject", numbers[2])]


def _throttle_once_for(customer: str) -> Callable[[str, dict[str, Any]], None]:
    from tests.support.featurestore_fake import client_error

    state = {"done": False}

    def fault(operation: str, kwargs: dict[str, Any]) -> None:
        identifier = next(f["ValueAsString"] for f in kwargs.get("Record", []) if f["FeatureName"] == "customer_id")
        if operation == "PutRecord" and identifier == customer and not state["done"]:
            state["done"] = True
            raise client_error("ThrottlingException", "Rate exceeded", operation)

    return fault
