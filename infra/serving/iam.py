"""Least-privilege IAM of the serving layer: the execution role the endpoint's model containers run with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

from infra import iam
from infra.foundation import Foundation
from infra.images.iam import pull_statements
from infra.naming import ModelNames
from infra.serving.settings import ServingSettings
from infra.training import output_prefix

if TYPE_CHECKING:
    from infra.context import StackContext

CAPTURE_PREFIX = "data-capture"
"""Key under ``<model>/`` in the monitoring bucket where the endpoint captures requests and responses."""


def execution_role(
    resource_name: str,
    ctx: StackContext,
    foundation: Foundation,
    names: ModelNames,
    serving: ServingSettings,
    alarm_names: list[str],
    capture: bool,
    tags: dict[str, str],
    *,
    image_repository_arn: pulumi.Input[str],
    feature_group_arn: pulumi.Input[str] | None = None,
    parent: pulumi.Resource,
) -> iam.ServiceRole:
    """The models' execution role: pull the platform's inference image (its repository only), read the model
    data, write logs, metrics and captures; with ``feature_group_arn`` (entity request mode), read that feature
    group's online records."""
    model, region = names.model, foundation.region
    pipeline_name = names.pipeline
    endpoint_name = names.endpoint
    endpoint_log_groups = [
        pulumi.Output.concat(
            "arn:aws:logs:",
            region,
            ":",
            foundation.account_id,
            ":log-group:/aws/sagemaker/Endpoints/",
            endpoint_name,
            ":*",
        )
    ]
    statements: list[iam.Statement] = [
        # Every version is registered with the platform's own image (by digest), so that repository is all
        # the model containers need; the login token (account-wide, no resource-level permission) comes with it.
        *pull_statements(image_repository_arn),
        # Model data is the training job's output under the pipeline's prefix of the artifacts bucket.
        iam.s3_read_objects("ModelDataRead", [foundation.buckets["artifacts"].arn], output_prefix(pipeline_name)),
        iam.statement("PlatformKeyDecrypt", ["kms:Decrypt", "kms:DescribeKey"], [foundation.key_arn]),
        iam.logs_write("EndpointLogs", endpoint_log_groups),
        # AWS docs, "SageMaker Roles" (CreateModel API: Execution Role Permissions): the model's role also
        # needs logs:DescribeLogStreams, here on the same log group.
        iam.statement("EndpointLogStreams", ["logs:DescribeLogStreams"], endpoint_log_groups),
        # PutMetricData has no resource-level permission; the condition limits it to SageMaker's namespaces.
        iam.statement(
            "EndpointMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
        ),
    ]
    if feature_group_arn is not None:
        statements.append(online_features_read(feature_group_arn))
    if capture:
        statements += [
            iam.statement(
                "CaptureWrite",
                ["s3:AbortMultipartUpload", "s3:PutObject"],
                [pulumi.Output.concat(foundation.buckets["monitoring"].arn, "/", model, "/", CAPTURE_PREFIX, "/*")],
            ),
            iam.statement("CaptureEncrypt", ["kms:Encrypt", "kms:GenerateDataKey"], [foundation.key_arn]),
        ]
    if alarm_names:
        statements.append(
            iam.statement(
                "RollbackAlarmsRead",
                ["cloudwatch:DescribeAlarms"],
                [
                    pulumi.Output.concat("arn:aws:cloudwatch:", region, ":", foundation.account_id, ":alarm:", alarm)
                    for alarm in alarm_names
                ],
            )
        )
    if serving.network.subnet_ids and serving.strategy != "serverless":
        statements += _vpc_statements(region, foundation.account_id, serving)
    return iam.service_role(
        resource_name,
        naming=ctx.naming,
        thing=f"{model}-serving",
        services=["sagemaker.amazonaws.com"],
        statements=statements,
        tags=tags,
        parent=parent,
        source_account=foundation.account_id,
        description=f"{ctx.naming.prefix} endpoint of {model}: runs its model containers",
    )


def online_features_read(feature_group_arn: pulumi.Input[str]) -> iam.Statement:
    """GetRecord on the model's own feature group, nothing else (no Put/Delete, no BatchGetRecord, no other group).

    The online store is encrypted with the platform key, and every data-plane caller needs kms:Decrypt on it
    (SageMaker API reference, OnlineStoreSecurityConfig): ``PlatformKeyDecrypt`` already grants exactly that.
    """
    return iam.statement("OnlineFeaturesRead", ["sagemaker:GetRecord"], [feature_group_arn])


def _vpc_statements(region: str, account_id: pulumi.Input[str], serving: ServingSettings) -> list[iam.Statement]:
    """ENI permissions SageMaker needs to place the model containers in the configured subnets."""
    base = pulumi.Output.concat("arn:aws:ec2:", region, ":", account_id)
    subnets = [pulumi.Output.concat(base, ":subnet/", s) for s in serving.network.subnet_ids]
    groups = [pulumi.Output.concat(base, ":security-group/", g) for g in serving.network.security_group_ids]
    # ENI ids are generated by EC2 when SageMaker creates them, so the interfaces are "network-interface/*",
    # limited to the configured subnets by the ec2:Subnet condition where EC2 supports it.
    interfaces = pulumi.Output.concat(base, ":network-interface/*")
    return [
        iam.statement("VpcEniCreate", ["ec2:CreateNetworkInterface"], [*subnets, *groups, interfaces]),
        iam.statement(
            "VpcEniManage",
            [
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            [interfaces],
            conditions={"ArnEquals": {"ec2:Subnet": subnets}},
        ),
        # EC2's Describe* calls support no resource-level permissions: "*" is the only choice.
        iam.statement(
            "VpcDescribe",
            [
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            ["*"],
        ),
    ]
