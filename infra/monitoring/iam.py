"""Least-privilege IAM of the monitoring layer: what the Model Monitor jobs of one model may read and write."""

from __future__ import annotations

import pulumi

from infra import iam
from infra.alarms import DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE
from infra.foundation import Foundation
from infra.model_versions import DeployableVersion

PROCESSING_JOB_METRICS_NAMESPACE = "/aws/sagemaker/ProcessingJobs"
"""CloudWatch namespace of processing jobs' instance metrics (Model Monitor's jobs are processing jobs)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; raises ``ValueError`` on anything else."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def s3_object_arn(uri: str) -> str:
    """The ARN of the object (or key prefix) an ``s3://`` URI names."""
    bucket, key = split_s3_uri(uri)
    return f"arn:aws:s3:::{bucket}/{key}"


def monitoring_role_statements(
    foundation: Foundation,
    *,
    model: str,
    capture_uri: pulumi.Input[str] | None,
    baseline: DeployableVersion | None,
    preprocessor_key: str | None,
    ground_truth_prefix: str | None,
    image_uri: str,
) -> list[iam.Statement]:
    """Read the capture (and, for data quality, the ``baseline`` objects and the record preprocessor at
    ``preprocessor_key``; for model quality, the labels under ``ground_truth_prefix``), write each monitor's
    reports, use the platform key, publish Model Monitor metrics, write job logs, pull the analyzer image."""
    region = foundation.region
    monitoring = foundation.buckets["monitoring"]
    bucket = [monitoring.arn]
    capture = pulumi.Output.from_input(capture_uri or "")
    capture_objects = capture.apply(lambda uri: s3_object_arn(uri.rstrip("/") + "/") + "*")
    capture_bucket = capture.apply(lambda uri: f"arn:aws:s3:::{split_s3_uri(uri)[0]}")
    capture_prefix = capture.apply(lambda uri: split_s3_uri(uri.rstrip("/") + "/")[1])
    image_registry, _, image_repository = image_uri.partition("/")
    image_account = image_registry.split(".")[0]
    job_log_groups = [
        pulumi.Output.concat(
            "arn:aws:logs:", region, ":", foundation.account_id, ":log-group:/aws/sagemaker/ProcessingJobs*"
        )
    ]
    statements: list[iam.Statement] = [
        iam.statement("CaptureRead", ["s3:GetObject"], [capture_objects]),
        iam.statement(
            "CaptureList",
            ["s3:ListBucket"],
            [capture_bucket],
            conditions={"StringLike": {"s3:prefix": [capture_prefix, pulumi.Output.concat(capture_prefix, "*")]}},
        ),
    ]
    reports: list[str] = []
    if baseline is not None:
        assert baseline.data_statistics_uri and baseline.data_constraints_uri and preprocessor_key
        statements.append(
            iam.statement(
                "BaselinesRead",
                ["s3:GetObject"],
                [s3_object_arn(baseline.data_statistics_uri), s3_object_arn(baseline.data_constraints_uri)],
            )
        )
        statements.append(
            iam.statement(
                "RecordPreprocessorRead",
                ["s3:GetObject"],
                [pulumi.Output.concat(monitoring.arn, "/", preprocessor_key)],
            )
        )
        reports.append(f"{model}/data-quality/")
    if ground_truth_prefix is not None:
        labels = f"{model}/{ground_truth_prefix}"
        statements += [
            iam.s3_read_objects("GroundTruthRead", bucket, labels),
            iam.s3_list_prefix("GroundTruthList", bucket, labels),
        ]
        reports.append(f"{model}/model-quality/")
    for prefix in reports:
        kind = "DataQuality" if prefix.endswith("/data-quality/") else "ModelQuality"
        statements += [
            iam.s3_write(f"{kind}ReportsWrite", bucket, prefix),
            # The model-quality job reads back the merged predictions and labels it wrote.
            iam.s3_read_objects(f"{kind}ReportsRead", bucket, prefix),
            iam.s3_list_prefix(f"{kind}ReportsList", bucket, prefix),
        ]
    statements += [
        iam.kms_use("PlatformKeyUse", [foundation.key_arn]),
        # Job volumes encrypted with the platform key: SageMaker creates grants for the instances.
        iam.kms_grant_for_aws_services("PlatformKeyGrants", [foundation.key_arn]),
        # PutMetricData has no resource-level permission; the namespace condition scopes it instead.
        iam.statement(
            "PublishMonitorMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringLike": {"cloudwatch:namespace": [DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE]}},
        ),
        # Model Monitor's jobs are processing jobs: AWS docs, "SageMaker Roles" (CreateProcessingJob API:
        # Execution Role Permissions) list cloudwatch:PutMetricData (the jobs' instance metrics, namespace
        # /aws/sagemaker/ProcessingJobs per "Monitor Amazon SageMaker with Amazon CloudWatch"; no
        # resource-level permission, so the namespace condition scopes it) and logs:DescribeLogStreams.
        iam.statement(
            "ProcessingJobMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": [PROCESSING_JOB_METRICS_NAMESPACE]}},
        ),
        iam.logs_write("JobLogs", job_log_groups),
        iam.statement("JobLogStreams", ["logs:DescribeLogStreams"], job_log_groups),
        iam.statement(
            "ImagePull",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [f"arn:aws:ecr:{region}:{image_account}:repository/{image_repository}"],
        ),
        # GetAuthorizationToken is account-wide (a registry login): IAM has no resource-level permission for it.
        iam.statement("ImageAuth", ["ecr:GetAuthorizationToken"], ["*"]),
    ]
    return statements
