"""New-data retraining against moto: a burst of one load starts one execution with the table and the batch id,
redeliveries start none, and data-driven and alarm-driven starts share one cooldown and one daily cap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from lambdas.local import import_app
from tests.functional.test_responders_moto import (
    ACCOUNT,
    ALARM,
    PIPELINE,
    REGION,
    T0,
    TABLE,
    Aws,
    Clock,
    Serialized,
    moto_responder_aws,
    sns_alarm,
)
from tests.support.new_data_events import BUCKET, object_created, sqs_batch, sqs_record

retrain = import_app("retrain_on_alarm")

PREFIX = "customer_activity/"
DEFINITION = json.dumps(
    {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://acme-mlops-dev-raw/customer-churn"},
            {"Name": "DataVersion", "Type": "String", "DefaultValue": "unversioned"},
            {"Name": "CodeVersion", "Type": "String", "DefaultValue": "unknown"},
        ],
        "Steps": [],
    }
)


@pytest.fixture
def aws() -> Iterator[Aws]:
    # The alarm-driven tests' world; this pipeline also declares InputDataUri, which new-data starts set.
    with moto_responder_aws(DEFINITION) as world:
        yield world


def runtime(aws: Aws, clock: Clock, *, match: str = "commits", cooldown: int = 360, per_day: int = 2,
            sagemaker: Any = None) -> Any:  # fmt: skip
    limits = {"cooldown_minutes": cooldown, "max_per_day": per_day}
    settings = retrain.Settings(
        alerts_topic_arn=aws.topic_arn,
        state_table=TABLE,
        targets={ALARM: retrain.RetrainTarget(model="customer-churn", pipeline_name=PIPELINE, **limits)},
        new_data={
            "customer-churn": retrain.NewDataTarget(
                model="customer-churn", pipeline_name=PIPELINE, bucket=BUCKET, table_prefix=PREFIX, match=match,
                **limits,
            )
        },
    )  # fmt: skip
    return retrain.build_runtime(
        settings, sagemaker=sagemaker or aws.sagemaker, dynamodb=Serialized(aws.dynamodb), sns=aws.sns, clock=clock
    )


def marker(batch: str) -> str:
    return f"_commits/{PREFIX}{batch}.json"


def files(batch: str, count: int) -> list[str]:
    return [f"{PREFIX}dt=2024-05-0{1 + n % 2}/{batch}-{n:05d}.snappy.parquet" for n in range(count)]


def parameters(aws: Aws, execution: dict[str, Any]) -> dict[str, str]:
    listed = aws.sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )
    return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}


def outcomes(result: dict[str, Any]) -> list[str]:
    return [o["outcome"] for o in result["outcomes"]]


def test_a_commit_marker_starts_one_execution_on_the_whole_table_with_the_batch_id(aws: Aws) -> None:
    result = retrain.process(sqs_batch(object_created(marker("load-2024-05-02"), T0)), runtime(aws, Clock(T0)))
    assert outcomes(result) == ["RetrainStarted"] and result["batchItemFailures"] == []
    (execution,) = aws.executions()
    # Only what it passes (moto lists those): CodeVersion keeps the pipeline's default.
    assert parameters(aws, execution) == {"InputDataUri": f"s3://{BUCKET}/{PREFIX}", "DataVersion": "load-2024-05-02"}
    assert execution["PipelineExecutionDisplayName"].startswith("data-20240501T120000000Z-load-2024-05-02")


def test_a_burst_of_many_files_of_one_load_starts_one_execution(aws: Aws) -> None:
    batch = sqs_batch(*(object_created(k, T0 + timedelta(milliseconds=i)) for i, k in enumerate(files("load-7", 200))))
    result = retrain.process(batch, runtime(aws, Clock(T0), match="objects"))
    assert outcomes(result) == ["RetrainStarted"]
    (execution,) = aws.executions()
    assert parameters(aws, execution)["DataVersion"] == "load-7"
    assert len(aws.notifications()) == 1


def test_a_load_whose_files_span_two_batches_starts_once(aws: Aws) -> None:
    rt = runtime(aws, Clock(T0), match="objects")
    keys = files("load-7", 20)
    retrain.process(sqs_batch(*(object_created(k, T0) for k in keys[:10])), rt)
    result = retrain.process(sqs_batch(*(object_created(k, T0 + timedelta(seconds=1)) for k in keys[10:])), rt)
    assert outcomes(result) == ["DuplicateDelivery"]
    assert len(aws.executions()) == 1


def test_a_redelivered_batch_starts_nothing_more(aws: Aws) -> None:
    batch = sqs_batch(object_created(marker("load-1"), T0))
    assert outcomes(retrain.process(batch, runtime(aws, Clock(T0)))) == ["RetrainStarted"]
    (replay,) = retrain.process(batch, runtime(aws, Clock(T0 + timedelta(minutes=5))))["outcomes"]
    assert (replay["outcome"], replay["replayedOutcome"]) == ("DuplicateDelivery", "RetrainStarted")
    assert len(aws.executions()) == 1


def test_a_second_load_within_the_cooldown_is_refused_and_humans_are_told(aws: Aws) -> None:
    clock = Clock(T0)
    rt = runtime(aws, clock)
    retrain.process(sqs_batch(object_created(marker("load-1"), T0)), rt)
    clock.now = T0 + timedelta(hours=1)
    assert outcomes(retrain.process(sqs_batch(object_created(marker("load-2"), clock.now)), rt)) == ["SkippedCooldown"]
    assert len(aws.executions()) == 1
    subjects = [n["Subject"] for n in aws.notifications()]
    assert subjects == [
        "[mlops] retraining started: customer-churn (RetrainStarted)",
        "[mlops] retraining skipped: customer-churn (SkippedCooldown)",
    ]


def test_new_data_within_the_cooldown_of_an_alarm_driven_start_is_refused(aws: Aws) -> None:
    clock = Clock(T0)
    rt = runtime(aws, clock)
    assert outcomes(retrain.process(sns_alarm(T0), rt)) == ["RetrainStarted"]
    clock.now = T0 + timedelta(minutes=30)
    assert outcomes(retrain.process(sqs_batch(object_created(marker("load-1"), clock.now)), rt)) == ["SkippedCooldown"]


def test_an_alarm_within_the_cooldown_of_a_data_driven_start_is_refused(aws: Aws) -> None:
    clock = Clock(T0)
    rt = runtime(aws, clock)
    retrain.process(sqs_batch(object_created(marker("load-1"), T0)), rt)
    clock.now = T0 + timedelta(minutes=30)
    assert outcomes(retrain.process(sns_alarm(clock.now), rt)) == ["SkippedCooldown"]


def test_alarms_and_new_data_share_the_daily_cap(aws: Aws) -> None:
    clock = Clock(T0)
    rt = runtime(aws, clock, cooldown=0, per_day=2)
    decided = [outcomes(retrain.process(sns_alarm(T0), rt))[0]]
    for n in (1, 2):
        clock.now = T0 + timedelta(minutes=n)
        decided += outcomes(retrain.process(sqs_batch(object_created(marker(f"load-{n}"), clock.now)), rt))
    assert decided == ["RetrainStarted", "RetrainStarted", "SkippedDailyCap"]


def test_a_malformed_record_fails_alone(aws: Aws) -> None:
    bad = sqs_record("{not json", message_id="bad-1")
    batch = {"Records": [bad, *sqs_batch(object_created(marker("load-1"), T0))["Records"]]}
    result = retrain.process(batch, runtime(aws, Clock(T0)))
    assert result["batchItemFailures"] == [{"itemIdentifier": "bad-1"}]
    assert outcomes(result) == ["RetrainStarted"]


def test_objects_outside_the_table_are_ignored_not_failed(aws: Aws) -> None:
    batch = sqs_batch(object_created("other_table/x.parquet", T0), object_created(f"{PREFIX}_SUCCESS", T0))
    result = retrain.process(batch, runtime(aws, Clock(T0), match="objects"))
    assert outcomes(result) == ["IgnoredUnknownData", "IgnoredNotALoad"]
    assert result["batchItemFailures"] == [] and aws.executions() == []


class FailingStart:
    """A SageMaker client whose first StartPipelineExecution fails (a throttle that outlived botocore's retries)."""

    def __init__(self, client: Any) -> None:
        self._client, self.failures = client, 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def start_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartPipelineExecution"
            )
        return self._client.start_pipeline_execution(**kwargs)


def test_a_failed_start_fails_every_record_of_the_load_and_its_redelivery_starts_once(aws: Aws) -> None:
    batch = sqs_batch(*(object_created(k, T0) for k in files("load-9", 5)))
    rt = runtime(aws, Clock(T0), match="objects", sagemaker=FailingStart(aws.sagemaker))
    failed = retrain.process(batch, rt)
    assert {f["itemIdentifier"] for f in failed["batchItemFailures"]} == {r["messageId"] for r in batch["Records"]}
    assert aws.executions() == []
    assert outcomes(retrain.process(batch, rt)) == ["RetrainStarted"]  # the claim was released: no cooldown
    assert len(aws.executions()) == 1


def test_the_handler_answers_an_sqs_batch_with_a_partial_batch_response(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime(aws, Clock(T0))
    monkeypatch.setattr(retrain, "runtime", lambda: rt)
    context = SimpleNamespace(
        function_name="acme-mlops-dev-retrain-on-alarm",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:acme-mlops-dev-retrain-on-alarm",
        aws_request_id="req-1",
        get_remaining_time_in_millis=lambda: 60_000,
    )
    bad = sqs_record("{not json", message_id="bad-1")
    event = {"Records": [bad, *sqs_batch(object_created(marker("load-1"), T0))["Records"]]}
    assert retrain.handler(event, context) == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    assert len(aws.executions()) == 1
