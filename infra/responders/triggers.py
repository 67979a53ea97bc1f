"""What invokes the responders: the retrain topic's subscription, EventBridge rules, the new-data queues (S3
events of a model's source table → EventBridge → SQS → the retrain function), and the queues' policies that let
those triggers deliver or park what they could not deliver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.naming import Kind, Naming
from infra.responders.environment import NewDataSource, compact_json, object_created_pattern

if TYPE_CHECKING:
    from infra.responders.component import Responder

TARGET_MAX_EVENT_AGE_SECONDS = 6 * 3600
TARGET_MAX_RETRY_ATTEMPTS = 10  # EventBridge → Lambda fails only when Lambda refuses the async invoke

NEW_DATA_BATCH_SIZE = 1000
"""Records per invocation at most (SQS allows 10,000 with a batching window; an S3 event is ~1.5 KB, so 1,000 stay
far below Lambda's 6 MB payload, and one invocation decides a burst of a thousand files)."""
NEW_DATA_MAX_RECEIVES = 5  # deliveries of a message before the queue dead-letters it
NEW_DATA_RETENTION_SECONDS = 4 * 24 * 3600  # SQS's default; the dead-letter queue keeps 14 days
NEW_DATA_MAX_CONCURRENCY = 2
"""Concurrent invocations per queue (the smallest the event source mapping allows). Correctness does not depend on
it (the ledger's conditional write decides between concurrent batches); it keeps a burst from fanning out."""
VISIBILITY_TIMEOUT_FACTOR = 6
"""Lambda: a source queue's visibility timeout should be at least six times the function timeout (room to retry a
throttled batch); the batching window is added on top, since messages are in flight while the window gathers."""


def sns_trigger(part: str, responder: Responder, topic_arn: pulumi.Input[str]) -> aws.sns.TopicSubscription:
    """Subscribe the function to the topic; messages SNS cannot deliver go to the function's DLQ."""
    function = responder.function
    permission = aws.lambda_.Permission(
        f"{part}-from-sns",
        action="lambda:InvokeFunction",
        function=function.name,
        principal="sns.amazonaws.com",
        source_arn=topic_arn,
        opts=pulumi.ResourceOptions(parent=function),
    )
    return aws.sns.TopicSubscription(
        f"{part}-subscription",
        topic=topic_arn,
        protocol="lambda",
        endpoint=function.arn,
        redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": responder.dead_letter_queue.arn}),
        opts=pulumi.ResourceOptions(parent=function, depends_on=[permission]),
    )


def event_trigger(
    resource: str,
    naming: Naming,
    responder: Responder,
    *,
    part: str,
    description: str,
    pattern: dict[str, Any],
    parent: pulumi.Resource,
) -> aws.cloudwatch.EventRule:
    """An EventBridge rule on the default bus targeting the function, with retries and the function's DLQ."""
    function = responder.function
    rule = aws.cloudwatch.EventRule(
        resource,
        name=naming.name(part, Kind.EVENT_RULE),
        description=description,
        event_pattern=compact_json(pattern),
        tags=naming.tags(),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    permission = aws.lambda_.Permission(
        f"{resource}-permission",
        action="lambda:InvokeFunction",
        function=function.name,
        principal="events.amazonaws.com",
        source_arn=rule.arn,
        opts=pulumi.ResourceOptions(parent=rule),
    )
    aws.cloudwatch.EventTarget(
        f"{resource}-target",
        rule=rule.name,
        arn=function.arn,
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=responder.dead_letter_queue.arn),
        retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
            maximum_event_age_in_seconds=TARGET_MAX_EVENT_AGE_SECONDS,
            maximum_retry_attempts=TARGET_MAX_RETRY_ATTEMPTS,
        ),
        opts=pulumi.ResourceOptions(parent=rule, depends_on=[permission]),
    )
    return rule


def queue_policy(
    resource: str,
    queue: aws.sqs.Queue,
    service: str,
    source_arn: pulumi.Input[str] | Sequence[pulumi.Input[str]] | None,
    *,
    sid: str = "TriggerDeadLetters",
) -> aws.sqs.QueuePolicy:
    """TLS only; the trigger's service may send (undeliverable) events, for its own source ARN(s) only.

    The function itself sends through its execution role (``sqs:SendMessage`` in its policy).
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",  # a Deny on every action is the point of this statement
            "Resource": queue.arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if source_arn is not None:
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        )
    return aws.sqs.QueuePolicy(
        resource,
        queue_url=queue.url,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
        opts=pulumi.ResourceOptions(parent=queue),
    )


@dataclass(frozen=True)
class NewDataTrigger:
    """A model's new-data path: the rule on the default bus, its queue and the event source mapping."""

    rule: aws.cloudwatch.EventRule
    queue: aws.sqs.Queue
    mapping: aws.lambda_.EventSourceMapping


def new_data_queue(
    resource: str,
    naming: Naming,
    *,
    part: str,
    source: NewDataSource,
    key_arn: pulumi.Input[str],
    dead_letter_queue: aws.sqs.Queue,
    function_timeout_seconds: int,
    tags: dict[str, str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.sqs.Queue:
    """The model's KMS-encrypted queue of new-data events; a message that keeps failing goes to the DLQ
    (after ``depends_on``: the DLQ's allow list that names this queue)."""
    return aws.sqs.Queue(
        f"{resource}-queue",
        name=naming.name(part, Kind.SQS_QUEUE),
        kms_master_key_id=key_arn,
        message_retention_seconds=NEW_DATA_RETENTION_SECONDS,
        visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * function_timeout_seconds
        + source.settings.batching_window_seconds,
        redrive_policy=pulumi.Output.json_dumps(
            {"deadLetterTargetArn": dead_letter_queue.arn, "maxReceiveCount": NEW_DATA_MAX_RECEIVES}
        ),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def new_data_trigger(
    resource: str,
    naming: Naming,
    responder: Responder,
    *,
    part: str,
    source: NewDataSource,
    queue: aws.sqs.Queue,
    dead_letter_queue: aws.sqs.Queue,
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
) -> NewDataTrigger:
    """Route the objects announcing the model's new data to its queue, and the queue to the function.

    The queue admits EventBridge for this rule only (``aws:SourceArn``); undeliverable events go to the DLQ.
    The event source mapping waits up to ``batchingWindowSeconds`` to gather a burst and reads partial batch
    responses (``ReportBatchItemFailures``): only the records the function reports failed are redelivered.
    """
    rule = aws.cloudwatch.EventRule(
        resource,
        name=naming.name(part, Kind.EVENT_RULE),
        description=f"New data in the source table of model {source.model}: retrain it (debounced, rate-limited)",
        event_pattern=compact_json(object_created_pattern(source)),
        tags=naming.tags(),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    policy = queue_policy(f"{resource}-queue-policy", queue, "events.amazonaws.com", rule.arn, sid="RuleDelivers")
    aws.cloudwatch.EventTarget(
        f"{resource}-target",
        rule=rule.name,
        arn=queue.arn,
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dead_letter_queue.arn),
        retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
            maximum_event_age_in_seconds=TARGET_MAX_EVENT_AGE_SECONDS,
            maximum_retry_attempts=TARGET_MAX_RETRY_ATTEMPTS,
        ),
        opts=pulumi.ResourceOptions(parent=rule, depends_on=[policy]),
    )
    mapping = aws.lambda_.EventSourceMapping(
        f"{resource}-mapping",
        event_source_arn=queue.arn,
        function_name=responder.function.arn,
        batch_size=NEW_DATA_BATCH_SIZE,
        maximum_batching_window_in_seconds=source.settings.batching_window_seconds,
        function_response_types=["ReportBatchItemFailures"],
        scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=NEW_DATA_MAX_CONCURRENCY),
        tags=naming.tags(),
        # CreateEventSourceMapping checks that the function's role may read the queue.
        opts=pulumi.ResourceOptions(parent=queue, depends_on=list(depends_on)),
    )
    return NewDataTrigger(rule=rule, queue=queue, mapping=mapping)
