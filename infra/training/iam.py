"""Least-privilege IAM of the training layer: the pipeline's execution role and the registry's sharing policy."""

from __future__ import annotations

from typing import Any

import pulumi

from infra import iam
from infra.foundation import Foundation
from infra.naming import Kind, ModelNames, Naming

JOB_NAME_PREFIX = "pipelines-"
"""SageMaker Pipelines names every job it starts ``pipelines-<execution id>-<step>-...`` (lowercased in ARNs)."""

JOB_METRIC_NAMESPACES = ("/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs")
"""CloudWatch namespaces of the pipeline's processing and training jobs' metrics."""


def output_prefix(pipeline_name: str) -> str:
    """Key prefix of a pipeline's outputs in the artifacts bucket (``pipelines/<pipeline>/``)."""
    return f"pipelines/{pipeline_name}/"


def execution_role_statements(
    foundation: Foundation, naming: Naming, names: ModelNames, *, code_prefix: str, image: tuple[str, str]
) -> list[iam.Statement]:
    """What the pipeline and every job it starts may do: read its code and input data, write its outputs,
    run its jobs, register versions in its group, record lineage, pull the ``image`` (account, repository)."""
    region = foundation.region
    prefix = code_prefix
    pipeline_name = names.pipeline
    artifacts = [foundation.buckets["artifacts"].arn]
    outputs = output_prefix(pipeline_name)
    image_account, image_repository = image
    group = names.package_group.lower()
    role_name = naming.name(f"{names.model}-pipeline", Kind.IAM_ROLE)
    role_arn = pulumi.Output.concat("arn:aws:iam::", foundation.account_id, ":role/", role_name)
    job_log_groups = [
        pulumi.Output.concat("arn:aws:logs:", region, ":", foundation.account_id, ":log-group:/aws/sagemaker/*")
    ]
    statements: list[iam.Statement] = [
        iam.s3_read_objects("CodeRead", artifacts, f"{prefix}/"),
        iam.s3_list_prefix("CodeList", artifacts, f"{prefix}/"),
        *iam.s3_read("InputData", [foundation.buckets["raw"].arn, foundation.buckets["curated"].arn]),
        iam.s3_write("OutputsWrite", artifacts, outputs),
        iam.s3_read_objects("OutputsRead", artifacts, outputs),
        iam.s3_list_prefix("OutputsList", artifacts, outputs),
        iam.kms_use("PlatformKeyUse", [foundation.key_arn]),
        # Job volumes encrypted with the platform key: SageMaker creates grants for the instances.
        iam.kms_grant_for_aws_services("PlatformKeyGrants", [foundation.key_arn]),
        iam.statement(
            "ProcessingJobs",
            [
                "sagemaker:AddTags",
                "sagemaker:CreateProcessingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
            ],
            [foundation.arn("sagemaker", f"processing-job/{JOB_NAME_PREFIX}*")],
        ),
        iam.statement(
            "TrainingJobs",
            [
                "sagemaker:AddTags",
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
            ],
            [foundation.arn("sagemaker", f"training-job/{JOB_NAME_PREFIX}*")],
        ),
        iam.statement(
            "RegisterModel",
            [
                "sagemaker:AddTags",
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:ListModelPackages",
            ],
            [
                foundation.arn("sagemaker", f"model-package-group/{group}"),
                foundation.arn("sagemaker", f"model-package/{group}/*"),
            ],
        ),
        iam.statement(
            "Lineage",
            [
                "sagemaker:AddAssociation",
                "sagemaker:AddTags",
                "sagemaker:AssociateTrialComponent",
                "sagemaker:CreateExperiment",
                "sagemaker:CreateTrial",
                "sagemaker:CreateTrialComponent",
                "sagemaker:DescribeExperiment",
                "sagemaker:DescribeTrial",
                "sagemaker:DescribeTrialComponent",
                "sagemaker:UpdateTrialComponent",
            ],
            [
                foundation.arn("sagemaker", f"experiment/{pipeline_name.lower()}"),
                # Trials are named by the execution id, which SageMaker generates per execution.
                foundation.arn("sagemaker", "experiment-trial/*"),
                foundation.arn("sagemaker", f"experiment-trial-component/{JOB_NAME_PREFIX}*"),
            ],
        ),
        iam.logs_write("JobLogs", job_log_groups),
        # AWS docs, "SageMaker Roles" (CreateTrainingJob and CreateProcessingJob API: Execution Role
        # Permissions): jobs also need logs:DescribeLogStreams, here on the same log groups.
        iam.statement("JobLogStreams", ["logs:DescribeLogStreams"], job_log_groups),
        # Same pages: jobs need cloudwatch:PutMetricData. It has no resource-level permission, so "*" is the
        # only resource; the condition limits it to the namespaces the jobs publish to ("Monitor Amazon
        # SageMaker with Amazon CloudWatch": /aws/sagemaker/ProcessingJobs, /aws/sagemaker/TrainingJobs).
        iam.statement(
            "JobMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": list(JOB_METRIC_NAMESPACES)}},
        ),
        iam.statement(
            "ImagePull",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [f"arn:aws:ecr:{region}:{image_account}:repository/{image_repository}"],
        ),
        # GetAuthorizationToken is account-wide (it returns a registry login, not access to a
        # repository): IAM supports no resource-level permission for it, so "*" is the only choice.
        iam.statement("ImageAuth", ["ecr:GetAuthorizationToken"], ["*"]),
        # The pipeline passes its own role to the jobs it starts, and to nothing else.
        iam.statement(
            "PassOwnRole",
            ["iam:PassRole"],
            [role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]
    return statements


def registry_read_policy(
    account_ids: tuple[str, ...], group_arn: pulumi.Input[str], package_arns: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Resource policy of a model package group: the accounts may read the group and its versions and create
    SageMaker models from the versions (in their own account), nothing more."""
    principal: dict[str, Any] = {"AWS": [f"arn:aws:iam::{account}:root" for account in account_ids]}
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadModelPackageGroup",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": [
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:GetModelPackageGroupPolicy",
                        "sagemaker:ListModelPackages",
                    ],
                    "Resource": group_arn,
                },
                {
                    "Sid": "ReadModelPackages",
                    "Effect": "Allow",
                    "Principal": principal,
                    # CreateModel on a version: what a consumer account's SageMaker needs to deploy it (AWS:
                    # "Deploy a Model Version from a Different Account"); it creates nothing in this account.
                    "Action": [
                        "sagemaker:CreateModel",
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:ListModelPackages",
                    ],
                    "Resource": package_arns,
                },
            ],
        }
    )
