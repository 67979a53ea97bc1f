"""Least-privilege IAM statements of the responders' execution roles, one function per statement."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from infra import iam


def sqs_send(sid: str, queue_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Send messages to the queues (a function's dead-letter queue and on-failure destination)."""
    return iam.statement(sid, ["sqs:SendMessage"], list(queue_arns))


def sns_publish(sid: str, topic_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Publish to the topics."""
    return iam.statement(sid, ["sns:Publish"], list(topic_arns))


def dynamodb_items(sid: str, table_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Read and write single items (idempotency records, the retraining ledger); no scans, no table changes."""
    return iam.statement(
        sid,
        ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        list(table_arns),
    )


def pipeline_start(sid: str, pipeline_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Start the pipelines; read their definitions (which parameters they take) and list their executions
    (to skip a start while one is running)."""
    return iam.statement(
        sid,
        ["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
        list(pipeline_arns),
    )


def pipeline_execution_read(sid: str, execution_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Describe executions of the pipelines (``<pipeline arn>/execution/*``)."""
    return iam.statement(sid, ["sagemaker:DescribePipelineExecution"], list(execution_arns))


def secret_read(sid: str, secret_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Read the secrets' current values."""
    return iam.statement(sid, ["secretsmanager:GetSecretValue"], list(secret_arns))


def sqs_consume(sid: str, queue_arns: Sequence[pulumi.Input[str]]) -> iam.Statement:
    """Read and delete messages of the queues: what Lambda's event source mapping does with the function's role
    (AWS's AWSLambdaSQSQueueExecutionRole: ReceiveMessage, DeleteMessage, GetQueueAttributes)."""
    return iam.statement(sid, ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], list(queue_arns))
