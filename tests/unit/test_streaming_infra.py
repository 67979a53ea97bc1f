"""The streaming layer: its settings (every bad value refused with key, value and what is allowed) and what it builds
under the mock engine: an encrypted stream, Firehose into the raw zone as Parquet by event date, least-privilege
roles, the online-feature consumer with its failure queue, and alarms.

Streaming is switched on through ``run_program(..., overrides=...)`` over the dev stack file, so these tests do not
depend on what the stack files enable.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.streaming import alarms as stream_alarms
from infra.streaming.component import FUNCTION, FUNCTION_RESPONSE_TYPES, METRICS_NAMESPACE
from infra.streaming.settings import (
    ConsumerSettings,
    DeliverySettings,
    StreamingSettings,
    stream_plans,
)
from tests.support.plans import platform_key_arn, prefix, statements_by_sid, topic_arn
from tests.support.types import ALARM, CRAWLER, GLUE_TABLE, LOG_GROUP, QUEUE, QUEUE_POLICY, ROLE, ROLE_POLICY
from tests.support.types import FUNCTION as LAMBDA_FUNCTION
from verify.aws_contract import contract_report
from verify.mock_engine import OfflinePlan, PlannedResource, apply_overrides, read_stack_values, run_program
from verify.policy_check import check_plan

STACK = "dev"
TABLE = "customer_activity"
MODEL = "customer-churn"
COMPONENT = "mlops:streaming:StreamingTable"
STREAM = "aws:kinesis/stream:Stream"
FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
LOG_STREAM = "aws:cloudwatch/logStream:LogStream"
STREAMING_TYPES = (STREAM, FIREHOSE, MAPPING, LOG_STREAM)

STREAMING = {
    "retentionHours": 48,
    "delivery": {"bufferSizeMb": 64, "bufferIntervalSeconds": 120},
    "consumer": {
        "batchSize": 50,
        "maximumBatchingWindowInSeconds": 2,
        "maximumRetryAttempts": 5,
        "maximumRecordAgeInSeconds": 3600,
        "parallelizationFactor": 2,
        "putMaxAttempts": 4,
    },
}


# --- helpers ------------------------------------------------------------------------------------


def stack_catalog() -> dict[str, Any]:
    """The dev stack file's catalog, with no table streaming (whatever the file says)."""
    catalog = json.loads(read_stack_values(STACK)["mlops:catalog"])
    for table in catalog["tables"]:
        table.pop("streaming", None)
    return catalog


def stack_models() -> list[dict[str, Any]]:
    return json.loads(read_stack_values(STACK)["mlops:models"])


def with_streaming(streaming: dict[str, Any] | None, table: str = TABLE, **table_changes: Any) -> dict[str, Any]:
    catalog = stack_catalog()
    for spec in catalog["tables"]:
        if spec["name"] == table:
            spec.update(table_changes)
            if streaming is not None:
                spec["streaming"] = streaming
    return catalog


def problems(overrides: dict[str, Any]) -> list[str]:
    """The config problems of the dev stack with ``overrides`` (top-level keys); [] when it is valid."""
    try:
        parse_stack_config(apply_overrides(read_stack_values(STACK), overrides), STACK)
    except ConfigError as error:
        return error.problems
    return []


def streaming_problems(streaming: dict[str, Any], **table_changes: Any) -> list[str]:
    return problems({"catalog": with_streaming(streaming, **table_changes)})


def of(plan: OfflinePlan, type_token: str) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_token) if r.component == COMPONENT]


def one(plan: OfflinePlan, type_token: str) -> PlannedResource:
    (found,) = of(plan, type_token)
    return found


def named(plan: OfflinePlan, type_token: str, suffix: str) -> PlannedResource:
    (found,) = [r for r in of(plan, type_token) if r.name.endswith(suffix)]
    return found


def role_policy(plan: OfflinePlan, role_suffix: str) -> dict[str, dict[str, Any]]:
    return statements_by_sid(named(plan, ROLE_POLICY, f"{role_suffix}-policy"))


def resources_of(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


@pytest.fixture(scope="module")
def streaming_plan() -> OfflinePlan:
    return run_program(STACK, overrides={"catalog": with_streaming(STREAMING)})


@pytest.fixture(scope="module")
def batch_plan() -> OfflinePlan:
    return run_program(STACK, overrides={"catalog": stack_catalog()})


# --- settings -----------------------------------------------------------------------------------


def test_defaults_are_on_demand_a_day_of_retention_and_bounded_retries() -> None:
    settings = StreamingSettings()
    assert (settings.capacity_mode, settings.shard_count, settings.retention_hours) == ("ON_DEMAND", None, 24)
    assert (settings.delivery.buffer_size_mb, settings.delivery.buffer_interval_seconds) == (128, 300)
    consumer = settings.consumer
    assert consumer.maximum_retry_attempts >= 0 and consumer.maximum_record_age_in_seconds >= 60
    assert consumer.bisect_batch_on_function_error and consumer.starting_position == "TRIM_HORIZON"


def test_a_buffer_under_firehoses_conversion_minimum_is_refused() -> None:
    (problem,) = streaming_problems({"delivery": {"bufferSizeMb": 32}})
    assert problem.startswith("mlops:catalog.tables.0.streaming.delivery.bufferSizeMb: got 32; allowed: 64-128 MiB")
    assert "Parquet" in problem


def test_zero_buffering_is_refused_with_dynamic_partitioning() -> None:
    (problem,) = streaming_problems({"delivery": {"bufferIntervalSeconds": 0}})
    assert problem.startswith("mlops:catalog.tables.0.streaming.delivery.bufferIntervalSeconds: got 0; allowed: 60-900")
    assert "zero buffering" in problem


@pytest.mark.parametrize("hours", [23, 8761])
def test_retention_outside_kinesis_limits_is_refused(hours: int) -> None:
    (problem,) = streaming_problems({"retentionHours": hours})
    assert problem.startswith(f"mlops:catalog.tables.0.streaming.retentionHours: got {hours}; allowed: 24-8760 hours")


def test_provisioned_capacity_needs_a_shard_count() -> None:
    (problem,) = streaming_problems({"capacityMode": "PROVISIONED"})
    assert "mlops:catalog.tables.0.streaming" in problem and "needs shardCount" in problem


def test_on_demand_capacity_takes_no_shard_count() -> None:
    (problem,) = streaming_problems({"shardCount": 2})
    assert "shardCount=2 is only for capacityMode PROVISIONED" in problem


def test_unknown_capacity_mode_is_refused() -> None:
    (problem,) = streaming_problems({"capacityMode": "on-demand"})
    assert problem.startswith('mlops:catalog.tables.0.streaming.capacityMode: got "on-demand"')
    assert "ON_DEMAND" in problem


def test_infinite_retries_are_refused() -> None:
    (problem,) = streaming_problems({"consumer": {"maximumRetryAttempts": -1}})
    assert problem.startswith(
        "mlops:catalog.tables.0.streaming.consumer.maximumRetryAttempts: got -1; allowed: 0-10000"
    )


@pytest.mark.parametrize("age", [-1, 30, 604_801])
def test_record_age_outside_lambdas_limits_is_refused(age: int) -> None:
    (problem,) = streaming_problems({"consumer": {"maximumRecordAgeInSeconds": age}})
    assert problem.startswith(
        f"mlops:catalog.tables.0.streaming.consumer.maximumRecordAgeInSeconds: got {age}; allowed: 60-604800 seconds"
    )


def test_a_batch_over_ten_records_needs_a_batching_window() -> None:
    (problem,) = streaming_problems({"consumer": {"batchSize": 100, "maximumBatchingWindowInSeconds": 0}})
    assert "batchSize=100 needs maximumBatchingWindowInSeconds of at least 1" in problem


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("batchSize", 10_001, "10000"),
        ("parallelizationFactor", 11, "10"),
        ("maximumBatchingWindowInSeconds", 301, "300"),
    ],
)
def test_mapping_settings_outside_lambdas_ranges_are_refused(key: str, value: int, allowed: str) -> None:
    (problem,) = streaming_problems({"consumer": {key: value}})
    assert problem.startswith(f"mlops:catalog.tables.0.streaming.consumer.{key}: got {value}")
    assert allowed in problem


def test_an_unknown_streaming_key_is_named() -> None:
    (problem,) = streaming_problems({"retentionHour": 48})
    assert problem.startswith("mlops:catalog.tables.0.streaming.retentionHour: unknown key")
    assert "did you mean retentionHours?" in problem


def test_the_event_time_defaults_to_the_feature_spec_of_the_tables_model() -> None:
    config = parse_stack_config(apply_overrides(read_stack_values(STACK), {"catalog": with_streaming({})}), STACK)
    (plan,) = stream_plans(config)
    assert (plan.event_time_column, plan.jq_query) == ("event_time", "{dt:.event_time[0:10]}")
    assert plan.models == (MODEL,) and plan.raw_table == TABLE and not plan.reuses_declared_table


def test_an_event_time_column_the_table_lacks_is_refused() -> None:
    (problem,) = streaming_problems({"eventTimeColumn": "happened_at"})
    assert problem.startswith("mlops:catalog.tables.0.streaming.eventTimeColumn: ")
    assert "'happened_at' is not a column of table 'customer_activity'" in problem


def test_an_event_time_column_of_another_type_is_refused() -> None:
    (problem,) = streaming_problems({"eventTimeColumn": "sessions"})
    assert "event-time column 'sessions' is int" in problem and "timestamp, date, string" in problem


def test_a_table_no_model_reads_needs_an_explicit_event_time_column() -> None:
    models = [{**m, "sourceTable": None} for m in stack_models()]
    found = problems({"catalog": with_streaming({}), "models": models})
    assert any(
        p.startswith("mlops:catalog.tables.0.streaming.eventTimeColumn:") and "set streaming.eventTimeColumn" in p
        for p in found
    ), found


def test_an_error_prefix_inside_the_tables_prefix_is_refused() -> None:
    (problem,) = streaming_problems({"delivery": {"errorPrefix": "customer_activity/errors/"}})
    assert problem.startswith("mlops:catalog.tables.0.streaming.delivery.errorPrefix:")
    assert "overlaps the table's prefix 'customer_activity/'" in problem


def test_an_error_prefix_starting_with_a_slash_is_refused() -> None:
    (problem,) = streaming_problems({"delivery": {"errorPrefix": "/errors/"}})
    assert "must not start with '/'" in problem


def test_a_curated_table_with_a_dt_column_cannot_stream() -> None:
    catalog = with_streaming({})
    catalog["tables"][0]["columns"].append({"name": "dt", "type": "string"})
    catalog["tables"][0]["partitionKeys"] = []
    found = problems({"catalog": catalog})
    assert any("has a column 'dt'" in p for p in found), found


def test_a_raw_table_needs_one_date_partition_key() -> None:
    (problem,) = streaming_problems({}, zone="raw", partitionKeys=[])
    assert "needs exactly one partition key of type string or date" in problem


# --- the stream ---------------------------------------------------------------------------------


def test_the_stream_is_kms_encrypted_with_the_platform_key(streaming_plan: OfflinePlan) -> None:
    stream = one(streaming_plan, STREAM)
    assert stream.inputs["encryptionType"] == "KMS"
    assert stream.inputs["kmsKeyId"] == platform_key_arn(streaming_plan)
    assert stream.inputs["streamModeDetails"] == {"streamMode": "ON_DEMAND"}
    assert stream.inputs["retentionPeriod"] == 48
    assert "shardCount" not in stream.inputs
    assert stream.inputs["name"] == f"{prefix(streaming_plan)}-customer-activity"
    assert stream.inputs["tags"]["Table"] == TABLE


def test_a_provisioned_stream_has_its_shards() -> None:
    plan = run_program(STACK, overrides={"catalog": with_streaming({"capacityMode": "PROVISIONED", "shardCount": 3})})
    stream = one(plan, STREAM)
    assert (stream.inputs["streamModeDetails"], stream.inputs["shardCount"]) == ({"streamMode": "PROVISIONED"}, 3)


# --- Firehose into the raw zone -----------------------------------------------------------------


def destination(plan: OfflinePlan) -> dict[str, Any]:
    return one(plan, FIREHOSE).inputs["extendedS3Configuration"]


def test_firehose_reads_the_stream_and_has_no_encryption_of_its_own(streaming_plan: OfflinePlan) -> None:
    delivery = one(streaming_plan, FIREHOSE)
    source = delivery.inputs["kinesisSourceConfiguration"]
    assert source["kinesisStreamArn"] == one(streaming_plan, STREAM).state["arn"]
    assert source["roleArn"] == named(streaming_plan, ROLE, "delivery-role").state["arn"]
    # AWS refuses server-side encryption on a Kinesis-sourced delivery stream: the source stream's applies.
    assert "serverSideEncryption" not in delivery.inputs
    assert delivery.inputs["destination"] == "extended_s3"


def test_firehose_writes_parquet_partitioned_by_event_date(streaming_plan: OfflinePlan) -> None:
    s3 = destination(streaming_plan)
    assert s3["bucketArn"] == f"arn:aws:s3:::{prefix(streaming_plan)}-raw"
    assert s3["prefix"] == "customer_activity/dt=!{partitionKeyFromQuery:dt}/"
    assert s3["dynamicPartitioningConfiguration"]["enabled"] is True
    (processor,) = s3["processingConfiguration"]["processors"]
    parameters = {p["parameterName"]: p["parameterValue"] for p in processor["parameters"]}
    assert processor["type"] == "MetadataExtraction"
    assert parameters == {"JsonParsingEngine": "JQ-1.6", "MetadataExtractionQuery": "{dt:.event_time[0:10]}"}
    conversion = s3["dataFormatConversionConfiguration"]
    assert conversion["enabled"] is True
    assert "openXJsonSerDe" in conversion["inputFormatConfiguration"]["deserializer"]
    assert conversion["outputFormatConfiguration"]["serializer"]["parquetSerDe"]["compression"] == "SNAPPY"
    assert s3["compressionFormat"] == "UNCOMPRESSED"  # the Parquet serializer compresses
    schema = conversion["schemaConfiguration"]
    assert (schema["databaseName"], schema["tableName"]) == ("acme_mlops_dev_raw", TABLE)
    assert schema["versionId"] == "LATEST"


def test_errors_go_to_their_own_prefix_by_error_type(streaming_plan: OfflinePlan) -> None:
    s3 = destination(streaming_plan)
    error_prefix = s3["errorOutputPrefix"]
    assert error_prefix.startswith("_stream_errors/customer_activity/!{firehose:error-output-type}/")
    assert not error_prefix.startswith("customer_activity/")
    assert "partitionKeyFromQuery" not in error_prefix


def test_buffering_comes_from_the_stack(streaming_plan: OfflinePlan) -> None:
    s3 = destination(streaming_plan)
    assert (s3["bufferingSize"], s3["bufferingInterval"]) == (64, 120)


def test_delivered_objects_use_the_platform_key(streaming_plan: OfflinePlan) -> None:
    assert destination(streaming_plan)["kmsKeyArn"] == platform_key_arn(streaming_plan)


def test_firehose_logs_to_an_encrypted_log_group_with_the_stacks_retention(streaming_plan: OfflinePlan) -> None:
    logging = destination(streaming_plan)["cloudwatchLoggingOptions"]
    group = named(streaming_plan, LOG_GROUP, "delivery-logs")
    stream = one(streaming_plan, LOG_STREAM)
    assert logging == {
        "enabled": True,
        "logGroupName": group.inputs["name"],
        "logStreamName": stream.inputs["name"],
    }
    assert stream.inputs["logGroupName"] == group.inputs["name"]
    assert group.inputs["kmsKeyId"] == platform_key_arn(streaming_plan)
    assert group.inputs["retentionInDays"] == streaming_plan.config.log_retention_days


def test_firehose_waits_for_its_role_policy_log_stream_and_table(streaming_plan: OfflinePlan) -> None:
    waits = set(one(streaming_plan, FIREHOSE).dependencies)
    for resource in (
        named(streaming_plan, ROLE_POLICY, "delivery-role-policy"),
        one(streaming_plan, LOG_STREAM),
        one(streaming_plan, GLUE_TABLE),
    ):
        assert resource.urn in waits, resource.name


def test_the_raw_table_mirrors_the_declared_columns_with_a_projected_date(streaming_plan: OfflinePlan) -> None:
    table = one(streaming_plan, GLUE_TABLE)
    declared = next(t for t in streaming_plan.config.catalog.tables if t.name == TABLE)
    assert table.inputs["name"] == TABLE and table.inputs["databaseName"] == "acme_mlops_dev_raw"
    columns = [(c["name"], c["type"]) for c in table.inputs["storageDescriptor"]["columns"]]
    assert columns == [(c.name, c.type) for c in declared.columns]
    assert [k["name"] for k in table.inputs["partitionKeys"]] == ["dt"]
    location = f"s3://{prefix(streaming_plan)}-raw/customer_activity/"
    assert table.inputs["storageDescriptor"]["location"] == location
    parameters = table.inputs["parameters"]
    assert parameters["projection.enabled"] == "true" and parameters["projection.dt.type"] == "date"
    assert parameters["storage.location.template"] == f"{location}dt=${{dt}}/"


def test_the_raw_crawler_skips_what_the_stream_delivers(streaming_plan: OfflinePlan) -> None:
    (raw,) = [c for c in streaming_plan.of_type(CRAWLER) if c.inputs["name"].endswith("raw-crawler")]
    assert raw.inputs["s3Targets"][0]["exclusions"] == ["_stream_errors/customer_activity/**", "customer_activity/**"]


def test_a_raw_table_streams_through_its_own_declaration() -> None:
    catalog = with_streaming({}, zone="raw")
    models = copy.deepcopy(stack_models())
    for model in models:  # new-data retraining watches curated tables only
        model["training"].pop("retrainOnNewData", None)
    plan = run_program(STACK, overrides={"catalog": catalog, "models": models})
    assert of(plan, GLUE_TABLE) == []
    assert destination(plan)["dataFormatConversionConfiguration"]["schemaConfiguration"]["tableName"] == TABLE
    # Nothing registers the days Firehose writes (the raw crawler skips the prefix): the declared table projects them
    (declared,) = [t for t in plan.of_type(GLUE_TABLE) if t.inputs["name"] == TABLE]
    parameters = declared.inputs["parameters"]
    assert (parameters["projection.enabled"], parameters["projection.dt.format"]) == ("true", "yyyy-MM-dd")
    assert parameters["storage.location.template"] == declared.inputs["storageDescriptor"]["location"] + "dt=${dt}/"


# --- least privilege ----------------------------------------------------------------------------


def test_firehose_role_reads_only_its_stream_and_table_and_writes_only_its_prefixes(
    streaming_plan: OfflinePlan,
) -> None:
    statements = role_policy(streaming_plan, "delivery-role")
    stream_arn = one(streaming_plan, STREAM).state["arn"]
    raw = f"arn:aws:s3:::{prefix(streaming_plan)}-raw"
    region, key = streaming_plan.config.region, platform_key_arn(streaming_plan)
    assert resources_of(statements["SourceStream"]) == [stream_arn]
    assert not any(a.startswith("kinesis:Put") for a in statements["SourceStream"]["Action"])
    assert statements["SourceStreamKey"]["Action"] == ["kms:Decrypt"]
    assert statements["SourceStreamKey"]["Condition"]["StringEquals"] == {
        "kms:ViaService": f"kinesis.{region}.amazonaws.com",
        "kms:EncryptionContext:aws:kinesis:arn": stream_arn,
    }
    assert statements["TableSchema"]["Action"] == ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]
    assert resources_of(statements["TableSchema"])[-1].endswith(f":table/acme_mlops_dev_raw/{TABLE}")
    assert resources_of(statements["RawZoneObjects"]) == [
        f"{raw}/customer_activity/*",
        f"{raw}/_stream_errors/customer_activity/*",
    ]
    assert statements["RawZoneObjects"]["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert resources_of(statements["RawZoneBucket"]) == [raw]
    assert statements["RawZoneKey"]["Condition"]["StringEquals"] == {
        "kms:ViaService": f"s3.{region}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": raw,  # S3 Bucket Keys: the context is the bucket
    }
    assert resources_of(statements["RawZoneKey"]) == [key]
    group = named(streaming_plan, LOG_GROUP, "delivery-logs").state["arn"]
    assert resources_of(statements["DeliveryLogs"]) == [f"{group}:log-stream:*"]


def test_firehose_role_trusts_firehose_only(streaming_plan: OfflinePlan) -> None:
    trust = json.loads(named(streaming_plan, ROLE, "delivery-role").inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": ["firehose.amazonaws.com"]}]


def test_consumer_role_is_scoped_to_its_stream_feature_group_and_queue(streaming_plan: OfflinePlan) -> None:
    statements = role_policy(streaming_plan, "customer-churn-online-role")
    group = next(r for r in streaming_plan.of_type("aws:sagemaker/featureGroup:FeatureGroup"))
    assert resources_of(statements["SourceStream"]) == [one(streaming_plan, STREAM).state["arn"]]
    assert statements["OnlineFeatures"]["Action"] == ["sagemaker:PutRecord"]
    assert resources_of(statements["OnlineFeatures"]) == [group.state["arn"]]
    assert statements["FailureQueue"]["Action"] == ["sqs:SendMessage"]
    assert resources_of(statements["FailureQueue"]) == [one(streaming_plan, QUEUE).state["arn"]]
    assert resources_of(statements["PlatformKeyUse"]) == [platform_key_arn(streaming_plan)]
    assert set(statements["PlatformKeyUse"]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    function = one(streaming_plan, LAMBDA_FUNCTION).inputs["name"]
    assert resources_of(statements["OwnLogs"])[0].endswith(f":log-group:/aws/lambda/{function}:*")


# --- the consumer -------------------------------------------------------------------------------


def test_the_consumer_runs_the_update_online_features_archive(streaming_plan: OfflinePlan) -> None:
    function = one(streaming_plan, LAMBDA_FUNCTION)
    assert function.inputs["handler"] == "app.handler"
    assert function.inputs["name"] == f"{prefix(streaming_plan)}-{MODEL}-online"
    assert function.inputs["kmsKeyArn"] == platform_key_arn(streaming_plan)
    assert function.inputs["deadLetterConfig"]["targetArn"] == one(streaming_plan, QUEUE).state["arn"]


def test_the_consumers_environment_is_the_agreed_contract(streaming_plan: OfflinePlan) -> None:
    variables = one(streaming_plan, LAMBDA_FUNCTION).inputs["environment"]["variables"]
    group = next(r for r in streaming_plan.of_type("aws:sagemaker/featureGroup:FeatureGroup"))
    assert json.loads(variables["FEATURE_TARGETS"]) == [
        {"model": MODEL, "featureGroupName": group.inputs["featureGroupName"], "featureSpec": "customer-churn"}
    ]
    assert variables["FAILURE_QUEUE_URL"] == one(streaming_plan, QUEUE).state["url"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == FUNCTION == "update_online_features"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE == "MLOps/Streaming"
    assert variables["PUT_MAX_ATTEMPTS"] == "4"


def test_put_max_attempts_is_left_to_the_code_by_default() -> None:
    plan = run_program(STACK, overrides={"catalog": with_streaming({})})
    assert "PUT_MAX_ATTEMPTS" not in one(plan, LAMBDA_FUNCTION).inputs["environment"]["variables"]


def test_the_event_source_mapping_reports_item_failures_and_bounds_retries(streaming_plan: OfflinePlan) -> None:
    mapping = one(streaming_plan, MAPPING).inputs
    assert mapping["eventSourceArn"] == one(streaming_plan, STREAM).state["arn"]
    assert mapping["functionName"] == one(streaming_plan, LAMBDA_FUNCTION).state["arn"]
    assert mapping["functionResponseTypes"] == list(FUNCTION_RESPONSE_TYPES) == ["ReportBatchItemFailures"]
    assert mapping["destinationConfig"]["onFailure"]["destinationArn"] == one(streaming_plan, QUEUE).state["arn"]
    assert mapping["startingPosition"] == "TRIM_HORIZON"
    assert mapping["bisectBatchOnFunctionError"] is True
    expected = {
        "batchSize": 50,
        "maximumBatchingWindowInSeconds": 2,
        "maximumRetryAttempts": 5,
        "maximumRecordAgeInSeconds": 3600,
        "parallelizationFactor": 2,
    }
    assert {k: mapping[k] for k in expected} == expected


def test_the_mapping_waits_for_the_role_policy(streaming_plan: OfflinePlan) -> None:
    policy = named(streaming_plan, ROLE_POLICY, "customer-churn-online-role-policy")
    assert policy.urn in one(streaming_plan, MAPPING).dependencies


def test_the_failure_queue_is_encrypted_kept_two_weeks_and_tls_only(streaming_plan: OfflinePlan) -> None:
    queue = one(streaming_plan, QUEUE)
    assert queue.inputs["kmsMasterKeyId"] == platform_key_arn(streaming_plan)
    assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    (statement,) = json.loads(one(streaming_plan, QUEUE_POLICY).inputs["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_no_consumer_without_an_online_store() -> None:
    models = copy.deepcopy(stack_models())
    for model in models:
        model["featureStore"] = {**model["featureStore"], "onlineStore": False, "onlineTtlDays": None}
        model["featureStore"].pop("onlineTtlDays")
        if model.get("serving"):  # entity requests read the online store
            model["serving"]["requestMode"] = "rows"
            model["serving"].pop("onlineLookup", None)
    plan = run_program(STACK, overrides={"catalog": with_streaming({}), "models": models})
    assert len(of(plan, STREAM)) == 1 and len(of(plan, FIREHOSE)) == 1
    assert of(plan, LAMBDA_FUNCTION) == [] and of(plan, MAPPING) == []
    assert plan.outputs["streamConsumers"] == {}


# --- alarms -------------------------------------------------------------------------------------


def test_every_streaming_alarm_notifies_the_alerts_topic(streaming_plan: OfflinePlan) -> None:
    alarms = of(streaming_plan, ALARM)
    metrics = sorted(a.inputs.get("metricName", "(metric math)") for a in alarms)
    assert metrics == [
        "(metric math)",  # the consumer stalled: records in, no invocation
        "ApproximateNumberOfMessagesVisible",
        "DeliveryToS3.DataFreshness",
        "Errors",
        "FailedConversion.Records",
        "IteratorAge",
    ]
    alerts = topic_arn(streaming_plan, "alerts")
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [alerts] and alarm.inputs["okActions"] == [alerts]
        assert alarm.inputs["treatMissingData"] == "notBreaching"
        (anchor,) = [a for a in stream_alarms.ANCHORS if f"docs/runbook.md#{a}" in alarm.inputs["alarmDescription"]]
        assert anchor


def test_alarm_thresholds_follow_the_settings(streaming_plan: OfflinePlan) -> None:
    by_metric = {a.inputs["metricName"]: a for a in of(streaming_plan, ALARM) if "metricName" in a.inputs}
    assert by_metric["IteratorAge"].inputs["threshold"] == 300 * 1000  # min(5 min, half of 3600 s), in ms
    # Twice Firehose's documented worst delay with dynamic partitioning (1.5 x the 120 s interval).
    assert by_metric["DeliveryToS3.DataFreshness"].inputs["threshold"] == 360
    queue = one(streaming_plan, QUEUE)
    assert by_metric["ApproximateNumberOfMessagesVisible"].inputs["dimensions"] == {"QueueName": queue.inputs["name"]}
    assert by_metric["ApproximateNumberOfMessagesVisible"].inputs["threshold"] == 1


def test_a_consumer_that_is_not_invoked_while_records_arrive_alarms(streaming_plan: OfflinePlan) -> None:
    """A disabled mapping publishes no IteratorAge and no Errors: only records-in against invocations sees it."""
    (stalled,) = [a for a in of(streaming_plan, ALARM) if "metricQueries" in a.inputs]
    queries = {q["id"]: q for q in stalled.inputs["metricQueries"]}
    incoming, invocations = queries["incoming"]["metric"], queries["invocations"]["metric"]
    assert (incoming["namespace"], incoming["metricName"]) == ("AWS/Kinesis", "IncomingRecords")
    assert incoming["dimensions"] == {"StreamName": one(streaming_plan, STREAM).inputs["name"]}
    assert (invocations["namespace"], invocations["metricName"]) == ("AWS/Lambda", "Invocations")
    assert invocations["dimensions"] == {"FunctionName": one(streaming_plan, LAMBDA_FUNCTION).inputs["name"]}
    assert queries["stalled"]["returnData"] and "FILL(invocations, 0) == 0" in queries["stalled"]["expression"]
    assert (stalled.inputs["threshold"], stalled.inputs["evaluationPeriods"]) == (1, 3)


def test_the_iterator_age_threshold_is_below_the_maximum_record_age() -> None:
    assert stream_alarms.iterator_age_threshold_seconds(120) == 60
    assert stream_alarms.iterator_age_threshold_seconds(86_400) == stream_alarms.ITERATOR_AGE_SECONDS


# --- the whole plan -----------------------------------------------------------------------------


def test_outputs_name_streams_and_delivery_streams_by_table_and_consumers_by_model(
    streaming_plan: OfflinePlan,
) -> None:
    outputs = streaming_plan.outputs
    assert outputs["streams"] == {TABLE: one(streaming_plan, STREAM).inputs["name"]}
    assert outputs["deliveryStreams"] == {TABLE: one(streaming_plan, FIREHOSE).inputs["name"]}
    assert outputs["streamConsumers"] == {MODEL: one(streaming_plan, LAMBDA_FUNCTION).inputs["name"]}


def test_no_streaming_resources_when_no_table_streams(batch_plan: OfflinePlan) -> None:
    # (the responders' new-data queue has an event source mapping of its own: SQS, not a stream)
    assert not [
        r
        for r in batch_plan.resources
        if r.component == COMPONENT
        or (r.type in STREAMING_TYPES and not str(r.inputs.get("eventSourceArn", "")).startswith("arn:aws:sqs:"))
    ]
    assert (batch_plan.outputs["streams"], batch_plan.outputs["deliveryStreams"]) == ({}, {})
    assert batch_plan.outputs["streamConsumers"] == {}
    (raw,) = [c for c in batch_plan.of_type(CRAWLER) if c.inputs["name"].endswith("raw-crawler")]
    assert "exclusions" not in raw.inputs["s3Targets"][0]


def test_the_streaming_plan_meets_aws_api_models(streaming_plan: OfflinePlan) -> None:
    report = contract_report(streaming_plan)
    assert report.violations == () and report.gaps == ()


def test_the_streaming_plan_passes_every_policy(streaming_plan: OfflinePlan) -> None:
    failed = {r.policy: r.violations for r in check_plan(streaming_plan) if not r.passed}
    assert failed == {}


def test_settings_sections_take_their_documented_defaults() -> None:
    assert DeliverySettings().error_prefix is None
    assert ConsumerSettings().put_max_attempts is None
