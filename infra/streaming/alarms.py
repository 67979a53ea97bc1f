"""The streaming layer's alarms, as :class:`infra.alarms.AlarmSpec` builders (turned into resources by
:func:`infra.alarms.metric_alarm`, like every other alarm of the platform).

- a consumer falling behind its stream (``IteratorAge``), failing (``Errors``), not invoked while records arrive
  (the stream's ``IncomingRecords`` against its ``Invocations``), and records it gave up on waiting in its failure
  queue (``ApproximateNumberOfMessagesVisible``);
- a delivery stream not delivering to S3 in time (``DeliveryToS3.DataFreshness``) and records it could not convert
  to Parquet (``FailedConversion.Records``).

Each links its ``docs/runbook.md`` entry. No data is no problem here: an idle stream publishes no iterator age, no
freshness and no conversions, so every alarm treats missing data as not breaching.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.alarms import AlarmSpec, lambda_invocations_failed, queue_holds_a_message, sum_query

ANCHOR_ITERATOR_AGE = "streaming-iterator-age"
ANCHOR_CONSUMER_ERRORS = "streaming-consumer-errors"
ANCHOR_FAILED_RECORDS = "streaming-failed-records"
ANCHOR_DELIVERY_FRESHNESS = "streaming-delivery-freshness"
ANCHOR_FORMAT_CONVERSION = "streaming-format-conversion"
ANCHOR_CONSUMER_STALLED = "streaming-consumer-stalled"
ANCHORS: tuple[str, ...] = (
    ANCHOR_CONSUMER_STALLED,
    ANCHOR_ITERATOR_AGE,
    ANCHOR_CONSUMER_ERRORS,
    ANCHOR_FAILED_RECORDS,
    ANCHOR_DELIVERY_FRESHNESS,
    ANCHOR_FORMAT_CONVERSION,
)
"""The runbook entries the streaming alarms link (``docs/runbook.md#<anchor>``)."""

PERIOD_SECONDS = 300
"""Firehose and SQS publish every 5 minutes; Lambda's stream metrics are read at the same pace."""
ITERATOR_AGE_SECONDS = 300
"""A consumer more than 5 minutes behind its stream serves stale online features."""
ITERATOR_AGE_PERIODS = 3
FRESHNESS_PERIODS = 3
DYNAMIC_PARTITIONING_DELAY_FACTOR = 1.5
"""Firehose guide, "Buffer data for dynamic partitioning": the end-to-end delay "might be 1.5 times of the
configured buffering hint time"."""


def iterator_age_threshold_seconds(maximum_record_age_seconds: int) -> int:
    """Behind by 5 minutes, or by half the maximum record age when that is shorter (records would soon be
    discarded to the failure queue instead of applied)."""
    return min(ITERATOR_AGE_SECONDS, maximum_record_age_seconds // 2)


def freshness_threshold_seconds(buffer_interval_seconds: int) -> int:
    """Twice the worst delivery delay Firehose documents with dynamic partitioning (1.5 x the buffer interval)."""
    return int(2 * DYNAMIC_PARTITIONING_DELAY_FACTOR * buffer_interval_seconds)


def consumer_iterator_age(model: str, function_name: pulumi.Input[str], threshold_seconds: int) -> AlarmSpec:
    """The oldest record of the last batch was written more than ``threshold_seconds`` ago, three periods running."""
    return AlarmSpec(
        summary=(
            f"{model}: the online-feature consumer is more than {threshold_seconds} s behind its stream "
            f"for {ITERATOR_AGE_PERIODS} x {PERIOD_SECONDS // 60} min (online features are stale)."
        ),
        anchor=ANCHOR_ITERATOR_AGE,
        metric={
            "namespace": "AWS/Lambda",
            "metric_name": "IteratorAge",
            "dimensions": {"FunctionName": function_name},
            "statistic": "Maximum",
            "period": PERIOD_SECONDS,
            "evaluation_periods": ITERATOR_AGE_PERIODS,
            "datapoints_to_alarm": ITERATOR_AGE_PERIODS,
            "threshold": float(threshold_seconds * 1000),  # IteratorAge is in milliseconds
            "comparison_operator": "GreaterThanThreshold",
            "treat_missing_data": "notBreaching",
        },
    )


STALLED_PERIODS = 3


def consumer_stalled(model: str, function_name: pulumi.Input[str], stream_name: pulumi.Input[str]) -> AlarmSpec:
    """Records reach the stream but the consumer is not invoked, three periods running.

    The consumer's own alarms cannot see this: a disabled or broken event source mapping invokes nothing, so
    ``IteratorAge`` and ``Errors`` publish nothing (no data is not breaching for them). The stream's
    ``IncomingRecords`` against the function's ``Invocations`` can: records in, no invocation out.
    """
    return AlarmSpec(
        summary=(
            f"{model}: records reach the stream but the online-feature consumer was not invoked for "
            f"{STALLED_PERIODS} x {PERIOD_SECONDS // 60} min (event source mapping disabled or failing: online "
            "features are not updated)."
        ),
        anchor=ANCHOR_CONSUMER_STALLED,
        metric={
            "metric_queries": [
                sum_query("incoming", "IncomingRecords", {"StreamName": stream_name}, PERIOD_SECONDS, "AWS/Kinesis"),
                sum_query("invocations", "Invocations", {"FunctionName": function_name}, PERIOD_SECONDS, "AWS/Lambda"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="stalled",
                    expression="IF(FILL(incoming, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)",
                    label="records in, no consumer invocation",
                    return_data=True,
                ),
            ],
            "evaluation_periods": STALLED_PERIODS,
            "datapoints_to_alarm": STALLED_PERIODS,
            "threshold": 1.0,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "treat_missing_data": "notBreaching",
        },
    )


def consumer_errors(model: str, function_name: pulumi.Input[str]) -> AlarmSpec:
    """Invocations of the consumer failed (the event source mapping retries and bisects the batch)."""
    return AlarmSpec(
        summary=(
            f"{model}: online-feature consumer invocations failed in the last {PERIOD_SECONDS // 60} minutes "
            "(the batch is retried and split; what still fails goes to the failure queue)."
        ),
        anchor=ANCHOR_CONSUMER_ERRORS,
        metric=lambda_invocations_failed(function_name, PERIOD_SECONDS),
    )


def failed_records(model: str, queue_name: pulumi.Input[str]) -> AlarmSpec:
    """The consumer's failure queue holds a message: records that were not applied to the online store."""
    return AlarmSpec(
        summary=(
            f"{model}: the online-feature failure queue holds records that were not applied (rejected by the "
            "function, or discarded after the retries or the maximum record age); they expire with the queue."
        ),
        anchor=ANCHOR_FAILED_RECORDS,
        metric=queue_holds_a_message(queue_name, PERIOD_SECONDS),
    )


def delivery_freshness(table: str, delivery_stream_name: pulumi.Input[str], threshold_seconds: int) -> AlarmSpec:
    """The oldest record in the delivery stream is older than ``threshold_seconds``: S3 delivery is stuck or slow."""
    return AlarmSpec(
        summary=(
            f"{table}: records wait more than {threshold_seconds} s to reach the raw zone for "
            f"{FRESHNESS_PERIODS} x {PERIOD_SECONDS // 60} min (S3 delivery failing or throttled)."
        ),
        anchor=ANCHOR_DELIVERY_FRESHNESS,
        metric={
            "namespace": "AWS/Firehose",
            "metric_name": "DeliveryToS3.DataFreshness",
            "dimensions": {"DeliveryStreamName": delivery_stream_name},
            "statistic": "Maximum",
            "period": PERIOD_SECONDS,
            "evaluation_periods": FRESHNESS_PERIODS,
            "datapoints_to_alarm": FRESHNESS_PERIODS,
            "threshold": float(threshold_seconds),
            "comparison_operator": "GreaterThanThreshold",
            "treat_missing_data": "notBreaching",
        },
    )


def format_conversion_failures(table: str, delivery_stream_name: pulumi.Input[str]) -> AlarmSpec:
    """Records Firehose could not convert to Parquet with the table's schema (they land under the error prefix)."""
    return AlarmSpec(
        summary=(
            f"{table}: records failed conversion to Parquet in the last {PERIOD_SECONDS // 60} minutes (they do not "
            "match the table's schema) and were written to the error prefix instead."
        ),
        anchor=ANCHOR_FORMAT_CONVERSION,
        metric={
            "namespace": "AWS/Firehose",
            "metric_name": "FailedConversion.Records",
            "dimensions": {"DeliveryStreamName": delivery_stream_name},
            "statistic": "Sum",
            "period": PERIOD_SECONDS,
            "evaluation_periods": 1,
            "threshold": 1.0,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "treat_missing_data": "notBreaching",
        },
    )
