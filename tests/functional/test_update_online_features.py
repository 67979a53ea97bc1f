"""The online feature update stream consumer (``lambdas/update_online_features``), in process.

The Feature Store runtime is :class:`tests.support.featurestore_fake.FeatureStoreFake` (moto has no backend for
``sagemaker-featurestore-runtime``; the fake keeps PutRecord's event-time rule), except where botocore's own retries
are under test: there a real client answers from a ``before-send`` hook, so botocore's standard retry mode runs as
it does against AWS. The failure queue is moto's SQS, or a small fake SQS client where SQS must fail.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.retries.standard
import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto import mock_aws

from mlops.features import get_spec
from mlops.features.spec import transform_frame
from mlops.featurestore.records import to_put_record_payload, validate_record
from tests.support.featurestore_fake import FeatureStoreFake
from tests.support.kinesis_events import STREAM_ARN, sequence_numbers, synthetic_event

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
REGION = "eu-west-1"
SPEC = get_spec("customer-churn")
GROUP = "acme-dev-customer-churn-v1"
CHALLENGER_GROUP = "acme-dev-churn-challenger-v1"


def load_app() -> ModuleType:
    """The function's ``app`` module, imported as Lambda resolves it (``responder_common`` next to it)."""
    if str(LAMBDAS_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDAS_DIR))
    return importlib.import_module("lambdas.update_online_features.app")


app = load_app()


def row(customer: str, day: int = 1, **changes: Any) -> dict[str, Any]:
    """A raw ``customer_activity`` row as the source table holds it."""
    base = {
        "customer_id": customer,
        "event_time": f"2024-05-{day:02d}T12:00:00Z",
        "sessions": 4,
        "minutes_active": 30.5,
        "support_tickets": 1,
        "plan": "premium",
        "monthly_spend": 49.99,
        "churned": 0,
    }
    base.update(changes)
    return base


def targets_env(*targets: tuple[str, str]) -> str:
    return json.dumps([{"model": m, "featureGroupName": g, "featureSpec": "customer-churn"} for m, g in targets])


def settings(*targets: tuple[str, str], max_attempts: int | None = None) -> Any:
    env = {"FEATURE_TARGETS": targets_env(*(targets or (("churn", GROUP),))), "FAILURE_QUEUE_URL": "unused"}
    if max_attempts is not None:
        env["PUT_MAX_ATTEMPTS"] = str(max_attempts)
    return app.Settings.from_env(env)


class FakeSqs:
    """An SQS client whose ``send_message_batch`` raises ``error`` or fails the entries with the given ids."""

    def __init__(self, *, error: str | None = None, failed_ids: tuple[str, ...] = ()) -> None:
        self.error = error
        self.failed_ids = failed_ids
        self.sent: list[dict[str, Any]] = []

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "injected"}}, "SendMessageBatch")
        failed = [e for e in kwargs["Entries"] if e["Id"] in self.failed_ids]
        self.sent.extend(e for e in kwargs["Entries"] if e["Id"] not in self.failed_ids)
        return {
            "Successful": [{"Id": e["Id"]} for e in kwargs["Entries"] if e["Id"] not in self.failed_ids],
            "Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in failed],
        }

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(e["MessageBody"]) for e in self.sent]


@pytest.fixture(autouse=True)
def _clean_metrics() -> Iterator[None]:
    yield
    app.metrics.clear_metrics()


@pytest.fixture
def store() -> FeatureStoreFake:
    fake = FeatureStoreFake()
    fake.add_spec_group(GROUP, SPEC, offline=True)
    fake.add_spec_group(CHALLENGER_GROUP, SPEC, offline=True)
    return fake


@pytest.fixture
def queue() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        yield sqs, sqs.create_queue(QueueName="acme-dev-update-online-features-rejected")["QueueUrl"]


def received(queue: tuple[Any, str]) -> list[dict[str, Any]]:
    sqs, url = queue
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )


def runtime_with(store: Any, sqs: Any, queue_url: str = "https://sqs.eu-west-1.amazonaws.com/1/q", **kw: Any) -> Any:
    configured = settings(*kw.pop("targets", ()))
    configured = app.Settings(
        targets=configured.targets, failure_queue_url=queue_url, put_max_attempts=configured.put_max_attempts
    )
    return app.build_runtime(configured, featurestore=store, sqs=sqs, **kw)


def failures(result: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in result["batchItemFailures"]]


# ---------------------------------------------------------------------------------------------- writes
def test_valid_records_are_written_with_the_values_the_training_path_computes(store: FeatureStoreFake) -> None:
    rows = [row("c-1"), row("c-2", sessions=0, plan="gold"), row("c-3", minutes_active=7, monthly_spend=0)]
    result = app.process(synthetic_event(rows), runtime_with(store, FakeSqs()))

    assert failures(result) == []
    training = transform_frame(SPEC, pd.DataFrame(rows)).drop(columns=[SPEC.target])
    for features in training.to_dict("records"):
        expected = to_put_record_payload(SPEC, validate_record(SPEC, features))
        stored = store.online_record(GROUP, features["customer_id"])
        assert stored == {item["FeatureName"]: item["ValueAsString"] for item in expected}


def test_writes_target_the_online_store_only(store: FeatureStoreFake) -> None:
    app.process(synthetic_event([row("c-1"), row("c-2")]), runtime_with(store, FakeSqs()))
    assert {call.target_stores for call in store.calls} == {("OnlineStore",)}
    assert store.groups[GROUP].offline == []  # the batch path feeds the offline store


def test_every_target_model_gets_the_record(store: FeatureStoreFake) -> None:
    rt = runtime_with(store, FakeSqs(), targets=(("churn", GROUP), ("churn-challenger", CHALLENGER_GROUP)))
    app.process(synthetic_event([row("c-1")]), rt)
    assert store.online_record(GROUP, "c-1") == store.online_record(CHALLENGER_GROUP, "c-1") is not None


def test_only_the_newest_record_of_an_entity_in_a_batch_is_written(store: FeatureStoreFake) -> None:
    event = synthetic_event([row("c-1", day=3, sessions=30), row("c-1", day=1, sessions=10), row("c-1", day=2)])
    result = app.process(event, runtime_with(store, FakeSqs()))

    assert failures(result) == []
    assert len(store.calls) == 1
    assert store.online_record(GROUP, "c-1") is not None
    assert store.online_record(GROUP, "c-1")["sessions"] == "30"  # type: ignore[index]


def test_of_records_with_equal_event_times_the_first_in_sequence_is_written(store: FeatureStoreFake) -> None:
    app.process(synthetic_event([row("c-1", sessions=5), row("c-1", sessions=6)]), runtime_with(store, FakeSqs()))
    assert [c.record for c in store.calls] == [to_put_record_payload(SPEC, validate_record(SPEC, features_of(5)))]


def features_of(sessions: int) -> dict[str, Any]:
    frame = transform_frame(SPEC, pd.DataFrame([row("c-1", sessions=sessions)]))
    return frame.drop(columns=[SPEC.target]).to_dict("records")[0]


def test_an_older_record_redelivered_after_a_newer_one_leaves_the_newer_features(store: FeatureStoreFake) -> None:
    rt = runtime_with(store, FakeSqs())
    app.process(synthetic_event([row("c-1", day=5, sessions=50)], first_sequence=200), rt)
    app.process(synthetic_event([row("c-1", day=4, sessions=40)], first_sequence=100), rt)  # a retried batch
    assert store.online_record(GROUP, "c-1")["sessions"] == "50"  # type: ignore[index]
    assert [c.outcome for c in store.calls] == ["written", "historic"]


# ---------------------------------------------------------------------------------------------- rejections
INVALID = {
    "not-base64": ("%%% not base64 %%%", "NotBase64", None),
    "not-json": (b"{oops", "NotUtf8Json", None),
    "not-utf8": (b"\xff\xfe{}", "NotUtf8Json", None),
    "not-an-object": (b"[1, 2, 3]", "NotAnObject", None),
    "missing-column": ({k: v for k, v in row("c-9").items() if k != "sessions"}, "InvalidRecord", "sessions"),
    "missing-identifier": ({k: v for k, v in row("c-9").items() if k != "customer_id"}, "InvalidRecord", "customer_id"),
    "wrong-type": (row("c-9", sessions="many"), "InvalidRecord", "*"),
    "null-value": (row("c-9", monthly_spend=None), "InvalidRecord", "*"),
    "bad-event-time": (row("c-9", event_time="yesterday"), "InvalidRecord", "event_time"),
    "impossible-date": (row("c-9", event_time="2024-02-30T00:00:00Z"), "InvalidRecord", "event_time"),
    "numeric-event-time": (row("c-9", event_time=1714564800), "InvalidRecord", "event_time"),
    "identifier-too-big": (row("c" * 3000), "InvalidRecord", "customer_id"),
    "infinite-spend": (
        b'{"customer_id": "c-9", "event_time": "2024-05-01T12:00:00Z", "sessions": 4, '
        b'"minutes_active": 3, "support_tickets": 1, "plan": "basic", "monthly_spend": Infinity}',
        "InvalidRecord",
        "monthly_spend",
    ),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_an_invalid_record_goes_to_the_failure_queue_with_its_reason(
    case: str, store: FeatureStoreFake, queue: tuple[Any, str]
) -> None:
    payload, reason, field = INVALID[case]
    event = synthetic_event([row("c-1"), payload, row("c-2")])
    result = app.process(event, runtime_with(store, queue[0], queue[1]))

    assert failures(result) == []  # rejected, not retried
    assert store.online_record(GROUP, "c-1") is not None and store.online_record(GROUP, "c-2") is not None
    (message,) = received(queue)
    body = json.loads(message["Body"])
    assert body["reason"] == reason
    assert body["field"] == field
    assert body["detail"]
    record = event["Records"][1]
    assert body["source"] == {
        "eventSourceARN": STREAM_ARN,
        "shardId": "shardId-000000000000",
        "sequenceNumber": record["kinesis"]["sequenceNumber"],
        "partitionKey": record["kinesis"]["partitionKey"],
        "eventID": record["eventID"],
        "approximateArrivalTimestamp": record["kinesis"]["approximateArrivalTimestamp"],
    }
    assert message["MessageAttributes"]["reason"]["StringValue"] == reason
    assert (body["model"], body["featureGroupName"]) == (("churn", GROUP) if field else (None, None))


def test_the_rejected_payload_travels_with_the_message(store: FeatureStoreFake) -> None:
    sqs = FakeSqs()
    bad = row("c-1", sessions="many")
    app.process(synthetic_event([bad]), runtime_with(store, sqs))
    (body,) = sqs.bodies()
    assert json.loads(body["payload"]["data"]) == bad
    assert body["payload"]["encoding"] == "utf-8" and body["payload"]["truncated"] is False


def test_a_large_rejected_payload_is_truncated_and_keeps_its_size_and_hash(store: FeatureStoreFake) -> None:
    sqs = FakeSqs()
    data = json.dumps(row("c-1", plan="é" * 100_000, sessions=None)).encode()
    app.process(synthetic_event([data]), runtime_with(store, sqs))
    (body,) = sqs.bodies()
    payload = body["payload"]
    assert payload["truncated"] is True
    assert payload["bytes"] == len(data) and payload["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(payload["data"].encode()) <= app.MAX_PAYLOAD_BYTES
    assert data.decode().startswith(payload["data"])
    assert len(sqs.sent[0]["MessageBody"].encode()) * app.SQS_BATCH_SIZE < 256 * 1024


def test_binary_data_is_carried_as_base64(store: FeatureStoreFake) -> None:
    sqs = FakeSqs()
    app.process(synthetic_event([b"\x00\xff\xfe"]), runtime_with(store, sqs))
    (body,) = sqs.bodies()
    assert body["payload"]["encoding"] == "base64"
    assert base64.b64decode(body["payload"]["data"]) == b"\x00\xff\xfe"


def test_a_record_refused_by_feature_store_is_rejected_not_retried(store: FeatureStoreFake) -> None:
    sqs = FakeSqs()
    store.fail_next("PutRecord", "ValidationError", message="1 validation error detected")
    result = app.process(synthetic_event([row("c-1")]), runtime_with(store, sqs))
    assert failures(result) == []
    (body,) = sqs.bodies()
    assert body["reason"] == "RefusedByFeatureStore" and "ValidationError" in body["detail"]


# ---------------------------------------------------------------------------------------------- retries
class HttpFaults:
    """Answers PutRecord at the HTTP layer (``before-send``): ``failures`` error responses, then 200."""

    def __init__(self, failures: int, *, status: int = 400, code: str = "ThrottlingException") -> None:
        self.failures, self.status, self.code = failures, status, code
        self.attempts = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        if self.attempts <= self.failures:
            body = json.dumps({"__type": self.code, "message": "Rate exceeded"}).encode()
            headers = {"x-amzn-ErrorType": self.code, "Content-Type": "application/x-amz-json-1.1"}
            return AWSResponse(request.url, self.status, headers, _Raw(body))
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(b"{}"))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard-mode backoff without the sleeping (the attempts are what is under test)."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def featurestore_client(max_attempts: int, faults: HttpFaults) -> Any:
    client = boto3.client(
        "sagemaker-featurestore-runtime",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=app.runtime_config(max_attempts),
    )
    client.meta.events.register("before-send.sagemaker-featurestore-runtime.PutRecord", faults)
    return client


@pytest.mark.usefixtures("no_backoff")
def test_throttling_is_retried_by_botocore_then_handed_back_to_lambda() -> None:
    faults = HttpFaults(failures=10)
    rt = runtime_with(featurestore_client(3, faults), FakeSqs())
    event = synthetic_event([row("c-1")])
    result = app.process(event, rt)
    assert faults.attempts == 3  # PUT_MAX_ATTEMPTS counts every attempt: bounded, no second retry layer
    assert failures(result) == sequence_numbers(event)


@pytest.mark.usefixtures("no_backoff")
def test_a_throttle_that_clears_within_the_attempts_is_written() -> None:
    faults = HttpFaults(failures=2)
    result = app.process(synthetic_event([row("c-1")]), runtime_with(featurestore_client(3, faults), FakeSqs()))
    assert faults.attempts == 3 and failures(result) == []


@pytest.mark.usefixtures("no_backoff")
def test_server_errors_are_retried_by_botocore_too() -> None:
    faults = HttpFaults(failures=10, status=503, code="ServiceUnavailable")
    result = app.process(synthetic_event([row("c-1")]), runtime_with(featurestore_client(2, faults), FakeSqs()))
    assert faults.attempts == 2 and len(failures(result)) == 1


def test_the_runtime_client_uses_standard_retries_with_bounded_attempts_and_timeouts() -> None:
    config = app.runtime_config(4)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (3, 10)


@pytest.mark.parametrize("code", ["ThrottlingException", "ServiceUnavailable", "InternalFailure", "ResourceNotFound"])
def test_a_write_that_fails_after_the_retries_is_handed_back_to_lambda(code: str, store: FeatureStoreFake) -> None:
    sqs = FakeSqs()
    store.fail_next("PutRecord", code)
    event = synthetic_event([row("c-1")])
    result = app.process(event, runtime_with(store, sqs, max_workers=1))
    assert failures(result) == sequence_numbers(event)
    assert sqs.sent == []


def test_every_record_a_failed_write_covers_is_reported(store: FeatureStoreFake) -> None:
    store.fail_next("PutRecord", "ThrottlingException")
    event = synthetic_event([row("c-1", day=1), row("c-1", day=2)])
    assert failures(app.process(event, runtime_with(store, FakeSqs()))) == sequence_numbers(event)


def test_rejections_after_the_lowest_failure_are_left_for_lambdas_retry(store: FeatureStoreFake) -> None:
    """Lambda retries from the lowest reported sequence number: what follows comes again, rejections included."""
    sqs = FakeSqs()
    store.fail_next("PutRecord", "ThrottlingException")
    event = synthetic_event([b"{oops", row("c-1"), b"[]", row("c-2")])
    s_bad1, s_fail, s_bad2, _ = sequence_numbers(event)
    result = app.process(event, runtime_with(store, sqs, max_workers=1))

    assert failures(result) == [s_fail, s_bad2]
    assert [b["source"]["sequenceNumber"] for b in sqs.bodies()] == [s_bad1]  # the later one is sent on the retry
    assert store.online_record(GROUP, "c-2") is not None  # written now; its repeat will change nothing


# ---------------------------------------------------------------------------------------------- failure queue
def test_a_rejection_the_queue_does_not_take_is_handed_back_to_lambda(store: FeatureStoreFake) -> None:
    event = synthetic_event([row("c-1"), b"{oops"])
    result = app.process(event, runtime_with(store, FakeSqs(error="AWS.SimpleQueueService.NonExistentQueue")))
    assert failures(result) == [sequence_numbers(event)[1]]
    assert store.online_record(GROUP, "c-1") is not None


def test_only_the_entries_sqs_failed_are_handed_back(store: FeatureStoreFake) -> None:
    sqs = FakeSqs(failed_ids=("r1",))
    event = synthetic_event([b"{1", b"{2", b"{3"])
    result = app.process(event, runtime_with(store, sqs))
    assert failures(result) == [sequence_numbers(event)[1]]
    assert [b["source"]["sequenceNumber"] for b in sqs.bodies()] == [sequence_numbers(event)[i] for i in (0, 2)]


def test_more_than_ten_rejections_are_sent_in_several_batches(store: FeatureStoreFake, queue: tuple[Any, str]) -> None:
    event = synthetic_event([b"{oops"] * 23)
    result = app.process(event, runtime_with(store, queue[0], queue[1]))
    assert failures(result) == []
    assert sorted(json.loads(m["Body"])["source"]["sequenceNumber"] for m in received(queue)) == sorted(
        sequence_numbers(event)
    )


# ---------------------------------------------------------------------------------------------- handler
class Context:
    function_name = "acme-dev-update-online-features"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:acme-dev-update-online-features"
    memory_limit_in_mb = 512
    aws_request_id = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    log_group_name = "/aws/lambda/acme-dev-update-online-features"
    log_stream_name = "2024/05/01/[$LATEST]abc"

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def emitted(output: str) -> dict[tuple[str, str], float]:
    """(metric, model or "") → value, from the EMF lines powertools printed."""
    values: dict[tuple[str, str], float] = {}
    for line in output.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "MLOps/Streaming"
            assert blob["service"] == "update_online_features" and "service" in directive["Dimensions"][0]
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                values[(metric["Name"], blob.get("model", ""))] = value[0] if isinstance(value, list) else value
    return values


def test_the_handler_emits_totals_and_per_model_metrics(
    store: FeatureStoreFake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rt = runtime_with(store, FakeSqs())
    monkeypatch.setattr(app, "runtime", lambda: rt)
    store.fail_next("PutRecord", "ThrottlingException")
    event = synthetic_event([row("c-1"), row("c-2", day=1), row("c-2", day=2), b"{oops", row("c-3", sessions="x")])
    result = app.handler(event, Context())

    # c-1's write failed, and the two rejections after it wait for the retry (which brings everything from c-1 on)
    assert failures(result) == [sequence_numbers(event)[i] for i in (0, 3, 4)]
    values = emitted(capsys.readouterr().out)
    assert values[("RecordsReceived", "")] == 5
    assert values[("RecordsRetried", "")] == 3
    assert values[("RecordsWritten", "")] == values[("RecordsWritten", "churn")] == 1
    assert values[("RecordsSuperseded", "churn")] == 1
    assert values[("RecordsRejected", "")] == 0  # both rejections follow the failure: sent on the retry


def test_the_handler_counts_rejections(
    store: FeatureStoreFake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rt = runtime_with(store, FakeSqs())
    monkeypatch.setattr(app, "runtime", lambda: rt)
    app.handler(synthetic_event([row("c-1"), b"{oops", row("c-3", sessions="x")]), Context())
    values = emitted(capsys.readouterr().out)
    assert values[("RecordsRejected", "")] == 2
    assert values[("RecordsRejected", "churn")] == 1
    assert values[("RecordsWritten", "churn")] == 1


def test_writes_are_not_started_when_the_invocation_is_about_to_time_out(store: FeatureStoreFake) -> None:
    event = synthetic_event([row("c-1"), row("c-2")])
    result = app.process(event, runtime_with(store, FakeSqs()), Context(remaining_ms=1_000))
    assert failures(result) == sequence_numbers(event)
    assert store.calls == []


def test_a_broken_envelope_fails_the_whole_batch(store: FeatureStoreFake, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = runtime_with(store, FakeSqs())
    monkeypatch.setattr(app, "runtime", lambda: rt)
    event = synthetic_event([row("c-1")])
    del event["Records"][0]["kinesis"]["sequenceNumber"]
    with pytest.raises(app.MalformedEventError, match="sequenceNumber"):
        app.handler(event, Context())


# ---------------------------------------------------------------------------------------------- environment
GOOD_ENV = {"FEATURE_TARGETS": targets_env(("churn", GROUP)), "FAILURE_QUEUE_URL": "https://sqs/q"}
BAD_ENV = {
    "targets-missing": ({"FEATURE_TARGETS": ""}, r"FEATURE_TARGETS is required"),
    "targets-not-json": ({"FEATURE_TARGETS": "[{"}, r"FEATURE_TARGETS is not valid JSON"),
    "targets-empty": ({"FEATURE_TARGETS": "[]"}, r"FEATURE_TARGETS must be a non-empty JSON list"),
    "targets-object": ({"FEATURE_TARGETS": "{}"}, r"FEATURE_TARGETS must be a non-empty JSON list"),
    "entry-not-object": ({"FEATURE_TARGETS": '["churn"]'}, r"FEATURE_TARGETS\[0\] must be an object"),
    "model-missing": (
        {"FEATURE_TARGETS": json.dumps([{"featureGroupName": GROUP, "featureSpec": "customer-churn"}])},
        r"FEATURE_TARGETS\[0\]\.model must be a non-empty string",
    ),
    "unknown-spec": (
        {"FEATURE_TARGETS": json.dumps([{"model": "m", "featureGroupName": GROUP, "featureSpec": "nope"}])},
        r"FEATURE_TARGETS\[0\]\.featureSpec: unknown feature spec 'nope'; registered: customer-churn",
    ),
    "model-twice": (
        {"FEATURE_TARGETS": targets_env(("churn", GROUP), ("churn", CHALLENGER_GROUP))},
        r"FEATURE_TARGETS names model\(s\) \['churn'\] more than once",
    ),
    "queue-missing": ({"FAILURE_QUEUE_URL": " "}, r"FAILURE_QUEUE_URL is required"),
    "attempts-zero": ({"PUT_MAX_ATTEMPTS": "0"}, r"PUT_MAX_ATTEMPTS must be an integer from 1 to 10, got '0'"),
    "attempts-too-many": ({"PUT_MAX_ATTEMPTS": "11"}, r"PUT_MAX_ATTEMPTS must be an integer from 1 to 10"),
    "attempts-not-int": ({"PUT_MAX_ATTEMPTS": "3.5"}, r"PUT_MAX_ATTEMPTS must be an integer from 1 to 10"),
}


@pytest.mark.parametrize("case", BAD_ENV, ids=list(BAD_ENV))
def test_a_bad_environment_is_refused_naming_the_variable(case: str) -> None:
    changes, message = BAD_ENV[case]
    with pytest.raises(app.ConfigurationError, match=message):
        app.Settings.from_env({**GOOD_ENV, **changes})


def test_the_environment_contract_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = app.Settings.from_env({**GOOD_ENV, "PUT_MAX_ATTEMPTS": "6"})
    assert [(t.model, t.feature_group_name, t.spec.name) for t in configured.targets] == [
        ("churn", GROUP, "customer-churn")
    ]
    assert (configured.failure_queue_url, configured.put_max_attempts) == ("https://sqs/q", 6)
    assert app.Settings.from_env(GOOD_ENV).put_max_attempts == app.DEFAULT_PUT_MAX_ATTEMPTS


def test_the_first_invocation_fails_on_a_bad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_TARGETS", "not json")
    monkeypatch.setenv("FAILURE_QUEUE_URL", "https://sqs/q")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    app.runtime.cache_clear()
    try:
        with pytest.raises(app.ConfigurationError, match="FEATURE_TARGETS is not valid JSON"):
            app.handler(synthetic_event([row("c-1")]), Context())
    finally:
        app.runtime.cache_clear()
