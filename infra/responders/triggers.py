"""What invokes the responders: the retrain topic's subscription, EventBridge rules, and the dead-letter queues'
policies that let those triggers park what they could not deliver."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.naming import Kind, Naming
from infra.responders.environment import compact_json

if TYPE_CHECKING:
    from infra.responders.component import Responder

TARGET_MAX_EVENT_AGE_SECONDS = 6 * 3600
TARGET_MAX_RETRY_ATTEMPTS = 10  # EventBridge → Lambda fails only when Lambda refuses the async invoke


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
    resource: str, queue: aws.sqs.Queue, service: str, source_arn: pulumi.Input[str] | None
) -> aws.sqs.QueuePolicy:
    """TLS only; the trigger's service may send undeliverable events, for its own source ARN only.

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
                "Sid": "TriggerDeadLetters",
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
