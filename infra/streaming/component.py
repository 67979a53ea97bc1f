"""Streaming ingestion of one catalog table, and the online-feature consumers that read its stream.

Per streamed table (``catalog.tables[].streaming``):

- a Kinesis data stream, server-side encrypted with the platform key (``encryption_type=KMS``), in the configured
  capacity mode and retention;
- a Firehose delivery stream reading it (a Kinesis-sourced delivery stream has no encryption of its own: AWS refuses
  ``DeliveryStreamEncryptionConfigurationInput`` for ``KinesisStreamAsSource``, the records stay encrypted by the
  source stream) into ``s3://<raw bucket>/<table prefix>dt=<event date>/`` as Snappy Parquet, converted through the
  raw-zone Glue table with OpenX's JSON deserializer (it parses ISO-8601 ``...T...Z`` timestamps) and partitioned by
  the event date that a JQ query cuts from the record (dynamic partitioning: the record's own date, not its arrival
  time, which ``!{timestamp:...}`` would give, so a late record lands in its own day's partition). Records it cannot
  convert or partition go to ``<error prefix><error type>/dt=<arrival date>/``; objects are SSE-KMS with the platform
  key; errors are logged to an encrypted log group;
- the raw-zone Glue table (``<project>_<env>_raw.<table>``, the declared table's columns, partition ``dt`` with
  partition projection so Athena sees new days without a crawler), unless the declared table is itself in the raw
  zone, in which case it is the schema;
- a least-privilege role for Firehose and alarms on delivery freshness and format-conversion failures.

Per model whose ``sourceTable`` it is and whose feature group has an online store: the ``update_online_features``
function (code in ``lambdas/update_online_features/``), its KMS-encrypted failure queue (on-failure destination of
the event source mapping, the dead-letter queue of asynchronous invocations, and where the function sends the
records it rejects itself), its encrypted log group, its role and alarms on iterator age, errors and the queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.alarms import metric_alarm
from infra.catalog import parquet_storage_descriptor
from infra.foundation import Foundation
from infra.logs import encrypted_log_group, lambda_log_group_name
from infra.naming import Kind
from infra.responders.component import ARCHIVE_DIR, DLQ_RETENTION_SECONDS, packaged_function
from infra.responders.environment import compact_json
from infra.responders.iam import sqs_send
from infra.responders.triggers import queue_policy
from infra.streaming import alarms as stream_alarms
from infra.streaming import iam as stream_iam
from infra.streaming.settings import PARQUET_COMPRESSION, StreamPlan, raw_table_parameters

if TYPE_CHECKING:
    from infra.context import StackContext

FUNCTION = "update_online_features"
"""The consumer's folder under ``lambdas/`` (its archive) and its ``POWERTOOLS_SERVICE_NAME``."""
METRICS_NAMESPACE = "MLOps/Streaming"
LOG_LEVEL = "INFO"
CONSUMER_TIMEOUT_SECONDS = 60
CONSUMER_MEMORY_MB = 256
FUNCTION_RESPONSE_TYPES: tuple[str, ...] = ("ReportBatchItemFailures",)
"""The function reports the records it failed on; Lambda retries from the first of them, not the whole batch."""

DELIVERY_LOG_STREAM = "DestinationDelivery"
"""The log stream Firehose writes S3 delivery errors to (the name the console uses); Firehose creates neither the
group nor the stream through the API."""
DYNAMIC_PARTITIONING_RETRY_SECONDS = 300
"""How long Firehose retries a failed S3 delivery of a partition before it writes the records to the error prefix."""
JQ_ENGINE = "JQ-1.6"
# With data format conversion the serializer compresses; the destination's own compression must stay UNCOMPRESSED.
DESTINATION_COMPRESSION = "UNCOMPRESSED"


@dataclass(frozen=True, kw_only=True)
class OnlineFeatureTarget:
    """A model whose online features a stream updates: its feature group (from the feature store layer)."""

    model: str
    feature_spec: str
    feature_group_name: pulumi.Input[str]
    feature_group_arn: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class StreamingTableArgs:
    """Inputs of :class:`StreamingTable`: the resolved plan of one streamed table and the models it feeds.

    ``targets`` must hold exactly the models of ``plan.models`` (sourceTable = the table, online store on).
    """

    context: StackContext
    foundation: Foundation
    plan: StreamPlan
    targets: tuple[OnlineFeatureTarget, ...] = ()
    archive_dir: Path = field(default=ARCHIVE_DIR)


@dataclass(frozen=True)
class Consumer:
    """One model's online-feature consumer and what belongs to it."""

    function: aws.lambda_.Function
    failure_queue: aws.sqs.Queue
    log_group: aws.cloudwatch.LogGroup
    role: iam.ServiceRole
    mapping: aws.lambda_.EventSourceMapping


class StreamingTable(pulumi.ComponentResource):
    """A table's Kinesis stream, its Firehose delivery into the raw zone and the models' online-feature consumers.

    Outputs: ``table_name``, ``stream_name``, ``stream_arn``, ``delivery_stream_name``, ``raw_table_name`` and ``consumers``
    (keyed by model: the function name). Raises ``infra.naming.NamingError`` when a derived name breaks AWS's
    limits and ``ValueError`` when ``targets`` do not match the plan's models.
    """

    table_name: str
    stream: aws.kinesis.Stream
    stream_name: pulumi.Output[str]
    stream_arn: pulumi.Output[str]
    raw_table: aws.glue.CatalogTable | None
    raw_table_name: str
    delivery_role: iam.ServiceRole
    delivery_log_group: aws.cloudwatch.LogGroup
    delivery_stream: aws.kinesis.FirehoseDeliveryStream
    delivery_stream_name: pulumi.Output[str]
    consumers: dict[str, Consumer]
    consumer_function_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: StreamingTableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:streaming:StreamingTable", name, None, opts)
        plan, ctx, foundation = args.plan, args.context, args.foundation
        if sorted(t.model for t in args.targets) != sorted(plan.models):
            raise ValueError(
                f"table '{plan.table.name}': consumers for {sorted(t.model for t in args.targets)}, but the models "
                f"reading it with an online store are {sorted(plan.models)}"
            )
        self._args, self._name = args, name
        self.table_name = plan.table.name
        thing = plan.table.name.replace("_", "-")
        tags = ctx.naming.tags(Table=plan.table.name)
        settings = plan.settings
        key = foundation.key_arn

        self.stream = aws.kinesis.Stream(
            f"{name}-stream",
            name=ctx.naming.name(thing, Kind.KINESIS_STREAM),
            retention_period=settings.retention_hours,
            shard_count=settings.shard_count,
            stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(stream_mode=settings.capacity_mode),
            encryption_type="KMS",
            kms_key_id=key,
            tags=tags,
            # Records waiting for Firehose and the consumers live only here.
            opts=ctx.stateful(self),
        )
        self.stream_name = self.stream.name
        self.stream_arn = self.stream.arn

        raw = foundation.buckets["raw"]
        raw_database = foundation.databases["raw"]
        location = pulumi.Output.concat("s3://", raw.name, "/", plan.data_prefix)
        self.raw_table_name = plan.raw_table
        self.raw_table = None if plan.reuses_declared_table else self._raw_table(location, raw_database)

        delivery_name = ctx.naming.name(f"{thing}-raw", Kind.FIREHOSE)
        log_group_name = f"/aws/kinesisfirehose/{delivery_name}"
        self.delivery_log_group = encrypted_log_group(
            f"{name}-delivery-logs",
            name=log_group_name,
            retention_days=ctx.config.log_retention_days,
            key_arn=key,
            tags=tags,
            parent=self,
        )
        log_stream = aws.cloudwatch.LogStream(
            f"{name}-delivery-log-stream",
            name=DELIVERY_LOG_STREAM,
            log_group_name=self.delivery_log_group.name,
            opts=pulumi.ResourceOptions(parent=self.delivery_log_group),
        )
        region, account = ctx.config.region, foundation.account_id
        self.delivery_role = iam.service_role(
            f"{name}-delivery-role",
            naming=ctx.naming,
            thing=f"{thing}-firehose",
            # No aws:SourceAccount condition: Firehose's guide documents sts:ExternalId for its trust policy, not
            # aws:SourceAccount; a condition the service does not send would make CreateDeliveryStream fail.
            services=["firehose.amazonaws.com"],
            statements=[
                stream_iam.kinesis_read("SourceStream", [self.stream.arn]),
                stream_iam.kms_decrypt_via_kinesis("SourceStreamKey", key, region, self.stream.arn),
                stream_iam.glue_schema_read("TableSchema", region, account, raw_database, plan.raw_table),
                *stream_iam.s3_delivery("RawZone", raw.arn, [plan.data_prefix, plan.error_prefix]),
                stream_iam.kms_s3_objects("RawZoneKey", key, region, raw.arn),
                stream_iam.logs_put("DeliveryLogs", self.delivery_log_group.arn),
            ],
            tags=tags,
            parent=self,
            description=f"{ctx.naming.prefix} delivery of the {plan.table.name} stream into the raw zone",
        )
        waits: list[pulumi.Resource] = [self.delivery_role.policy, log_stream]
        if self.raw_table is not None:
            waits.append(self.raw_table)
        self.delivery_stream = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-delivery",
            name=delivery_name,
            destination="extended_s3",
            kinesis_source_configuration=aws.kinesis.FirehoseDeliveryStreamKinesisSourceConfigurationArgs(
                kinesis_stream_arn=self.stream.arn, role_arn=self.delivery_role.arn
            ),
            # No server_side_encryption: the source stream encrypts the records (see the module docstring).
            extended_s3_configuration=self._destination(raw.arn, raw_database, log_group_name),
            tags=tags,
            # CreateDeliveryStream assumes the role and reads the stream and the table at once.
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits),
        )
        self.delivery_stream_name = self.delivery_stream.name
        actions: dict[str, Any] = {
            "alarm_actions": [foundation.alerts_topic_arn],
            "ok_actions": [foundation.alerts_topic_arn],
        }
        metric_alarm(
            f"{name}-delivery-freshness",
            ctx.naming.name(f"{thing}-delivery-freshness", Kind.ALARM),
            stream_alarms.delivery_freshness(
                plan.table.name,
                self.delivery_stream.name,
                stream_alarms.freshness_threshold_seconds(settings.delivery.buffer_interval_seconds),
            ),
            tags=tags,
            parent=self.delivery_stream,
            **actions,
        )
        metric_alarm(
            f"{name}-format-conversion",
            ctx.naming.name(f"{thing}-format-conversion", Kind.ALARM),
            stream_alarms.format_conversion_failures(plan.table.name, self.delivery_stream.name),
            tags=tags,
            parent=self.delivery_stream,
            **actions,
        )

        self.consumers = {target.model: self._consumer(target, actions) for target in args.targets}
        self.consumer_function_names = {model: c.function.name for model, c in self.consumers.items()}
        self.register_outputs(
            {
                "stream_name": self.stream_name,
                "stream_arn": self.stream_arn,
                "delivery_stream_name": self.delivery_stream_name,
                "raw_table_name": self.raw_table_name,
                "consumers": self.consumer_function_names,
            }
        )

    # --- parts ---------------------------------------------------------------------------------

    def _raw_table(self, location: pulumi.Output[str], database: pulumi.Input[str]) -> aws.glue.CatalogTable:
        """The raw-zone table the delivery stream converts through: the declared columns, partition ``dt``."""
        plan, name = self._args.plan, self._name
        key = plan.partition_key
        return aws.glue.CatalogTable(
            f"{name}-raw-table",
            name=plan.raw_table,
            database_name=database,
            description=f"Stream of {plan.table.zone}.{plan.table.name} as delivered by Firehose (Parquet, by event date)",
            table_type="EXTERNAL_TABLE",
            parameters=location.apply(lambda uri: raw_table_parameters(uri, key)),
            partition_keys=[
                aws.glue.CatalogTablePartitionKeyArgs(name=key, type="string", comment="Event date, YYYY-MM-DD (UTC)")
            ],
            storage_descriptor=parquet_storage_descriptor(location, plan.table.columns),
            # A definition over data in the (protected) raw bucket, like the declared tables: replaceable.
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _destination(
        self, bucket_arn: pulumi.Input[str], database: pulumi.Input[str], log_group_name: str
    ) -> aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs:
        """S3 delivery: dynamic partitioning by event date, Parquet through the raw table, SSE-KMS, error prefix."""
        args, plan = self._args, self._args.plan
        delivery, role = plan.settings.delivery, self.delivery_role.arn
        conversion = aws.kinesis
        return aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
            bucket_arn=bucket_arn,
            role_arn=role,
            prefix=f"{plan.data_prefix}{plan.partition_key}=!{{partitionKeyFromQuery:{plan.partition_key}}}/",
            # Required with dynamic partitioning; error-output-type keeps conversion and partitioning failures apart.
            # The arrival date (timestamp namespace): a record that failed partitioning has no event date.
            error_output_prefix=f"{plan.error_prefix}!{{firehose:error-output-type}}/dt=!{{timestamp:yyyy-MM-dd}}/",
            buffering_size=delivery.buffer_size_mb,
            buffering_interval=delivery.buffer_interval_seconds,
            compression_format=DESTINATION_COMPRESSION,
            kms_key_arn=args.foundation.key_arn,
            cloudwatch_logging_options=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptionsArgs(
                enabled=True, log_group_name=log_group_name, log_stream_name=DELIVERY_LOG_STREAM
            ),
            dynamic_partitioning_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationDynamicPartitioningConfigurationArgs(
                enabled=True, retry_duration=DYNAMIC_PARTITIONING_RETRY_SECONDS
            ),
            processing_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationArgs(
                enabled=True,
                processors=[
                    aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorArgs(
                        type="MetadataExtraction",
                        parameters=[
                            aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorParameterArgs(
                                parameter_name="JsonParsingEngine", parameter_value=JQ_ENGINE
                            ),
                            aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorParameterArgs(
                                parameter_name="MetadataExtractionQuery", parameter_value=plan.jq_query
                            ),
                        ],
                    )
                ],
            ),
            data_format_conversion_configuration=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationArgs(
                enabled=True,
                input_format_configuration=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationArgs(
                    deserializer=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializerArgs(
                        # OpenX: ISO-8601 'yyyy-MM-ddTHH:mm:ss[.S]Z' timestamps (what the feature specs write) parse.
                        open_x_json_ser_de=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializerOpenXJsonSerDeArgs()
                    )
                ),
                output_format_configuration=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationArgs(
                    serializer=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializerArgs(
                        parquet_ser_de=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializerParquetSerDeArgs(
                            compression=PARQUET_COMPRESSION
                        )
                    )
                ),
                schema_configuration=conversion.FirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationSchemaConfigurationArgs(
                    database_name=database,
                    table_name=plan.raw_table,
                    role_arn=role,
                    region=args.context.config.region,
                    catalog_id=args.foundation.account_id,
                    version_id="LATEST",
                ),
            ),
        )

    def _consumer(self, target: OnlineFeatureTarget, actions: Mapping[str, Any]) -> Consumer:
        """The model's ``update_online_features`` function, failure queue, log group, role, mapping and alarms."""
        args, ctx, name = self._args, self._args.context, self._name
        settings, foundation = args.plan.settings.consumer, args.foundation
        thing = f"{target.model}-online"
        part = f"{name}-{target.model}-online"
        tags = ctx.naming.tags(Model=target.model, Table=args.plan.table.name)
        function_name = ctx.naming.name(thing, Kind.LAMBDA)
        log_group_name = lambda_log_group_name(function_name)

        queue = aws.sqs.Queue(
            f"{part}-failures",
            name=ctx.naming.name(f"{thing}-failures", Kind.SQS_QUEUE),
            kms_master_key_id=foundation.key_arn,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        queue_policy(f"{part}-failures-policy", queue, "lambda.amazonaws.com", None)  # TLS only
        log_group = encrypted_log_group(
            f"{part}-logs",
            name=log_group_name,
            retention_days=ctx.config.log_retention_days,
            key_arn=foundation.key_arn,
            tags=tags,
            parent=self,
        )
        role = iam.service_role(
            f"{part}-role",
            naming=ctx.naming,
            thing=thing,
            # No aws:SourceAccount condition: Lambda assumes execution roles without that context key.
            services=["lambda.amazonaws.com"],
            statements=[
                # The event source mapping reads the stream as the function's execution role.
                stream_iam.kinesis_read("SourceStream", [self.stream.arn]),
                stream_iam.feature_put("OnlineFeatures", [target.feature_group_arn]),
                # Rejected records (the function), discarded batches (on-failure destination), failed async events.
                sqs_send("FailureQueue", [queue.arn]),
                iam.logs_write("OwnLogs", [foundation.arn("logs", f"log-group:{log_group_name}:*")]),
                stream_iam.kms_consumer("PlatformKeyUse", foundation.key_arn),
            ],
            tags=tags,
            parent=self,
            description=f"{ctx.naming.prefix} online features of {target.model} from the {args.plan.table.name} stream",
        )
        targets = [
            {"model": target.model, "featureGroupName": target.feature_group_name, "featureSpec": target.feature_spec}
        ]
        environment: dict[str, pulumi.Input[str]] = {
            "FEATURE_TARGETS": compact_json(targets),
            "FAILURE_QUEUE_URL": queue.url,
            "POWERTOOLS_SERVICE_NAME": FUNCTION,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": LOG_LEVEL,
        }
        if settings.put_max_attempts is not None:
            environment["PUT_MAX_ATTEMPTS"] = str(settings.put_max_attempts)
        function = packaged_function(
            part,
            function=FUNCTION,
            archive_dir=args.archive_dir,
            name=function_name,
            description=f"Updates the online features of {target.model} from the {args.plan.table.name} stream",
            role=role,
            timeout_seconds=CONSUMER_TIMEOUT_SECONDS,
            memory_mb=CONSUMER_MEMORY_MB,
            environment=environment,
            key_arn=foundation.key_arn,
            # The stream's failures go to the mapping's on-failure destination; an asynchronous invocation (a manual
            # replay with --invocation-type Event) that fails lands in the same queue rather than vanishing.
            dead_letter_arn=queue.arn,
            log_group=log_group,
            tags=tags,
            parent=self,
        )
        mapping = aws.lambda_.EventSourceMapping(
            f"{part}-source",
            event_source_arn=self.stream.arn,
            function_name=function.arn,
            starting_position=settings.starting_position,
            batch_size=settings.batch_size,
            maximum_batching_window_in_seconds=settings.maximum_batching_window_in_seconds,
            maximum_retry_attempts=settings.maximum_retry_attempts,
            maximum_record_age_in_seconds=settings.maximum_record_age_in_seconds,
            parallelization_factor=settings.parallelization_factor,
            bisect_batch_on_function_error=settings.bisect_batch_on_function_error,
            function_response_types=list(FUNCTION_RESPONSE_TYPES),
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(destination_arn=queue.arn)
            ),
            tags=tags,
            # CreateEventSourceMapping checks the role's access to the stream and the destination.
            opts=pulumi.ResourceOptions(parent=function, depends_on=[role.policy]),
        )
        metric_alarm(
            f"{part}-iterator-age",
            ctx.naming.name(f"{thing}-iterator-age", Kind.ALARM),
            stream_alarms.consumer_iterator_age(
                target.model,
                function.name,
                stream_alarms.iterator_age_threshold_seconds(settings.maximum_record_age_in_seconds),
            ),
            tags=tags,
            parent=function,
            **actions,
        )
        metric_alarm(
            f"{part}-stalled",
            ctx.naming.name(f"{thing}-stalled", Kind.ALARM),
            stream_alarms.consumer_stalled(target.model, function.name, self.stream_name),
            tags=tags,
            parent=function,
            **actions,
        )
        metric_alarm(
            f"{part}-errors",
            ctx.naming.name(f"{thing}-errors", Kind.ALARM),
            stream_alarms.consumer_errors(target.model, function.name),
            tags=tags,
            parent=function,
            **actions,
        )
        metric_alarm(
            f"{part}-failed-records",
            ctx.naming.name(f"{thing}-failed-records", Kind.ALARM),
            stream_alarms.failed_records(target.model, queue.name),
            tags=tags,
            parent=queue,
            **actions,
        )
        return Consumer(function=function, failure_queue=queue, log_group=log_group, role=role, mapping=mapping)
